// Bit-serial integer conv (conv_lowbit.h), portable scalar: 64-bit words, AND + popcount
// (__builtin_popcountll), all (w_bits, a_bits) rows. The fallback row of every CPU.
#define MIXNAS_KERNEL_ISA isa_bitserial_scalar
#include "deploy/runtime/kernels/conv_bitserial_impl.h"

namespace mixnas::rt {
namespace isa_bitserial_scalar {

struct IsaScalar {
  static constexpr int kLanes = 1, kRegs = 10, kVec = 4;
  static constexpr bool kByteAcc = false;
  using V = uint64_t;
  using Acc = uint64_t;
  using Wide = uint64_t;
  static V load(const uint64_t* p) { return *p; }
  static V bcast(const uint64_t* p) { return *p; }
  static V vand(V a, V b) { return a & b; }
  static Acc acc_zero() { return 0; }
  static Acc popadd(Acc acc, V x) { return acc + static_cast<uint64_t>(__builtin_popcountll(x)); }
  static Wide wide_zero() { return 0; }
  static Wide widen(Wide w, Acc a) { return w + a; }
  static Lanes64<1>::T lanes(Wide w) { return Lanes64<1>::T{w}; }
};

}  // namespace isa_bitserial_scalar

BitserialShape conv_bitserial_shape__scalar(int w_bits, int a_bits, int* lanes) {
  *lanes = isa_bitserial_scalar::IsaScalar::kLanes;
  return bitserial_shape(isa_bitserial_scalar::IsaScalar::kRegs, w_bits, a_bits);
}
void conv_bitserial_block__scalar(const BitserialJob& job, int pixel_begin, int pixel_end,
                                  unsigned char* scratch) {
  isa_bitserial_scalar::bitserial_dispatch<isa_bitserial_scalar::IsaScalar>(job, pixel_begin,
                                                                            pixel_end, scratch);
}
unsigned conv_bitpack__scalar(const uint8_t* codes, int row_stride, int in_c, int a_bits, int p0,
                              int p1, uint64_t* planes, int32_t* sums) {
  return isa_bitserial_scalar::bitpack_portable(codes, row_stride, in_c, a_bits, p0, p1, planes,
                                                sums);
}

void conv_bitsums__scalar(const uint64_t* planes, int pixel_stride, int plane_stride, int in_c,
                          int a_bits, int pixels, int32_t* sums) {
  isa_bitserial_scalar::bitsums(planes, pixel_stride, plane_stride, in_c, a_bits, pixels, sums);
}

}  // namespace mixnas::rt
