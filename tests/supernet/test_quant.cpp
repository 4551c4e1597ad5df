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
