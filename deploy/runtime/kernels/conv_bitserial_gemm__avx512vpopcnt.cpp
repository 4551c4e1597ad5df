// Bit-serial integer conv (conv_lowbit.h), AVX-512 with VPOPCNTDQ: 512-bit AND + vpopcntq into
// 64-bit lanes (no flushes); each 64-bit lane is one output channel, the activation word broadcast.
// Planes packed from codes with vptestmb (one mask per plane per 64 channels).
#define MIXNAS_KERNEL_ISA isa_bitserial_avx512vpopcnt
#include <immintrin.h>

#include "deploy/runtime/kernels/conv_bitserial_impl.h"

namespace mixnas::rt {
namespace isa_bitserial_avx512vpopcnt {

struct IsaAvx512 {
  static constexpr int kLanes = 8, kRegs = 30, kVec = 16;
  static constexpr bool kByteAcc = false;
  using V = __m512i;
  using Acc = __m512i;
  using Wide = __m512i;
  static V load(const uint64_t* p) { return _mm512_loadu_si512(p); }
  static V bcast(const uint64_t* p) { return _mm512_set1_epi64(static_cast<long long>(*p)); }
  static V vand(V a, V b) { return _mm512_and_si512(a, b); }
  static Acc acc_zero() { return _mm512_setzero_si512(); }
  static Acc popadd(Acc acc, V x) { return _mm512_add_epi64(acc, _mm512_popcnt_epi64(x)); }
  static Wide wide_zero() { return _mm512_setzero_si512(); }
  static Wide widen(Wide w, Acc a) { return _mm512_add_epi64(w, a); }
  static Lanes64<8>::T lanes(Wide w) { return (Lanes64<8>::T)w; }
};

unsigned bitpack(const uint8_t* codes, int row_stride, int in_c, int a_bits, int p0, int p1,
                 uint64_t* planes, int32_t* sums) {
  const int wpp = (in_c + 63) / 64;
  __m512i all = _mm512_setzero_si512();
  for (int p = p0; p < p1; ++p) {
    const uint8_t* src = codes + static_cast<size_t>(p) * row_stride;
    uint64_t* dst = planes + static_cast<size_t>(p) * a_bits * wpp;
    int64_t sum = 0;
    for (int w = 0; w < wpp; ++w) {
      const int n = bs_min(64, in_c - w * 64);
      const __mmask64 m = n == 64 ? ~__mmask64{0} : (__mmask64{1} << n) - 1;
      const __m512i x = _mm512_maskz_loadu_epi8(m, src + w * 64);
      all = _mm512_or_si512(all, x);
      for (int b = 0; b < a_bits; ++b) {
        const uint64_t bits = _mm512_test_epi8_mask(x, _mm512_set1_epi8(static_cast<char>(1 << b)));
        dst[b * wpp + w] = bits;
        sum += static_cast<int64_t>(__builtin_popcountll(bits)) << b;
      }
    }
    sums[p] = static_cast<int32_t>(sum);
  }
  alignas(64) uint8_t bytes[64];
  _mm512_store_si512(bytes, all);
  unsigned r = 0;
  for (uint8_t v : bytes) r |= v;
  return r;
}

}  // namespace isa_bitserial_avx512vpopcnt

BitserialShape conv_bitserial_shape__avx512vpopcnt(int w_bits, int a_bits, int* lanes) {
  using Isa = isa_bitserial_avx512vpopcnt::IsaAvx512;
  *lanes = Isa::kLanes;
  return bitserial_shape(Isa::kRegs, w_bits, a_bits);
}
void conv_bitserial_block__avx512vpopcnt(const BitserialJob& job, int pixel_begin, int pixel_end,
                                         unsigned char* scratch) {
  isa_bitserial_avx512vpopcnt::bitserial_dispatch<isa_bitserial_avx512vpopcnt::IsaAvx512>(
      job, pixel_begin, pixel_end, scratch);
}
unsigned conv_bitpack__avx512vpopcnt(const uint8_t* codes, int row_stride, int in_c, int a_bits,
                                     int p0, int p1, uint64_t* planes, int32_t* sums) {
  return isa_bitserial_avx512vpopcnt::bitpack(codes, row_stride, in_c, a_bits, p0, p1, planes,
                                              sums);
}

void conv_bitsums__avx512vpopcnt(const uint64_t* planes, int pixel_stride, int plane_stride,
                                 int in_c, int a_bits, int pixels, int32_t* sums) {
  isa_bitserial_avx512vpopcnt::bitsums(planes, pixel_stride, plane_stride, in_c, a_bits, pixels,
                                       sums);
}

}  // namespace mixnas::rt
