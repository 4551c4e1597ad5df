// Quantizers of docs/numerics.md: known answers worked out by hand, round trips, LSQ gradients.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/error.h"
#include "supernet/quant.h"

using namespace mixnas::supernet;
using torch::Tensor;

namespace {
std::vector<float> values(const Tensor& t) {
  Tensor c = t.detach().to(torch::kFloat).contiguous().view(-1);
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}
}  // namespace

TEST_CASE("weight codes: half to even, clamping, 1-bit sign", "[quant]") {
  Tensor w = torch::tensor({0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 100.f, -100.f, 3.49f});
  // 4 bits: range -8..7; ties go to the even neighbour.
  CHECK(values(weight_codes(w, torch::ones({1}), 4)) ==
        std::vector<float>{0, 0, 2, 2, -2, 7, -8, 3});
  // 2 bits: -2..1.
  CHECK(values(weight_codes(w, torch::ones({1}), 2)) ==
        std::vector<float>{0, 0, 1, 1, -2, 1, -2, 1});
  // 1 bit: w >= 0 -> +1 (zero included).
  Tensor w1 = torch::tensor({0.0f, -0.0f, -1e-6f, 3.0f});
  CHECK(values(weight_codes(w1, torch::ones({1}), 1)) == std::vector<float>{1, 1, -1, 1});
}

TEST_CASE("activation codes and zero points", "[quant]") {
  // s = 0.5, z = 3, 3 bits (0..7): x/s = -2, 0, 0.5, 1.5, 20 -> round -2, 0, 0, 2, 20 -> +3 ->
  // clamp.
  Tensor x = torch::tensor({-1.0f, 0.0f, 0.25f, 0.75f, 10.0f});
  CHECK(values(act_codes(x, 0.5, 3, 3)) == std::vector<float>{1, 3, 3, 5, 7});
  // z = round(-beta / s) half to even, clamped to the code range.
  CHECK(act_zero_point(0.5, -1.25, 4) == 2);  // 2.5 -> 2
  CHECK(act_zero_point(0.5, -1.75, 4) == 4);  // 3.5 -> 4
  CHECK(act_zero_point(0.5, 1.0, 4) == 0);    // -2 -> 0
  CHECK(act_zero_point(0.5, -100.0, 4) == 15);
}

TEST_CASE("LSQ+ activation quantizer forward uses the integer zero point", "[quant]") {
  ActQuantizer q(3);
  q->set_params(0.5, -1.25);  // z = round(2.5) = 2
  CHECK(q->zero_point() == 2);
  Tensor x = torch::tensor({-1.0f, -2.0f, 0.3f, 2.5f, 3.0f});
  // x/s + z = 0, -2, 2.6, 7, 8 -> clamp 0..7 -> round 0, 0, 3, 7, 7 -> (q - 2) * 0.5
  CHECK(values(q->forward(x)) == std::vector<float>{-1.0f, -1.0f, 0.5f, 2.5f, 2.5f});
  // Unsigned (after ReLU): z = 0 whatever beta says.
  q->set_unsigned(true);
  CHECK(q->zero_point() == 0);
  CHECK(values(q->forward(x)) == std::vector<float>{0.0f, 0.0f, 0.5f, 2.5f, 3.0f});
}

