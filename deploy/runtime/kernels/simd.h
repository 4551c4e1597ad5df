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

}  // namespace mixnas::rt::MIXNAS_KERNEL_ISA
