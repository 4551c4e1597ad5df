#include "deploy/runtime/kernels/activation.h"

#include <algorithm>
#include <cmath>

#include "deploy/runtime/cpu_features.h"

// The baseline instantiation lives in this file (compiled without extra ISA flags).
#define MIXNAS_KERNEL_ISA isa_baseline
#include "deploy/runtime/kernels/activation_impl.h"
#undef MIXNAS_KERNEL_ISA

namespace mixnas::rt {

// Defined in activation__avx512f.cpp / activation__avx2.cpp (x86-64 builds only).
void apply_activation__avx512f(ActivationSpec spec, float* data, size_t n);
void apply_activation__avx2(ActivationSpec spec, float* data, size_t n);
void exp_inplace__avx512f(float* data, size_t n);
void exp_inplace__avx2(float* data, size_t n);

namespace {

struct ActivationName {
  Activation kind;
  const char* name;
};
constexpr ActivationName kNames[kNumActivations] = {
    {Activation::kIdentity, "identity"},   {Activation::kRelu, "relu"},
    {Activation::kRelu6, "relu6"},         {Activation::kLeakyRelu, "leakyrelu"},
    {Activation::kHardswish, "hardswish"}, {Activation::kHardsigmoid, "hardsigmoid"},
    {Activation::kSilu, "silu"},           {Activation::kGeluErf, "gelu"},
    {Activation::kGeluTanh, "gelu_tanh"},  {Activation::kMish, "mish"},
    {Activation::kSigmoid, "sigmoid"},     {Activation::kTanh, "tanh"},
};

using ApplyFn = void (*)(ActivationSpec, float*, size_t);
using ExpFn = void (*)(float*, size_t);

struct ActivationImpl {
  ApplyFn fn;
  ExpFn exp;
  const char* isa;
};

// The one table of this family: first row whose ISA the CPU has.
ActivationImpl pick_activation_impl() {
  const CpuFeatures& f = cpu_features();
#if defined(__x86_64__)
  if (f.avx512f) return {apply_activation__avx512f, exp_inplace__avx512f, "avx512f"};
  if (f.avx2) return {apply_activation__avx2, exp_inplace__avx2, "avx2"};
  return {apply_activation_baseline, exp_inplace_baseline, "sse2"};
#elif defined(__aarch64__)
  (void)f;
  return {apply_activation_baseline, exp_inplace_baseline, "neon"};
#else
  (void)f;
  return {apply_activation_baseline, exp_inplace_baseline, "generic"};
#endif
}

const ActivationImpl& activation_impl() {
  static const ActivationImpl impl = pick_activation_impl();
  return impl;
}

}  // namespace

const char* activation_name(Activation kind) {
  for (const auto& n : kNames) {
    if (n.kind == kind) return n.name;
  }
  return "unknown";
}

bool parse_activation(const std::string& name, Activation* out) {
  for (const auto& n : kNames) {
    if (name == n.name) {
      *out = n.kind;
      return true;
    }
  }
  return false;
}

float activation_reference(ActivationSpec spec, float x) {
  switch (spec.kind) {
    case Activation::kIdentity:
      return x;
    case Activation::kRelu:
      return std::max(x, 0.0f);
    case Activation::kRelu6:
      return std::min(std::max(x, 0.0f), 6.0f);
    case Activation::kLeakyRelu:
      return x >= 0.0f ? x : x * spec.alpha;
    case Activation::kHardswish:
      return x * std::min(std::max(x + 3.0f, 0.0f), 6.0f) / 6.0f;
    case Activation::kHardsigmoid:
      return std::min(std::max(x / 6.0f + 0.5f, 0.0f), 1.0f);
    case Activation::kSilu:
      return x / (1.0f + std::exp(-x));
    case Activation::kGeluErf:
      return 0.5f * x * (1.0f + std::erf(x / std::sqrt(2.0f)));
    case Activation::kGeluTanh:
      return 0.5f * x *
             (1.0f + std::tanh(std::sqrt(2.0f / 3.14159265358979f) * (x + 0.044715f * x * x * x)));
    case Activation::kMish:
      return x * std::tanh(std::log1p(std::exp(x)));
    case Activation::kSigmoid:
      return 1.0f / (1.0f + std::exp(-x));
    case Activation::kTanh:
      return std::tanh(x);
  }
  return x;
}

void apply_activation_baseline(ActivationSpec spec, float* data, size_t n) {
  isa_baseline::apply_activation_n<4>(spec, data, n);
}

void apply_activation(ActivationSpec spec, float* data, size_t n) {
  activation_impl().fn(spec, data, n);
}

void exp_inplace_baseline(float* data, size_t n) {
  isa_baseline::exp_n<4>(data, n);
}

void exp_inplace(float* data, size_t n) {
  activation_impl().exp(data, n);
}

const char* activation_isa_name() {
  return activation_impl().isa;
}

}  // namespace mixnas::rt