TEST_CASE("activation calibration: known ranges, outliers clipped, batches averaged", "[quant]") {
  // 0, 1/1000, ..., 1 at 8 bits: no clipping pays, so the grid spans exactly [0, 1].
  Tensor ramp = torch::linspace(0.0, 1.0, 1001);
  ActQuantizer u(8);
  u->set_unsigned(true);
  u->observe(ramp);
  REQUIRE(u->finish_observation());
  CHECK(u->step_value() == Approx(1.0 / 255).epsilon(1e-6));
  CHECK(u->zero_point() == 0);
  // Signed (after SiLU): the lower end is the minimum, so real zero is code round(0.25 / s).
  ActQuantizer sq(8);
  sq->observe(torch::linspace(-0.25, 1.0, 1001));
  REQUIRE(sq->finish_observation());
  CHECK(sq->step_value() == Approx(1.25 / 255).epsilon(1e-6));
  CHECK(sq->zero_point() == 51);
  // 2 bits, 10000 values in [0, 1] and ten at 4: the full range puts most values on code 0 (squared
  // error ~1850); clipping near 1 costs ~90 on the outliers and ~90 on the rest, so it is chosen.
  Tensor tail = torch::cat({torch::linspace(0.0, 1.0, 10000), torch::full({10}, 4.0)});
  ActQuantizer t(2);
  t->set_unsigned(true);
  t->observe(tail);
  REQUIRE(t->finish_observation());
  CHECK(t->step_value() < 2.0 / 3);
  CHECK(t->step_value() >= 1.0 / 3 - 1e-6);
  // Two batches, ranges [0, 1] and [0, 3]: the mean range [0, 2].
  ActQuantizer m(8);
  m->set_unsigned(true);
  m->observe(ramp);
  m->observe(ramp * 3);
  REQUIRE(m->finish_observation());
  CHECK(m->step_value() == Approx(2.0 / 255).epsilon(1e-6));
  // Observations are forgotten once used; the image grid is fixed and never calibrated.
  CHECK_FALSE(m->finish_observation());
  CHECK(m->step_value() == Approx(2.0 / 255).epsilon(1e-6));
  ActQuantizer img(8);
  img->set_image_input(true);
  img->observe(ramp * 0.5);
  CHECK_FALSE(img->finish_observation());
  CHECK(img->step_value() == Approx(1.0 / 255).epsilon(1e-9));
}

TEST_CASE("values on the grid survive quantization", "[quant]") {
  for (int bits : {1, 2, 3, 4, 8}) {
    WeightQuantizer wq(2, bits);
    wq->set_step(0.25);
    Tensor codes = bits == 1 ? torch::tensor({-1.f, 1.f})
                             : torch::arange(-(1 << (bits - 1)), 1 << (bits - 1), torch::kFloat);
    Tensor w = torch::stack({codes, codes.flip(0)}).view({2, -1, 1, 1}) * 0.25f;
    CHECK(torch::equal(wq->forward(w), w));
  }
  for (int bits : {2, 4, 8}) {
    ActQuantizer aq(bits);
    aq->set_params(0.125, -0.125 * 3);  // z = 3
    const int qmax = (1 << bits) - 1;
    Tensor x = (torch::arange(0, qmax + 1, torch::kFloat) - 3.0f) * 0.125f;
    CHECK(torch::equal(aq->forward(x), x));
  }
  // The image grid: 8-bit codes / 255 are exact.
  ActQuantizer img(8);
  img->set_image_input(true);
  Tensor pixels = torch::arange(0, 256, torch::kFloat) * (1.0f / 255.0f);
  CHECK(torch::equal(img->forward(pixels), pixels));
}

TEST_CASE("fitted weight steps: grid weights exactly, never worse than LSQ init or max-abs",
          "[quant]") {
  // Channel 0 lies on the 2-bit grid {-2, -1, 0, 1} x 0.3: the fit finds 0.3 (k = 20).
  {
    WeightQuantizerImpl q(1, 2);
    Tensor w = torch::tensor({-0.6f, -0.3f, 0.f, 0.3f, 0.3f, -0.3f}).view({1, 6, 1, 1});
    q.fit_to(w);
    CHECK(q.initialized());
    CHECK(q.step.item<float>() == Approx(0.3f).epsilon(1e-6));
    CHECK(torch::allclose(q.forward(w), w));
  }
  // 1 bit: mean|w| per channel.
  {
    WeightQuantizerImpl q(2, 1);
    Tensor w = torch::tensor({1.f, -3.f, 2.f, 0.f, 0.5f, -0.5f}).view({2, 3, 1, 1});
    q.fit_to(w);
    CHECK(values(q.step) == std::vector<float>{2.f, 1.f / 3.f});
  }
  torch::manual_seed(3);
  // Channel scales double from one channel to the next.
  Tensor w =
      torch::randn({8, 16, 3, 3}) * torch::pow(2.0, torch::arange(8)).view({-1, 1, 1, 1}) * 0.01;
  auto channel_mse = [&](WeightQuantizerImpl& q) {
    torch::NoGradGuard no_grad;
    return (q.forward(w) - w).square().flatten(1).mean(1);
  };
  for (int bits : {2, 4, 8}) {
    INFO("bits " << bits);
    WeightQuantizerImpl fitted(8, bits), lsq(8, bits), maxabs(8, bits);
    fitted.fit_to(w);
    lsq.init_from(w);
    {
      torch::NoGradGuard no_grad;
      const double qp = double((1 << (bits - 1)) - 1);
      maxabs.step.copy_(std::get<0>(w.abs().flatten(1).max(1)).view({-1, 1, 1, 1}) / qp);
    }
    Tensor e = channel_mse(fitted);
    CHECK((e <= channel_mse(lsq) * (1 + 1e-6)).all().item<bool>());
    CHECK((e <= channel_mse(maxabs) * (1 + 1e-6)).all().item<bool>());
    // The 8-bit grid the LSQ init leaves is several times coarser than the fitted one.
    if (bits == 8) CHECK((channel_mse(lsq) > 4 * e).all().item<bool>());
    // Steps scale with the channel's weights.
    CHECK((fitted.step.view(-1).slice(0, 1) > fitted.step.view(-1).slice(0, 0, 7))
              .all()
              .item<bool>());
  }
}

