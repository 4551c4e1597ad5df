// Mixed operations: one-conv MixedQuantConv == explicit sum over (a_bits, w_bits) pairs, fused
// mixed activation == composite form, sampling modes.
#include <catch2/catch.hpp>

#include "core/error.h"
#include "supernet/mixed.h"

using namespace mixnas::supernet;
using torch::Tensor;

TEST_CASE("MixedQuantConv equals the explicit sum over all bit pairs", "[mixed]") {
  torch::manual_seed(4);
  auto sampling = std::make_shared<ArchSampling>();
  QConv2dImpl::Options o{6, 5, 3, 2, 1, 1, 1, true};
  for (bool recompute : {false, true}) {
    QConv2d conv(o, std::vector<int>{2, 4, 8, 32}, std::vector<int>{2, 4, 8}, sampling, recompute);
    {
      torch::NoGradGuard no_grad;
      conv->alpha_w.copy_(torch::tensor({0.4f, -0.3f, 0.2f, 0.1f}));
      conv->alpha_a.copy_(torch::tensor({-0.5f, 0.6f, 0.1f}));
    }
    Tensor x = torch::randn({2, 6, 11, 9});
    Tensor y = conv(x);  // also initialises every quantizer from x and the weights
    Tensor pw = torch::softmax(conv->alpha_w, 0), pa = torch::softmax(conv->alpha_a, 0);
    Tensor expected = torch::zeros_like(y);
    for (size_t i = 0; i < conv->a_bits().size(); ++i) {
      Tensor xi = conv->act_quantizer(conv->a_bits()[i])->forward(x);
      for (size_t j = 0; j < conv->w_bits().size(); ++j) {
        auto* wq = conv->weight_quantizer(conv->w_bits()[j]);
        Tensor wj = wq ? wq->forward(conv->weight) : conv->weight;
        expected = expected + pa[int64_t(i)] * pw[int64_t(j)] * torch::conv2d(xi, wj, {}, 2, 1);
      }
    }
    expected = expected + conv->bias.view({1, -1, 1, 1});
    CHECK(torch::allclose(y, expected, 1e-4, 1e-5));
    CHECK(y.sizes() == std::vector<int64_t>{2, 5, 6, 5});
  }
}

TEST_CASE("fused mixed activation equals the composite form, values and gradients", "[mixed]") {
  torch::manual_seed(5);
  std::vector<Act> acts{Act::kRelu, Act::kRelu6, Act::kLeakyRelu, Act::kHardswish,
                        Act::kSilu, Act::kGelu,  Act::kMish};
  Tensor x0 = torch::randn({2, 3, 17, 13}) * 4;
  Tensor gout = torch::randn_like(x0);
  Tensor out[2], gx[2], gl[2];
  for (int r = 0; r < 2; ++r) {
    Tensor x = x0.clone().requires_grad_(true);
    Tensor logits = torch::linspace(-1, 1, int64_t(acts.size())).requires_grad_(true);
    out[r] = mixed_activation(x, torch::softmax(logits, 0), acts, r == 1);
    (out[r] * gout).sum().backward();
    gx[r] = x.grad();
    gl[r] = logits.grad();
  }
  CHECK(torch::allclose(out[0], out[1], 1e-5, 1e-6));
  CHECK(torch::allclose(gx[0], gx[1], 1e-4, 1e-5));
  CHECK(torch::allclose(gl[0], gl[1], 1e-3, 1e-4));
}

TEST_CASE("scalar activation definitions match the tensor ones", "[mixed]") {
  Tensor x = torch::linspace(-8, 8, 161);
  for (Act a :
       {Act::kIdentity, Act::kRelu, Act::kRelu6, Act::kLeakyRelu, Act::kHardswish, Act::kSilu,
        Act::kSigmoid, Act::kTanh, Act::kGelu, Act::kGeluTanh, Act::kMish, Act::kHardsigmoid}) {
    Tensor ref = apply_act(a, x);
    Tensor xs = x.clone().requires_grad_(true);
    apply_act(a, xs).sum().backward();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float v = x[i].item<float>();
      INFO(act_name(a) << " at " << v);
      CHECK(act_value(a, v) == Approx(ref[i].item<float>()).margin(1e-5));
      CHECK(act_derivative(a, v) == Approx(xs.grad()[i].item<float>()).margin(1e-4));
    }
  }
  CHECK(act_value(Act::kLeakyRelu, -2.0f) == Approx(-0.2f));
  CHECK(parse_act("nn.SiLU()", "f") == Act::kSilu);
  CHECK(parse_act("nn.LeakyReLU(0.1)", "f") == Act::kLeakyRelu);
  CHECK_THROWS_WITH(parse_act("swish", "cfg.yaml:3:5"),
                    Catch::Contains("cfg.yaml:3:5") && Catch::Contains("unknown activation"));
}

TEST_CASE("sampling modes give valid branch weights", "[mixed]") {
  torch::manual_seed(6);
  Tensor logits = torch::tensor({1.0f, 0.0f, -1.0f}).requires_grad_(true);
  ArchSampling s;
  s.mode = ArchMode::kGumbel;
  s.tau = 0.5;
  Tensor g = choice_weights(logits, s);
  CHECK(g.sum().item<float>() == Approx(1.0f));
  s.mode = ArchMode::kHardGumbel;
  Tensor h = choice_weights(logits, s);
  CHECK(h.sum().item<float>() == Approx(1.0f));
  CHECK((h == 1.0f).sum().item<int64_t>() == 1);
  (h * torch::tensor({1.0f, 2.0f, 3.0f})).sum().backward();
  CHECK(logits.grad().abs().sum().item<float>() > 0);  // straight-through: soft gradient
  CHECK_THROWS_AS(parse_arch_mode("argmax"), mixnas::Error);
}
