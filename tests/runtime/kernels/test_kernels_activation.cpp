// Activations: names, exact known values, the documented error bounds of the vectorised forms
// (activation.h) and bit identity across ISAs and tails.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "deploy/runtime/cpu_features.h"
#include "deploy/runtime/kernels/activation.h"

namespace mixnas::rt {
#if defined(__x86_64__)
void apply_activation__avx512f(ActivationSpec spec, float* data, size_t n);
void apply_activation__avx2(ActivationSpec spec, float* data, size_t n);
void exp_inplace__avx512f(float* data, size_t n);
void exp_inplace__avx2(float* data, size_t n);
#endif
}  // namespace mixnas::rt

using namespace mixnas::rt;

namespace {

const Activation kAll[] = {Activation::kIdentity,  Activation::kRelu,      Activation::kRelu6,
                           Activation::kLeakyRelu, Activation::kHardswish, Activation::kHardsigmoid,
                           Activation::kSilu,      Activation::kGeluErf,   Activation::kGeluTanh,
                           Activation::kMish,      Activation::kSigmoid,   Activation::kTanh};

// The bounds stated in activation.h.
double documented_bound(Activation a) {
  switch (a) {
    case Activation::kHardswish:
      return 1.91e-6;
    case Activation::kHardsigmoid:
      return 6e-8;
    case Activation::kSigmoid:
      return 1.2e-7;
    case Activation::kSilu:
      return 9.6e-7;
    case Activation::kTanh:
      return 1.2e-7;
    case Activation::kGeluErf:
      return 4.8e-7;
    case Activation::kGeluTanh:
      return 2.4e-7;
    case Activation::kMish:
      return 9.6e-7;
    default:
      return 0.0;
  }
}

std::vector<float> grid() {
  std::vector<float> x;
  for (int i = -200000; i <= 200000; ++i) x.push_back(i * 1e-4f);  // [-20, 20], step 1e-4
  for (float v : {-0.0f, 1e-30f, -1e-30f, 1e-8f, -3.0f, 3.0f, -1.5f}) x.push_back(v);
  return x;
}

}  // namespace

TEST_CASE("activation names round-trip and unknown names are rejected", "[activation]") {
  for (Activation a : kAll) {
    Activation parsed = Activation::kIdentity;
    REQUIRE(parse_activation(activation_name(a), &parsed));
    CHECK(parsed == a);
  }
  Activation untouched = Activation::kMish;
  CHECK_FALSE(parse_activation("swish", &untouched));
  CHECK_FALSE(parse_activation("", &untouched));
  CHECK(untouched == Activation::kMish);
  CHECK(std::string(activation_name(Activation::kGeluErf)) == "gelu");
  CHECK(std::string(activation_name(Activation::kGeluTanh)) == "gelu_tanh");
}

TEST_CASE("activation_reference gives the numerics.md values", "[activation]") {
  auto ref = [](Activation a, float x, float alpha = 0.1f) {
    return activation_reference({a, alpha}, x);
  };
  CHECK(ref(Activation::kRelu, -2.0f) == 0.0f);
  CHECK(ref(Activation::kRelu6, 7.5f) == 6.0f);
  CHECK(ref(Activation::kLeakyRelu, -2.0f) == Approx(-0.2f));
  CHECK(ref(Activation::kLeakyRelu, -2.0f, 0.25f) == -0.5f);
  CHECK(ref(Activation::kHardswish, 1.0f) == Approx(4.0f / 6.0f));
  CHECK(ref(Activation::kHardswish, -3.5f) == 0.0f);
  CHECK(ref(Activation::kHardsigmoid, 0.0f) == 0.5f);
  CHECK(ref(Activation::kSigmoid, 0.0f) == 0.5f);
  CHECK(ref(Activation::kSilu, 1.0f) == Approx(0.7310586f));
  CHECK(ref(Activation::kGeluErf, 1.0f) == Approx(0.8413447f));
  CHECK(ref(Activation::kGeluTanh, 1.0f) == Approx(0.8411920f));
  CHECK(ref(Activation::kMish, 1.0f) == Approx(0.8650984f));
  CHECK(ref(Activation::kTanh, 0.5f) == Approx(0.4621172f));
}

TEST_CASE("vectorised activations stay within the documented error over [-20, 20]",
          "[activation]") {
  const std::vector<float> x = grid();
  for (Activation a : kAll) {
    std::vector<float> y = x;
    apply_activation({a, 0.1f}, y.data(), y.size());
    double worst = 0;
    float at = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double err = std::fabs(double(y[i]) - double(activation_reference({a, 0.1f}, x[i])));
      if (err > worst) worst = err, at = x[i];
    }
    INFO(activation_name(a) << ": max abs error " << worst << " at x = " << at << " ("
                            << activation_isa_name() << ")");
    CHECK(worst <= documented_bound(a));
  }
}

