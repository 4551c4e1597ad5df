// Integer conv as GEMM, 8x32 tile, k in groups of 4 (c4): AVX-512 VNNI vpdpbusd multiplies the
// uint8 activation codes by the int8 weight codes, 4 products summed exactly into each int32 lane
// (no saturation: vpdpbusd, not vpdpbusds). Weights packed [n/32][k/4][32][4].
#define MIXNAS_KERNEL_ISA isa_avx512vnni
#include <immintrin.h>

#include "deploy/runtime/kernels/conv_impl.h"

namespace mixnas::rt {
namespace isa_avx512vnni {

struct QU8Vnni {
  static constexpr int MR = 8, NR = 32, kVec = 16, kBBytes = 1;
  static constexpr bool kInt = true, kDirect = true;
  using A = uint8_t;
  using Convert = CopyU8;
  template <int NRU>
  static void run(int taps, int kc, const uint8_t* const* a, const void* bp, void* cp, size_t ldc) {
    constexpr int NV = NRU / 16;
    const int8_t* b = static_cast<const int8_t*>(bp);
    __m512i acc[MR][NV];
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_si512();
    for (int t = 0; t < taps; ++t) {
      const uint8_t* ap[MR];
      for (int r = 0; r < MR; ++r) ap[r] = a[t * MR + r];
      for (int k = 0; k < kc; k += 4) {
        __m512i w[NV];
        for (int v = 0; v < NV; ++v) w[v] = _mm512_loadu_si512(b + 64 * v);
        b += 64 * NV;
        for (int r = 0; r < MR; ++r) {
          int32_t quad;
          std::memcpy(&quad, ap[r] + k, 4);
          const __m512i x = _mm512_set1_epi32(quad);
          for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], x, w[v]);
        }
      }
    }
    int32_t* c = static_cast<int32_t*>(cp);
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) _mm512_storeu_si512(c + r * ldc + 16 * v, acc[r][v]);
  }
};

}  // namespace isa_avx512vnni

MIXNAS_CONV_BLOCK_FN(conv_qu8_gemm_8x32c4__avx512vnni) {
  isa_avx512vnni::gemm_block<isa_avx512vnni::QU8Vnni>(job, pixel_begin, pixel_end, scratch);
}

}  // namespace mixnas::rt
