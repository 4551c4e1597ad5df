// Inner loops for llvm-mca (bench/mca/report.sh), compiled with aarch64-linux-gnu-g++ -S:
// - the bit-serial microkernel step of the runtime (deploy/runtime/kernels/
//   conv_bitserial_gemm__neon.cpp, included below) for W2A2 and W1A1, marked through the
//   MIXNAS_BS_MCA_* hooks of conv_bitserial_impl.h;
// - the k step of the runtime's int8 microkernels, restated here with markers: the 8x8 smlal tile
//   of conv_qu8_gemm__neon.cpp (Cortex-A72 class) and the 4x16c4 sdot tile of
//   conv_qu8_gemm__neondot.cpp (Cortex-A76 class).
// MACs per marked iteration are printed by report.sh from the same tile sizes.
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#define MIXNAS_MCA_MARK(W, A, what)                                          \
  if constexpr (W == 2 && A == 2) asm volatile("// LLVM-MCA-" what " w2a2"); \
  if constexpr (W == 1 && A == 1) asm volatile("// LLVM-MCA-" what " w1a1")
#define MIXNAS_BS_MCA_BEGIN(W, A, MR, NVU) MIXNAS_MCA_MARK(W, A, "BEGIN")
#define MIXNAS_BS_MCA_END(W, A, MR, NVU) MIXNAS_MCA_MARK(W, A, "END")
#ifdef MCA_DOTPROD
#include "deploy/runtime/kernels/conv_bitserial_gemm__neondot.cpp"
#else
#include "deploy/runtime/kernels/conv_bitserial_gemm__neon.cpp"
#endif

namespace mca {

// conv_qu8_gemm__neon.cpp's 8x8 tile, one k step: 64 MACs.
void int8_smlal(int kc, const int16_t* const* ap, const int16_t* b, int32_t* c) {
  int32x4_t acc[8][2];
  for (int r = 0; r < 8; ++r) acc[r][0] = acc[r][1] = vdupq_n_s32(0);
  for (int kk = 0; kk < kc; ++kk) {
    asm volatile("// LLVM-MCA-BEGIN int8");
    const int16x8_t w = vld1q_s16(b);
    for (int r = 0; r < 8; ++r) {
      const int16_t x = ap[r][kk];
      acc[r][0] = vmlal_n_s16(acc[r][0], vget_low_s16(w), x);
      acc[r][1] = vmlal_high_n_s16(acc[r][1], w, x);
    }
    b += 8;
    asm volatile("// LLVM-MCA-END int8");
  }
  for (int r = 0; r < 8; ++r) vst1q_s32(c + 8 * r, acc[r][0]), vst1q_s32(c + 8 * r + 4, acc[r][1]);
}

#ifdef MCA_DOTPROD
// conv_qu8_gemm__neondot.cpp's 4x16c4 tile, one k4 step: 256 MACs.
void int8_sdot(int kc, const int8_t* const* ap, const int8_t* b, int32_t* c) {
  int32x4_t acc[4][4];
  for (int r = 0; r < 4; ++r)
    for (int v = 0; v < 4; ++v) acc[r][v] = vdupq_n_s32(0);
  for (int k = 0; k < kc; k += 4) {
    asm volatile("// LLVM-MCA-BEGIN int8dot");
    int8x16_t w[4];
    for (int v = 0; v < 4; ++v) w[v] = vld1q_s8(b + 16 * v);
    b += 64;
    for (int r = 0; r < 4; ++r) {
      int32_t quad;
      std::memcpy(&quad, ap[r] + k, 4);
      const int8x16_t x = vreinterpretq_s8_s32(vdupq_n_s32(quad));
      for (int v = 0; v < 4; ++v) acc[r][v] = vdotq_s32(acc[r][v], w[v], x);
    }
    asm volatile("// LLVM-MCA-END int8dot");
  }
  for (int r = 0; r < 4; ++r)
    for (int v = 0; v < 4; ++v) vst1q_s32(c + 16 * r + 4 * v, acc[r][v]);
}
#endif

}  // namespace mca
