// Integer conv as GEMM, 8x8 tile, AArch64 NEON without dot product: activation codes widened to
// int16 by im2col, int16 weights, smlal by scalar (4 exact products per instruction into int32),
// in the style of QNNPACK's q8gemm. Weights packed [n/8][k][8].
#define MIXNAS_KERNEL_ISA isa_neon
#include <arm_neon.h>

#include "deploy/runtime/kernels/conv_impl.h"

namespace mixnas::rt {
namespace isa_neon {

struct QU8Neon {
  static constexpr int MR = 8, NR = 8, kVec = 4, kBBytes = 2;
  static constexpr bool kInt = true, kDirect = false;
  using A = int16_t;
  using Convert = U8ToS16;
  template <int NRU>
  static void run(int taps, int kc, const int16_t* const* a, const void* bp, void* cp, size_t ldc) {
    constexpr int NV = NRU / 4;  // 2 (full panel) or 1 (half panel)
    const int16_t* b = static_cast<const int16_t*>(bp);
    int32x4_t acc[MR][NV];
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = vdupq_n_s32(0);
    for (int t = 0; t < taps; ++t) {
      const int16_t* ap[MR];
      for (int r = 0; r < MR; ++r) ap[r] = a[t * MR + r];
      for (int kk = 0; kk < kc; ++kk) {
        if constexpr (NV == 2) {
          const int16x8_t w = vld1q_s16(b);
          for (int r = 0; r < MR; ++r) {
            const int16_t x = ap[r][kk];
            acc[r][0] = vmlal_n_s16(acc[r][0], vget_low_s16(w), x);
            acc[r][1] = vmlal_high_n_s16(acc[r][1], w, x);
          }
        } else {
          const int16x4_t w = vld1_s16(b);
          for (int r = 0; r < MR; ++r) acc[r][0] = vmlal_n_s16(acc[r][0], w, ap[r][kk]);
        }
        b += NRU;
      }
    }
    int32_t* c = static_cast<int32_t*>(cp);
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) vst1q_s32(c + r * ldc + 4 * v, acc[r][v]);
  }
};

}  // namespace isa_neon

MIXNAS_CONV_BLOCK_FN(conv_qu8_gemm_8x8__neon) {
  isa_neon::gemm_block<isa_neon::QU8Neon>(job, pixel_begin, pixel_end, scratch);
}

}  // namespace mixnas::rt
