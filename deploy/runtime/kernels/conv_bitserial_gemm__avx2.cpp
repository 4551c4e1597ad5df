// Bit-serial integer conv (conv_lowbit.h), AVX2: 256-bit AND, popcount per byte by two vpshufb
// nibble lookups (no vector popcount before AVX-512), byte counters flushed into 64-bit lanes with
// vpsadbw (one 64-bit lane per output channel) before they can overflow. Planes packed from codes
// with vpmovmskb.
#define MIXNAS_KERNEL_ISA isa_bitserial_avx2
#include <immintrin.h>

#include "deploy/runtime/kernels/conv_bitserial_impl.h"

namespace mixnas::rt {
namespace isa_bitserial_avx2 {

struct IsaAvx2 {
  static constexpr int kLanes = 4, kRegs = 12, kVec = 8;
  static constexpr bool kByteAcc = true;
  using V = __m256i;
  using Acc = __m256i;
  using Wide = __m256i;
  static V load(const uint64_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
  static V bcast(const uint64_t* p) { return _mm256_set1_epi64x(static_cast<long long>(*p)); }
  static V vand(V a, V b) { return _mm256_and_si256(a, b); }
  static Acc acc_zero() { return _mm256_setzero_si256(); }
  static Acc popadd(Acc acc, V x) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2,
                                         1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f);
    const __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(x, low));
    const __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low));
    return _mm256_add_epi8(acc, _mm256_add_epi8(lo, hi));
  }
  static Wide wide_zero() { return _mm256_setzero_si256(); }
  static Wide widen(Wide w, Acc a) {
    return _mm256_add_epi64(w, _mm256_sad_epu8(a, _mm256_setzero_si256()));
  }
  static Lanes64<4>::T lanes(Wide w) { return (Lanes64<4>::T)w; }
};

unsigned bitpack(const uint8_t* codes, int row_stride, int in_c, int a_bits, int p0, int p1,
                 uint64_t* planes, int32_t* sums) {
  const int wpp = (in_c + 63) / 64;
  if (in_c % 32 != 0)
    return bitpack_portable(codes, row_stride, in_c, a_bits, p0, p1, planes, sums);
  __m256i all = _mm256_setzero_si256();
  for (int p = p0; p < p1; ++p) {
    const uint8_t* src = codes + static_cast<size_t>(p) * row_stride;
    uint64_t* dst = planes + static_cast<size_t>(p) * a_bits * wpp;
    for (int i = 0; i < a_bits * wpp; ++i) dst[i] = 0;
    int64_t sum = 0;
    for (int c0 = 0; c0 < in_c; c0 += 32) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + c0));
      all = _mm256_or_si256(all, x);
      for (int b = 0; b < a_bits; ++b) {
        const uint32_t bits =
            static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(x, 7 - b)));
        dst[b * wpp + (c0 >> 6)] |= static_cast<uint64_t>(bits) << (c0 & 63);
        sum += static_cast<int64_t>(__builtin_popcount(bits)) << b;
      }
    }
    sums[p] = static_cast<int32_t>(sum);
  }
  alignas(32) uint8_t bytes[32];
  _mm256_store_si256(reinterpret_cast<__m256i*>(bytes), all);
  unsigned r = 0;
  for (uint8_t v : bytes) r |= v;
  return r;
}

}  // namespace isa_bitserial_avx2

BitserialShape conv_bitserial_shape__avx2(int w_bits, int a_bits, int* lanes) {
  using Isa = isa_bitserial_avx2::IsaAvx2;
  *lanes = Isa::kLanes;
  return bitserial_shape(Isa::kRegs, w_bits, a_bits);
}
void conv_bitserial_block__avx2(const BitserialJob& job, int pixel_begin, int pixel_end,
                                unsigned char* scratch) {
  isa_bitserial_avx2::bitserial_dispatch<isa_bitserial_avx2::IsaAvx2>(job, pixel_begin, pixel_end,
                                                                      scratch);
}
unsigned conv_bitpack__avx2(const uint8_t* codes, int row_stride, int in_c, int a_bits, int p0,
                            int p1, uint64_t* planes, int32_t* sums) {
  return isa_bitserial_avx2::bitpack(codes, row_stride, in_c, a_bits, p0, p1, planes, sums);
}

void conv_bitsums__avx2(const uint64_t* planes, int pixel_stride, int plane_stride, int in_c,
                        int a_bits, int pixels, int32_t* sums) {
  isa_bitserial_avx2::bitsums(planes, pixel_stride, plane_stride, in_c, a_bits, pixels, sums);
}

}  // namespace mixnas::rt
