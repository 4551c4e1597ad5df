#pragma once
// Activation functions of mixnas (definitions: docs/numerics.md, "Activation functions").
//
// Two implementations:
// - activation_reference(): the exact std:: formulas, in float. Used to judge the approximations.
// - apply_activation(): the runtime's vectorised form (AVX-512, AVX2, SSE2/NEON baseline). It is
//   built only from IEEE operations that round the same way on every ISA (add, sub, mul, div,
//   min/max, float<->int conversion; no FMA contraction, no reciprocal estimates), so it returns
//   the SAME BITS on every ISA and thread count. Conv epilogues use it, and the scalar conv
//   reference uses it too, which is what makes integer kernels match their reference bit for bit.
//
// Max abs error of apply_activation() vs activation_reference() over [-20, 20], measured on a
// 1e-4 grid by tests/runtime/kernels/test_kernels_activation.cpp, which asserts these bounds:
//   identity, relu, relu6, leakyrelu : 0 (same operations as the reference)
//   hardswish : 1.91e-6 x * min(max(x + 3, 0), 6) * (1/6): the division by 6 as a product, 1 ulp
//                       of the result (at x ~ 16)
//   hardsigmoid: 6e-8   min(max(x * (1/6) + 0.5, 0), 1), likewise
//   sigmoid   : 1.2e-7  1 / (1 + e^-x); e^x by range reduction x = n ln2 + r, the Cephes expf
//                       polynomial for e^r, 2^n built in the exponent bits
//   silu      : 9.6e-7  x * sigmoid(x) (about 1 ulp of the result at |x| ~ 7)
//   tanh      : 1.2e-7  1 - 2 / (e^2|x| + 1), sign restored
//   gelu      : 4.8e-7  0.5 x (1 + erf(x / sqrt 2)); erf by Abramowitz-Stegun 7.1.26 (|err| 1.5e-7)
//   gelu_tanh : 2.4e-7  0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
//   mish      : 9.6e-7  x * n / (n + 2) with n = e^x (e^x + 2), an exact identity for
//                       tanh(softplus(x)); e^x evaluated at min(x, 20)
// NaN inputs give unspecified (but deterministic) results.
#include <cstddef>
#include <cstdint>
#include <string>

namespace mixnas::rt {

// Vectors per iteration of the vectorised activations' main loop. The polynomial activations are
// one long chain of dependent operations per vector (silu: ~45 on NEON); with one vector per
// iteration a core waits on the chain's latency, with four independent ones its pipes stay busy
// (docs/device_models.md). The device model divides its loop's cycles by the width x this.
constexpr int kActUnroll = 4;

enum class Activation : uint8_t {
  kIdentity,
  kRelu,
  kRelu6,
  kLeakyRelu,
  kHardswish,
  kHardsigmoid,
  kSilu,
  kGeluErf,
  kGeluTanh,
  kMish,
  kSigmoid,
  kTanh,
};
constexpr int kNumActivations = 12;

struct ActivationSpec {
  Activation kind = Activation::kIdentity;
  float alpha = 0.1f;  // LeakyReLU slope
};

// "identity" "relu" "relu6" "leakyrelu" "hardswish" "hardsigmoid" "silu" "gelu" "gelu_tanh"
// "mish" "sigmoid" "tanh".
const char* activation_name(Activation kind);
// Parses one of the names above; false (and *out untouched) for anything else.
bool parse_activation(const std::string& name, Activation* out);

// Exact formulas (std::exp, std::erf, std::tanh, std::log1p) in float.
float activation_reference(ActivationSpec spec, float x);

// In place over n floats, vectorised for the best ISA of cpu_features(). Bit-identical results on
// every ISA (see above). Thread-safe.
void apply_activation(ActivationSpec spec, float* data, size_t n);

// The same computation forced to the portable baseline (SSE2 on x86-64, NEON on aarch64, generic
// vectors elsewhere). Exposed for tests and the conv reference.
void apply_activation_baseline(ActivationSpec spec, float* data, size_t n);

// e^x in place over n floats (the vexp of the table above: Cephes polynomial, |rel err| <= 1.2e-7,
// inputs clamped to [-87.3, 88.3]), vectorised, with the same bits on every ISA. Decode ops use it.
void exp_inplace(float* data, size_t n);
void exp_inplace_baseline(float* data, size_t n);

// Name of the implementation apply_activation() uses on this machine ("avx512f", "avx2", ...).
const char* activation_isa_name();

}  // namespace mixnas::rt
