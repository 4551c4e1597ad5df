// Bit-serial integer conv (conv_lowbit.h), AArch64 NEON: 128-bit AND + vcnt (popcount per byte)
// into byte counters (one 64-bit lane per output channel), flushed into 64-bit lanes
// (vpaddl/vpadal) before they can overflow. The dot-product build
// (conv_bitserial_gemm__neondot.cpp) flushes with udot against ones instead.
#ifndef MIXNAS_BITSERIAL_NEONDOT
#define MIXNAS_KERNEL_ISA isa_bitserial_neon
#endif
#include <arm_neon.h>

#include "deploy/runtime/kernels/conv_bitserial_impl.h"

namespace mixnas::rt {
namespace MIXNAS_KERNEL_ISA {

struct IsaNeon {
  static constexpr int kLanes = 2, kRegs = 26, kVec = 4;
  static constexpr bool kByteAcc = true;
  using V = uint8x16_t;
  using Acc = uint8x16_t;
  static V load(const uint64_t* p) { return vld1q_u8(reinterpret_cast<const uint8_t*>(p)); }
  static V bcast(const uint64_t* p) { return vreinterpretq_u8_u64(vld1q_dup_u64(p)); }
  static V vand(V a, V b) { return vandq_u8(a, b); }
  static Acc acc_zero() { return vdupq_n_u8(0); }
  static Acc popadd(Acc acc, V x) { return vaddq_u8(acc, vcntq_u8(x)); }
#ifdef MIXNAS_BITSERIAL_NEONDOT
  using Wide = uint32x4_t;  // two 32-bit halves per channel, summed in lanes()
  static Wide wide_zero() {
    return vdupq_n_u32(0);
  }
  static Wide widen(Wide w, Acc a) {
    return vdotq_u32(w, a, vdupq_n_u8(1));
  }
  static Lanes64<2>::T lanes(Wide w) {
    return (Lanes64<2>::T)vpaddlq_u32(w);
  }
#else
  using Wide = uint64x2_t;
  static Wide wide_zero() {
    return vdupq_n_u64(0);
  }
  static Wide widen(Wide w, Acc a) {
    return vpadalq_u32(w, vpaddlq_u16(vpaddlq_u8(a)));
  }
  static Lanes64<2>::T lanes(Wide w) {
    return (Lanes64<2>::T)w;
  }
#endif
};

}  // namespace MIXNAS_KERNEL_ISA

#ifdef MIXNAS_BITSERIAL_NEONDOT
#define MIXNAS_BS_NAME(x) x##__neondot
#else
#define MIXNAS_BS_NAME(x) x##__neon
#endif
BitserialShape MIXNAS_BS_NAME(conv_bitserial_shape)(int w_bits, int a_bits, int* lanes) {
  *lanes = MIXNAS_KERNEL_ISA::IsaNeon::kLanes;
  return bitserial_shape(MIXNAS_KERNEL_ISA::IsaNeon::kRegs, w_bits, a_bits);
}
void MIXNAS_BS_NAME(conv_bitserial_block)(const BitserialJob& job, int pixel_begin, int pixel_end,
                                          unsigned char* scratch) {
  MIXNAS_KERNEL_ISA::bitserial_dispatch<MIXNAS_KERNEL_ISA::IsaNeon>(job, pixel_begin, pixel_end,
                                                                    scratch);
}
unsigned MIXNAS_BS_NAME(conv_bitpack)(const uint8_t* codes, int row_stride, int in_c, int a_bits,
                                      int p0, int p1, uint64_t* planes, int32_t* sums) {
  return MIXNAS_KERNEL_ISA::bitpack_portable(codes, row_stride, in_c, a_bits, p0, p1, planes, sums);
}
void MIXNAS_BS_NAME(conv_bitsums)(const uint64_t* planes, int pixel_stride, int plane_stride,
                                  int in_c, int a_bits, int pixels, int32_t* sums) {
  MIXNAS_KERNEL_ISA::bitsums(planes, pixel_stride, plane_stride, in_c, a_bits, pixels, sums);
}
#undef MIXNAS_BS_NAME

}  // namespace mixnas::rt