TEST_CASE("fp32 bit-width is the identity; bad bits are refused", "[quant]") {
  Tensor x = torch::randn({4, 3});
  CHECK(torch::equal(ActQuantizer(32)->forward(x), x));
  CHECK_THROWS_AS(ActQuantizer(9), mixnas::Error);
  CHECK_THROWS_AS(WeightQuantizer(4, 0), mixnas::Error);
  CHECK_THROWS_WITH(check_bits(16, "layer 3"),
                    Catch::Contains("layer 3") && Catch::Contains("1..8"));
}

TEST_CASE("LSQ weight step gradient matches the hand formula", "[quant]") {
  torch::manual_seed(1);
  const int bits = 3;  // -4..3
  WeightQuantizer wq(2, bits);
  wq->set_step(0.3);
  Tensor w = torch::randn({2, 3, 2, 2});
  Tensor gout = torch::randn({2, 3, 2, 2});
  (wq->forward(w) * gout).sum().backward();
  const double qp = 3, qn = 4, n = 12;
  Tensor v = w / 0.3;
  Tensor inside_term = torch::round(v) - v;
  Tensor d = torch::where(v < -qn, torch::full_like(v, -qn),
                          torch::where(v > qp, torch::full_like(v, qp), inside_term));
  Tensor expected = (d * gout).flatten(1).sum(1) / std::sqrt(qp * n);
  CHECK(torch::allclose(wq->step.grad().view(-1), expected, 1e-5, 1e-6));
}

TEST_CASE("LSQ+ step and offset gradients match the hand formula", "[quant]") {
  torch::manual_seed(2);
  const int bits = 3;
  const double s = 0.4, beta = -0.9;  // -beta/s = 2.25 -> z = 2
  ActQuantizer q(bits);
  q->set_params(s, beta);
  Tensor x = torch::randn({2, 50}) * 2;
  Tensor gout = torch::randn({2, 50});
  (q->forward(x) * gout).sum().backward();
  const double m = 7, z = 2, g = 1.0 / std::sqrt(m * 50);
  Tensor u = x / s + z;
  Tensor r = torch::round(u);
  Tensor ds =
      torch::where(u < 0, torch::full_like(u, -z - beta / s),
                   torch::where(u > m, torch::full_like(u, m - z - beta / s), (r - z) - x / s));
  Tensor db = torch::where((u < 0) | (u > m), torch::ones_like(u), torch::zeros_like(u));
  CHECK(q->step.grad().item<double>() ==
        Approx((ds * gout).sum().item<double>() * g).epsilon(1e-4));
  CHECK(q->beta.grad().item<double>() ==
        Approx((db * gout).sum().item<double>() * g).epsilon(1e-4));
}

