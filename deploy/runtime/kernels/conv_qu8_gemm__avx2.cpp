// Integer conv as GEMM, 6x16 tile, k in pairs (c2), AVX2: activation codes widened to int16 by
// im2col, int16 weights, vpmaddwd (2 exact int16 x int16 products summed into int32) + vpaddd.
// (vpmaddubsw would saturate: 255 * -128 * 2 does not fit int16.) Weights packed
// [n/16][k/2][16][2].
#define MIXNAS_KERNEL_ISA isa_avx2
#include <immintrin.h>

#include "deploy/runtime/kernels/conv_impl.h"

namespace mixnas::rt {
namespace isa_avx2 {

struct QU8Avx2 {
  static constexpr int MR = 6, NR = 16, kVec = 8, kBBytes = 2;
  static constexpr bool kInt = true, kDirect = false;
  using A = int16_t;
  using Convert = U8ToS16;
  template <int NRU>
  static void run(int taps, int kc, const int16_t* const* a, const void* bp, void* cp, size_t ldc) {
    constexpr int NV = NRU / 8;
    const int16_t* b = static_cast<const int16_t*>(bp);
    __m256i acc[MR][NV];
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_si256();
    for (int t = 0; t < taps; ++t) {
      const int16_t* ap[MR];
      for (int r = 0; r < MR; ++r) ap[r] = a[t * MR + r];
      for (int k = 0; k < kc; k += 2) {
        __m256i w[NV];
        for (int v = 0; v < NV; ++v)
          w[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16 * v));
        b += 16 * NV;
        for (int r = 0; r < MR; ++r) {
          int32_t pair;
          std::memcpy(&pair, ap[r] + k, 4);
          const __m256i x = _mm256_set1_epi32(pair);
          for (int v = 0; v < NV; ++v)
            acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(x, w[v]));
        }
      }
    }
    int32_t* c = static_cast<int32_t*>(cp);
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc + 8 * v), acc[r][v]);
  }
};

}  // namespace isa_avx2

MIXNAS_CONV_BLOCK_FN(conv_qu8_gemm_6x16c2__avx2) {
  isa_avx2::gemm_block<isa_avx2::QU8Avx2>(job, pixel_begin, pixel_end, scratch);
}

}  // namespace mixnas::rt
