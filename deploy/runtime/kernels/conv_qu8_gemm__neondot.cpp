// Integer conv as GEMM, 4x16 tile, k in groups of 4 (c4), AArch64 NEON dot product (sdot):
// activation codes become signed bytes a - 128 in im2col (sdot multiplies int8 x int8), and the
// plan's per-channel offset adds back (128 - z_a) * sum(w). Weights packed [n/16][k/4][16][4].
// Compiled with -march=armv8.2-a+dotprod; the table runs it only when the CPU reports dotprod.
#define MIXNAS_KERNEL_ISA isa_neondot
#include <arm_neon.h>

#include "deploy/runtime/kernels/conv_impl.h"

namespace mixnas::rt {
namespace isa_neondot {

struct QS8NeonDot {
  static constexpr int MR = 4, NR = 16, kVec = 4, kBBytes = 1;
  static constexpr bool kInt = true, kDirect = false;
  using A = int8_t;
  using Convert = U8ToS8;
  template <int NRU>
  static void run(int taps, int kc, const int8_t* const* a, const void* bp, void* cp, size_t ldc) {
    constexpr int NV = NRU / 4;
    const int8_t* b = static_cast<const int8_t*>(bp);
    int32x4_t acc[MR][NV];
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = vdupq_n_s32(0);
    for (int t = 0; t < taps; ++t) {
      const int8_t* ap[MR];
      for (int r = 0; r < MR; ++r) ap[r] = a[t * MR + r];
      for (int k = 0; k < kc; k += 4) {
        int8x16_t w[NV];
        for (int v = 0; v < NV; ++v) w[v] = vld1q_s8(b + 16 * v);
        b += 16 * NV;
        for (int r = 0; r < MR; ++r) {
          int32_t quad;
          std::memcpy(&quad, ap[r] + k, 4);
          const int8x16_t x = vreinterpretq_s8_s32(vdupq_n_s32(quad));
          for (int v = 0; v < NV; ++v) acc[r][v] = vdotq_s32(acc[r][v], w[v], x);
        }
      }
    }
    int32_t* c = static_cast<int32_t*>(cp);
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) vst1q_s32(c + r * ldc + 4 * v, acc[r][v]);
  }
};

}  // namespace isa_neondot

MIXNAS_CONV_BLOCK_FN(conv_qu8_gemm_4x16c4__neondot) {
  isa_neondot::gemm_block<isa_neondot::QS8NeonDot>(job, pixel_begin, pixel_end, scratch);
}

}  // namespace mixnas::rt