TEST_CASE("fused mixed activation quantizer equals the composite form", "[quant]") {
  torch::manual_seed(3);
  std::vector<std::shared_ptr<ActQuantizerImpl>> owned;
  for (int bits : {2, 4, 8}) owned.push_back(std::make_shared<ActQuantizerImpl>(bits));
  owned[0]->set_params(0.7, -1.3);
  owned[1]->set_params(0.2, -0.9);
  owned[2]->set_unsigned(true);
  owned[2]->set_params(0.02, 0.0);
  std::vector<ActQuantizerImpl*> qs{owned[0].get(), owned[1].get(), owned[2].get(), nullptr};
  Tensor x = torch::randn({3, 4, 9, 9}) * 2;
  Tensor gout = torch::randn_like(x);
  std::vector<Tensor> grads[2];
  Tensor outs[2];
  for (int recompute = 0; recompute < 2; ++recompute) {
    Tensor xr = x.clone().requires_grad_(true);
    Tensor logits = torch::tensor({0.3f, -0.2f, 0.5f, 0.1f}).requires_grad_(true);
    for (auto& q : owned) {
      if (q->step.grad().defined()) q->step.mutable_grad().zero_();
      if (q->beta.grad().defined()) q->beta.mutable_grad().zero_();
    }
    outs[recompute] = mixed_act_quant(xr, torch::softmax(logits, 0), qs, recompute == 1);
    (outs[recompute] * gout).sum().backward();
    grads[recompute] = {xr.grad(),
                        logits.grad(),
                        owned[0]->step.grad().clone(),
                        owned[0]->beta.grad().clone(),
                        owned[1]->step.grad().clone(),
                        owned[2]->step.grad().clone()};
  }
  CHECK(torch::equal(outs[0], outs[1]));
  for (size_t i = 0; i < grads[0].size(); ++i) {
    INFO("gradient " << i);
    CHECK(torch::allclose(grads[0][i], grads[1][i], 1e-4, 1e-5));
  }
}

// ---------------------------------------------------------------------------------------------
// Fused mixtures (one custom autograd function, one pass over the data) against the composite
// form built from torch ops, on random data plus the points where the two could disagree: the
// clipping bounds themselves (the straight-through gradient passes there, as clamp's does), ties
// of the rounding (half to even) and zero. Steps are powers of two so that those points are
// exact floats.
namespace {

// Mixture of the given activation quantizers (nullptr: fp32), fused and composite, on x; returns
// the output and the gradients of x, of the logits and of every step and beta (undefined where the
// form gives none).
struct MixResult {
  Tensor out;
  std::vector<Tensor> grads;
};

Tensor grad_or_undefined(const Tensor& t) {
  return t.grad().defined() ? t.grad().clone() : Tensor();
}

void clear_grads(std::vector<Tensor> params) {
  for (Tensor& t : params)
    if (t.grad().defined()) t.mutable_grad() = Tensor();
}

MixResult run_act_mix(const std::vector<std::shared_ptr<ActQuantizerImpl>>& owned,
                      const std::vector<ActQuantizerImpl*>& qs, const Tensor& x0,
                      const Tensor& logits0, const Tensor& gout, bool fused) {
  std::vector<Tensor> params;
  for (auto& q : owned) params.insert(params.end(), {q->step, q->beta});
  clear_grads(params);
  Tensor x = x0.clone().requires_grad_(true);
  Tensor logits = logits0.clone().requires_grad_(true);
  MixResult r;
  r.out = mixed_act_quant(x, torch::softmax(logits, 0), qs, fused);
  (r.out * gout).sum().backward();
  r.grads = {x.grad().clone(), logits.grad().clone()};
  for (const Tensor& p : params) r.grads.push_back(grad_or_undefined(p));
  return r;
}

void check_same(const MixResult& fused, const MixResult& composite) {
  CHECK(torch::equal(fused.out, composite.out));
  REQUIRE(fused.grads.size() == composite.grads.size());
  for (size_t i = 0; i < fused.grads.size(); ++i) {
    INFO("gradient " << i << " (0: input, 1: logits, then per quantizer step, beta)");
    REQUIRE(fused.grads[i].defined() == composite.grads[i].defined());
    if (!fused.grads[i].defined()) continue;
    const Tensor a = fused.grads[i], b = composite.grads[i];
    INFO("fused " << a.flatten().slice(0, 0, 8) << "\ncomposite " << b.flatten().slice(0, 0, 8));
    CHECK(torch::allclose(a, b, 1e-4, 1e-5));
  }
}

// Random values over about twice the clipping range of each quantizer, plus its clip bounds,
// ties of the rounding and zero.
Tensor act_points(const std::vector<std::shared_ptr<ActQuantizerImpl>>& owned) {
  std::vector<Tensor> parts;
  for (auto& q : owned) {
    const float s = float(q->step_value()), z = float(q->zero_point()), m = float(q->qmax());
    const float lo = -z * s, hi = (m - z) * s;
    parts.push_back(torch::rand({200}) * (2.0f * (hi - lo)) + (lo - 0.5f * (hi - lo)));
    std::vector<float> exact = {lo, hi, 0.0f, -0.0f, lo - s, hi + s};
    for (float k = 0.0f; k < std::min(m, 6.0f); k += 1.0f)
      exact.push_back((k + 0.5f - z) * s);  // u = k + 0.5: a tie
    parts.push_back(torch::tensor(exact));
  }
  Tensor flat = torch::cat(parts);
  // Pad to a [2, 3, n] tensor (a batch, so that the LSQ gradient scale has N = 3 n).
  const int64_t n = (flat.numel() + 5) / 6;
  flat = torch::cat({flat, torch::zeros({6 * n - flat.numel()})});
  return flat.view({2, 3, n});
}

}  // namespace

