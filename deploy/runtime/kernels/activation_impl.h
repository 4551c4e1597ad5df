#pragma once
// Internal: the vectorised activation functions, as templates over the vector width N.
// Only IEEE-exact elementwise operations are used (see activation.h), and kernels.cmake compiles
// every kernel source with -ffp-contract=off, so all widths and ISAs produce the same bits.
#include "deploy/runtime/kernels/activation.h"
#include "deploy/runtime/kernels/simd.h"

namespace mixnas::rt::MIXNAS_KERNEL_ISA {

// e^x for x in [-87.3, 88.3] (clamped outside): x = n ln2 + r, |r| <= ln2/2, e^r by the
// Cephes expf polynomial, 2^n by building the exponent bits.
template <int N>
inline typename Vec<N>::F vexp(typename Vec<N>::F x) {
  using F = typename Vec<N>::F;
  using I = typename Vec<N>::I;
  x = vclamp(x, -87.3f, 88.3f);
  F n = vround_small(x * 1.44269504088896341f);
  F r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  F p = vsplat<F>(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  F y = p * (r * r) + r + 1.0f;
  I e = (__builtin_convertvector(n, I) + 127) << 23;
  return y * (F)e;
}

// 1 / (1 + e^-x). A divide, not a reciprocal by Newton steps: the steps were measured slower on
// x86 and gained little on the A72 model once act_loop runs four vectors at a time
// (docs/device_models.md, under Limits: the activation loop).
template <int N>
inline typename Vec<N>::F vsigmoid(typename Vec<N>::F x) {
  return 1.0f / (vexp<N>(-x) + 1.0f);
}

template <int N>
inline typename Vec<N>::F vtanh(typename Vec<N>::F x) {
  using F = typename Vec<N>::F;
  F ax = x < 0.0f ? -x : x;
  F t = 1.0f - 2.0f / (vexp<N>(ax + ax) + 1.0f);
  return x < 0.0f ? -t : t;
}

// erf(|z|) by Abramowitz & Stegun 7.1.26 (abs error <= 1.5e-7).
template <int N>
inline typename Vec<N>::F verf_abs(typename Vec<N>::F az) {
  using F = typename Vec<N>::F;
  F t = 1.0f / (az * 0.3275911f + 1.0f);
  F p = vsplat<F>(1.061405429f);
  p = p * t + -1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t + -0.284496736f;
  p = p * t + 0.254829592f;
  p = p * t;
  return 1.0f - p * vexp<N>(-(az * az));
}

template <int N, class Op>
inline void act_loop(float* data, size_t n, Op op) {
  using F = typename Vec<N>::F;
  size_t i = 0;
  for (; i + kActUnroll * N <= n; i += kActUnroll * N) {
    F x[kActUnroll];
#pragma GCC unroll 4
    for (int u = 0; u < kActUnroll; ++u) x[u] = vload<F>(data + i + u * N);
#pragma GCC unroll 4
    for (int u = 0; u < kActUnroll; ++u) x[u] = op(x[u]);
#pragma GCC unroll 4
    for (int u = 0; u < kActUnroll; ++u) vstore(data + i + u * N, x[u]);
  }
  for (; i + N <= n; i += N) vstore(data + i, op(vload<F>(data + i)));
  if (i < n) {
    float tmp[N] = {};
    std::memcpy(tmp, data + i, (n - i) * sizeof(float));
    vstore(tmp, op(vload<F>(tmp)));
    std::memcpy(data + i, tmp, (n - i) * sizeof(float));
  }
}

template <int N>
void exp_n(float* data, size_t n) {
  using F = typename Vec<N>::F;
  act_loop<N>(data, n, [](F x) { return vexp<N>(x); });
}

template <int N>
void apply_activation_n(ActivationSpec spec, float* data, size_t n) {
  using F = typename Vec<N>::F;
  switch (spec.kind) {
    case Activation::kIdentity:
      return;
    case Activation::kRelu:
      return act_loop<N>(data, n, [](F x) { return vmax(x, F{}); });
    case Activation::kRelu6:
      return act_loop<N>(data, n, [](F x) { return vclamp(x, 0.0f, 6.0f); });
    case Activation::kLeakyRelu: {
      const float a = spec.alpha;
      return act_loop<N>(data, n, [a](F x) { return x >= 0.0f ? x : x * a; });
    }
    case Activation::kHardswish:
      return act_loop<N>(data, n,
                         [](F x) { return x * vclamp(x + 3.0f, 0.0f, 6.0f) * (1.0f / 6.0f); });
    case Activation::kHardsigmoid:
      return act_loop<N>(data, n, [](F x) { return vclamp(x * (1.0f / 6.0f) + 0.5f, 0.0f, 1.0f); });
    case Activation::kSilu:
      return act_loop<N>(data, n, [](F x) { return x * vsigmoid<N>(x); });
    case Activation::kGeluErf:
      return act_loop<N>(data, n, [](F x) {
        F e = verf_abs<N>((x < 0.0f ? -x : x) * 0.70710678118654752f);
        return (x * 0.5f) * (1.0f + (x < 0.0f ? -e : e));
      });
    case Activation::kGeluTanh:
      return act_loop<N>(data, n, [](F x) {
        F u = (x + (x * x * x) * 0.044715f) * 0.79788456080286536f;
        return (x * 0.5f) * (1.0f + vtanh<N>(u));
      });
    case Activation::kMish:
      return act_loop<N>(data, n, [](F x) {
        F e = vexp<N>(vmin(x, vsplat<F>(20.0f)));
        F s = e * (e + 2.0f);
        return x * (s / (s + 2.0f));
      });
    case Activation::kSigmoid:
      return act_loop<N>(data, n, [](F x) { return vsigmoid<N>(x); });
    case Activation::kTanh:
      return act_loop<N>(data, n, [](F x) { return vtanh<N>(x); });
  }
}

}  // namespace mixnas::rt::MIXNAS_KERNEL_ISA