TEST_CASE("sigmoid and silu stay finite and exact in the tails", "[activation]") {
  // e^-x is clamped to e^88.3 (sigmoid ~4.5e-39 below x = -88.3) and to e^-87.3 (sigmoid 1 above
  // x = 87.3): finite everywhere, within 2e-7 relative where sigmoid is a normal float, 0.5 and 1
  // exactly where they are.
  const std::vector<float> x = {-1000.0f, -100.0f, -88.5f, -87.3f, -50.0f, -20.5f,
                                0.0f,     20.5f,   50.0f,  87.5f,  100.0f, 1000.0f};
  std::vector<float> sig = x, silu = x;
  apply_activation({Activation::kSigmoid}, sig.data(), sig.size());
  apply_activation({Activation::kSilu}, silu.data(), silu.size());
  for (size_t i = 0; i < x.size(); ++i) {
    INFO("x = " << x[i]);
    CHECK(std::isfinite(sig[i]));
    CHECK(std::isfinite(silu[i]));
    CHECK(sig[i] >= 0.0f);
    CHECK(sig[i] <= 1.0f);
    if (x[i] < -87.3f) {
      CHECK(sig[i] <= 1e-38f);
      continue;
    }
    const double ref = 1.0 / (1.0 + std::exp(-double(x[i])));
    CHECK(std::fabs(sig[i] - ref) <= 2e-7 * ref);
    CHECK(std::fabs(silu[i] - double(x[i]) * ref) <= 2e-7 * std::fabs(double(x[i]) * ref));
  }
  CHECK(sig[6] == 0.5f);
  CHECK(sig[11] == 1.0f);
  CHECK(silu[6] == 0.0f);
  CHECK(silu[11] == 1000.0f);
}

TEST_CASE("vectorised activations give the same bits on every ISA and any length", "[activation]") {
  std::vector<float> x;
  for (int i = 0; i < 4099; ++i) x.push_back(std::sin(i * 0.37f) * (i % 50));
  for (Activation a : kAll) {
    const ActivationSpec spec{a, 0.07f};
    std::vector<float> base = x;
    apply_activation_baseline(spec, base.data(), base.size());
    std::vector<std::vector<float>> variants;
    variants.push_back(x);
    apply_activation(spec, variants.back().data(), x.size());
#if defined(__x86_64__)
    const CpuFeatures f = detect_cpu_features();
    if (f.avx2) {
      variants.push_back(x);
      apply_activation__avx2(spec, variants.back().data(), x.size());
    }
    if (f.avx512f) {
      variants.push_back(x);
      apply_activation__avx512f(spec, variants.back().data(), x.size());
    }
#endif
    for (const auto& v : variants) {
      INFO(activation_name(a));
      CHECK(std::memcmp(v.data(), base.data(), x.size() * sizeof(float)) == 0);
    }
    // Tails: every length 1..37 at an odd offset equals the long run.
    for (size_t n = 1; n <= 37; ++n) {
      std::vector<float> part(x.begin() + 3, x.begin() + 3 + n);
      apply_activation(spec, part.data(), n);
      CHECK(std::memcmp(part.data(), base.data() + 3, n * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("exp_inplace: within 1.2e-7 relative of std::exp, the same bits on every ISA",
          "[activation]") {
  // The decode's softmax inputs are logit - max: (-inf, 0]; the grid spans both signs.
  std::vector<float> x;
  for (int i = -400000; i <= 100000; ++i) x.push_back(i * 2e-4f);  // [-80, 20]
  std::vector<float> y = x;
  exp_inplace(y.data(), y.size());
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double ref = std::exp(static_cast<double>(x[i]));
    worst = std::max(worst, std::abs(y[i] - ref) / ref);
  }
  CHECK(worst <= 1.2e-7);
  // Clamped outside [-87.3, 88.3]: finite, no NaN.
  std::vector<float> far = {-1000.0f, -88.0f, 89.0f, 1000.0f};
  exp_inplace(far.data(), far.size());
  for (float v : far) CHECK(std::isfinite(v));
  CHECK(far[0] >= 0.0f);

  std::vector<float> base = x;
  exp_inplace_baseline(base.data(), base.size());
  CHECK(std::memcmp(base.data(), y.data(), y.size() * sizeof(float)) == 0);
#if defined(__x86_64__)
  const CpuFeatures f = detect_cpu_features();
  if (f.avx2) {
    std::vector<float> v = x;
    exp_inplace__avx2(v.data(), v.size());
    CHECK(std::memcmp(base.data(), v.data(), v.size() * sizeof(float)) == 0);
  }
  if (f.avx512f) {
    std::vector<float> v = x;
    exp_inplace__avx512f(v.data(), v.size());
    CHECK(std::memcmp(base.data(), v.data(), v.size() * sizeof(float)) == 0);
  }
#endif
  // Tails at an odd offset equal the long run.
  for (size_t n = 1; n <= 37; ++n) {
    std::vector<float> part(x.begin() + 5, x.begin() + 5 + n);
    exp_inplace(part.data(), n);
    CHECK(std::memcmp(part.data(), base.data() + 5, n * sizeof(float)) == 0);
  }
}
