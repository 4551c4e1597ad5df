#pragma once
// Internal to deploy/runtime/kernels: portable fixed-width vectors (GCC/Clang vector extensions).
//
// Kernel sources that include this header are compiled with per-file ISA flags (kernels.cmake),
// so the same template becomes AVX-512, AVX2, SSE2 or NEON code. Each such source defines
// MIXNAS_KERNEL_ISA before including it: everything here lives in the namespace
// mixnas::rt::MIXNAS_KERNEL_ISA, so no inline function compiled for one ISA can be picked by the
// linker for another (the classic ODR trap of multi-ISA binaries). For the same reason kernel
// sources use no std:: templates at all, only raw pointers and these helpers.
#include <cstddef>
#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#ifndef MIXNAS_KERNEL_ISA
#error "define MIXNAS_KERNEL_ISA (a namespace name) before including simd.h"
#endif

namespace mixnas::rt::MIXNAS_KERNEL_ISA {

template <int N>
struct Vec {
  typedef float F __attribute__((vector_size(N * 4)));
  typedef int32_t I __attribute__((vector_size(N * 4)));
  typedef int16_t I16 __attribute__((vector_size(N * 2)));
  typedef uint8_t U8 __attribute__((vector_size(N)));
};

// N bytes as N / 8 64-bit lanes (N >= 16).
template <int N>
struct Words {
  typedef uint64_t V __attribute__((vector_size(N)));
};

template <class V, class T>
inline V vload(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <class V, class T>
inline void vstore(T* p, V v) {
  std::memcpy(p, &v, sizeof(V));
}
// Broadcast as a shuffle of lane 0 (one vbroadcastss / dup): "V{} + x" would cost a real add
// (-0.0 + 0.0 != -0.0), and per-lane stores become lane inserts.
template <class V, class T>
inline V vsplat(T x) {
  using Mask = decltype(V{} < V{});
  V v = {x};
  return __builtin_shuffle(v, Mask{});
}

// std::max / std::min semantics (including which operand a NaN comparison returns).
template <class V>
inline V vmax(V a, V b) {
  return a < b ? b : a;
}
template <class V>
inline V vmin(V a, V b) {
  return b < a ? b : a;
}
#if defined(__AVX512F__)
// The same for 16 floats in one instruction each: vmaxps(b, a) = b > a ? b : a, which is
// "a < b ? b : a" including NaN and signed zeros (GCC compiles the generic form to a compare and
// a blend).
// (The builtins with a zero pass-through: _mm512_max_ps passes an undefined vector, which GCC 12
// reports as maybe-uninitialized wherever it is inlined.)
inline Vec<16>::F vmax(Vec<16>::F a, Vec<16>::F b) {
  return __builtin_ia32_maxps512_mask(b, a, Vec<16>::F{}, static_cast<__mmask16>(-1),
                                      _MM_FROUND_CUR_DIRECTION);
}
inline Vec<16>::F vmin(Vec<16>::F a, Vec<16>::F b) {
  return __builtin_ia32_minps512_mask(b, a, Vec<16>::F{}, static_cast<__mmask16>(-1),
                                      _MM_FROUND_CUR_DIRECTION);
}
#endif
#if defined(__AVX__)
inline Vec<8>::F vmax(Vec<8>::F a, Vec<8>::F b) {
  return reinterpret_cast<Vec<8>::F>(
      _mm256_max_ps(reinterpret_cast<__m256>(b), reinterpret_cast<__m256>(a)));
}
inline Vec<8>::F vmin(Vec<8>::F a, Vec<8>::F b) {
  return reinterpret_cast<Vec<8>::F>(
      _mm256_min_ps(reinterpret_cast<__m256>(b), reinterpret_cast<__m256>(a)));
}
#endif
template <class V>
inline V vclamp(V x, float lo, float hi) {
  return vmin(vmax(x, vsplat<V>(lo)), vsplat<V>(hi));
}

// Round half to even for |x| < 2^22 (default rounding mode): adding 1.5 * 2^23 leaves a value
// whose ulp is 1, so the hardware rounding of the add is the rounding we want.
template <class V>
inline V vround_small(V x) {
  const float magic = 12582912.0f;
  return (x + magic) - magic;
}

// round_half_even(x) as integers for |x| <= 2^22 (one conversion in the default rounding mode
// where the ISA has it; else vround_small and a truncating conversion, which agree there).
template <int N>
inline typename Vec<N>::I vround_int(typename Vec<N>::F x) {
#if defined(__AVX512F__)
  if constexpr (N == 16)
    // _mm512_cvtps_epi32 with a zero (not an undefined) pass-through: GCC 12 warns about the
    // latter as maybe-uninitialized in every file that inlines it.
    return reinterpret_cast<typename Vec<N>::I>(__builtin_ia32_cvtps2dq512_mask(
        reinterpret_cast<__v16sf>(x), reinterpret_cast<__v16si>(_mm512_setzero_si512()),
        static_cast<__mmask16>(-1), _MM_FROUND_CUR_DIRECTION));
#endif
#if defined(__AVX__)
  if constexpr (N == 8)
    return reinterpret_cast<typename Vec<N>::I>(_mm256_cvtps_epi32(reinterpret_cast<__m256>(x)));
#endif
  return __builtin_convertvector(vround_small(x), typename Vec<N>::I);
}

// Bit b of each of the N bytes of q as an N-bit mask (bit t = bit b of byte t).
template <int N>
inline uint32_t byte_bits(typename Vec<N>::U8 q, int b) {
#if defined(__AVX512BW__) && defined(__AVX512VL__)
  if constexpr (N == 16) {
    __m128i x;
    std::memcpy(&x, &q, 16);
    return _mm_test_epi8_mask(x, _mm_set1_epi8(static_cast<char>(1 << b)));
  }
#elif defined(__SSE2__)
  if constexpr (N == 16) {
    __m128i x;
    std::memcpy(&x, &q, 16);
    return static_cast<uint32_t>(_mm_movemask_epi8(_mm_slli_epi16(x, 7 - b))) & 0xffffu;
  }
#endif
  uint32_t r = 0;
  for (int k = 0; k < N; k += 8) {
    uint64_t x = 0;
    std::memcpy(&x, reinterpret_cast<const uint8_t*>(&q) + k, N - k < 8 ? N - k : 8);
    r |= static_cast<uint32_t>(((x >> b) & 0x0101010101010101ull) * 0x0102040810204080ull >> 56)
         << k;
  }
  return N >= 32 ? r : r & ((uint32_t{1} << N) - 1);
}

}  // namespace mixnas::rt::MIXNAS_KERNEL_ISA