TEST_CASE("fused activation-quantizer mixture equals the composite form at every point",
          "[quant][fused]") {
  torch::manual_seed(21);
  for (int bits : {1, 2, 4, 8}) {
    for (bool is_unsigned : {false, true}) {
      INFO("bits " << bits << (is_unsigned ? " unsigned" : " signed"));
      std::vector<std::shared_ptr<ActQuantizerImpl>> owned;
      // Candidate A: z inside the code range, exact. B: -beta/s not an integer (z rounded).
      // C: beta > 0, so -beta/s < 0 and z = 0 is clamped (no gradient to beta through z).
      // D: 8 bits with another step. E: fp32.
      const float m = float((1 << bits) - 1);
      const float za = std::floor(m / 2.0f);
      struct Spec {
        int bits;
        float s, beta;
      };
      const std::vector<Spec> specs = {{bits, 0.25f, -za * 0.25f},
                                       {bits, 0.125f, -(za + 0.375f) * 0.125f},
                                       {bits, 0.5f, 0.75f},
                                       {8, 0.0625f, -3.0f}};
      for (const Spec& sp : specs) {
        owned.push_back(std::make_shared<ActQuantizerImpl>(sp.bits));
        owned.back()->set_unsigned(is_unsigned);
        owned.back()->set_params(sp.s, sp.beta);
      }
      std::vector<ActQuantizerImpl*> qs;
      for (auto& q : owned) qs.push_back(q.get());
      qs.push_back(nullptr);
      Tensor x = act_points(owned);
      Tensor gout = torch::randn_like(x);
      Tensor logits = torch::tensor({0.3f, -0.2f, 0.5f, 0.1f, -0.4f});
      MixResult fused = run_act_mix(owned, qs, x, logits, gout, true);
      MixResult composite = run_act_mix(owned, qs, x, logits, gout, false);
      check_same(fused, composite);
      // Every learned step got a gradient; beta only through a signed quantizer's zero point.
      for (size_t i = 0; i < owned.size(); ++i) {
        CHECK(fused.grads[2 + 2 * i].defined());
        CHECK(fused.grads[3 + 2 * i].defined() == !is_unsigned);
      }
    }
  }
}

TEST_CASE("fused activation-quantizer mixture: image grid and ties round half to even",
          "[quant][fused]") {
  auto image = std::make_shared<ActQuantizerImpl>(8);
  image->set_image_input(true);
  auto q2 = std::make_shared<ActQuantizerImpl>(2);
  q2->set_unsigned(true);
  q2->set_params(0.5, 0.0);
  std::vector<std::shared_ptr<ActQuantizerImpl>> owned{image, q2};
  std::vector<ActQuantizerImpl*> qs{image.get(), q2.get()};
  // Image grid (s = 1/255, z = 0): values near the first codes, near 254.5 and above the range.
  // 2 bits unsigned, s = 0.5: x / s = 0.5, 1.5, 2.5 are ties -> 0, 2, 2 (half to even).
  Tensor x = torch::tensor({0.5f / 255.0f, 1.5f / 255.0f, 2.5f / 255.0f, 254.5f / 255.0f,
                            300.0f / 255.0f, 0.25f, 0.75f, 1.25f})
                 .view({1, 2, 4});
  Tensor gout = torch::randn_like(x);
  Tensor logits = torch::tensor({0.0f, 0.0f});
  MixResult fused = run_act_mix(owned, qs, x, logits, gout, true);
  MixResult composite = run_act_mix(owned, qs, x, logits, gout, false);
  check_same(fused, composite);
  Tensor expected = 0.5f * (act_codes(x, 1.0 / 255.0, 0, 8) * (1.0f / 255.0f)) +
                    0.5f * (act_codes(x, 0.5, 0, 2) * 0.5f);
  CHECK(torch::equal(fused.out, expected));
  CHECK(values(act_codes(x, 0.5, 0, 2)).back() == 2.0f);  // 2.5 -> 2 (even)
}

namespace {

MixResult run_weight_mix(const std::vector<std::shared_ptr<WeightQuantizerImpl>>& owned,
                         const std::vector<WeightQuantizerImpl*>& qs, const Tensor& w0,
                         const Tensor& logits0, const Tensor& gout, bool fused) {
  std::vector<Tensor> steps;
  for (auto& q : owned) steps.push_back(q->step);
  clear_grads(steps);
  Tensor w = w0.clone().requires_grad_(true);
  Tensor logits = logits0.clone().requires_grad_(true);
  MixResult r;
  r.out = mixed_weight_quant(w, torch::softmax(logits, 0), qs, fused);
  (r.out * gout).sum().backward();
  r.grads = {w.grad().clone(), logits.grad().clone()};
  for (const Tensor& s : steps) r.grads.push_back(grad_or_undefined(s));
  return r;
}

}  // namespace

TEST_CASE("fused weight-quantizer mixture equals the composite form at every point",
          "[quant][fused]") {
  torch::manual_seed(22);
  const int64_t channels = 5, per_channel = 4 * 3 * 3;
  // Per-channel steps, powers of two.
  Tensor steps = torch::tensor({0.25f, 0.125f, 0.5f, 0.0625f, 1.0f}).view({channels, 1, 1, 1});
  for (const std::vector<int>& bit_set :
       {std::vector<int>{2, 4, 8}, std::vector<int>{1, 2, 4, 8, 32}, std::vector<int>{1, 32}}) {
    INFO("bits " << Catch::Detail::stringify(bit_set));
    std::vector<std::shared_ptr<WeightQuantizerImpl>> owned;
    std::vector<WeightQuantizerImpl*> qs;
    for (int b : bit_set) {
      if (b == kFloatBits) {
        qs.push_back(nullptr);
        continue;
      }
      owned.push_back(std::make_shared<WeightQuantizerImpl>(channels, b));
      owned.back()->set_step(1.0);
      {
        torch::NoGradGuard no_grad;
        owned.back()->step.copy_(steps * float(owned.size()));  // distinct steps per candidate
      }
      qs.push_back(owned.back().get());
    }
    // Random weights over about twice the widest clipping range, then per channel the exact
    // points of every candidate: both clip bounds, a value just outside each, ties, zero.
    Tensor w = torch::randn({channels, 4, 3, 3}) * 3.0f * steps;
    auto wa = w.accessor<float, 4>();
    for (int64_t c = 0; c < channels; ++c) {
      std::vector<float> exact = {0.0f, -0.0f};
      for (auto& q : owned) {
        const float s = q->step[c].item<float>();
        const float lo = q->bits() == 1 ? -1.0f : -float(1 << (q->bits() - 1));
        const float hi = q->bits() == 1 ? 1.0f : float((1 << (q->bits() - 1)) - 1);
        for (float v : {lo, hi, lo - 1.0f, hi + 1.0f, 0.5f, 1.5f, -0.5f, -2.5f})
          exact.push_back(v * s);
      }
      for (size_t i = 0; i < exact.size() && int64_t(i) < per_channel; ++i)
        wa[c][int64_t(i) / 9][(int64_t(i) / 3) % 3][int64_t(i) % 3] = exact[i];
    }
    Tensor gout = torch::randn_like(w);
    Tensor logits = torch::randn({int64_t(bit_set.size())});
    MixResult fused = run_weight_mix(owned, qs, w, logits, gout, true);
    MixResult composite = run_weight_mix(owned, qs, w, logits, gout, false);
    check_same(fused, composite);
    for (size_t i = 0; i < owned.size(); ++i) CHECK(fused.grads[2 + i].defined());
  }
}
