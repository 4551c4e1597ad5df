// Supernet behaviour: fixed mode == derived model, gradients reach every logit, arch.yaml round
// trip, BN folding, parameter groups, losses fall when overfitting one batch, NMS.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "supernet/loss.h"
#include "supernet/model.h"

using namespace mixnas::supernet;
using torch::Tensor;

namespace {
const std::string kModels = std::string(MIXNAS_SOURCE_DIR) + "/configs/models/";

SearchSpace full_space() {
  return parse_search_space(YAML::Load(R"(
activations: [relu, relu6, leakyrelu, hardswish, silu]
w_bits: [2, 4, 8]
a_bits: [2, 4, 8]
rules:
  - {layers: [0, 0], w_bits: [8], a_bits: [8]}
)"),
                            "space");
}

YoloModel pico_supernet(int nc = 3) {
  BuildOptions o;
  o.nc = nc;
  o.search_space = full_space();
  return build_model(kModels + "yolov8-pico.yaml", o);
}

// Two images, a few boxes each: (image, class, cx, cy, w, h) normalised.
Tensor some_targets() {
  return torch::tensor({0.f, 0.f, 0.30f, 0.30f, 0.30f, 0.40f,  //
                        0.f, 1.f, 0.70f, 0.60f, 0.25f, 0.25f,  //
                        1.f, 2.f, 0.50f, 0.50f, 0.60f, 0.50f,  //
                        1.f, 0.f, 0.20f, 0.75f, 0.20f, 0.30f})
      .view({4, 6});
}
}  // namespace

TEST_CASE("fixed mode with one-hot logits equals the derived fixed model", "[supernet]") {
  torch::manual_seed(7);
  YoloModel net = pico_supernet();
  // A random one-hot choice per site.
  {
    torch::NoGradGuard no_grad;
    for (auto& kv : net->named_parameters(true))
      if (kv.key().find("alpha") != std::string::npos)
        kv.value().copy_(torch::randn_like(kv.value()) * 5);
  }
  Tensor x = torch::rand({2, 3, 64, 64});
  net->train();
  net->set_arch_mode(ArchMode::kSoftmax);
  net->forward(x);  // initialise every quantizer and move BN statistics
  net->eval();
  net->set_arch_mode(ArchMode::kFixed);
  auto choices = net->argmax_choices();
  auto ref = net->forward(x);
  YoloModel fixed = derive_model(net, choices);
  fixed->eval();
  CHECK(fixed->param_groups().arch.empty());
  auto out = fixed->forward(x);
  for (size_t i = 0; i < ref.raw.size(); ++i) CHECK(torch::equal(ref.raw[i], out.raw[i]));
  // A forced choice map selects the same sub-network as the derived model of that map.
  auto other = choices;
  for (auto& kv : other) {
    if (kv.second.act && kv.first != "model.0") kv.second.act = Act::kRelu;
    if (kv.first != "model.0") kv.second.w_bits = 4;
  }
  net->force_choices(other);
  auto forced = net->forward(x);
  YoloModel fixed2 = derive_model(net, other);
  fixed2->eval();
  auto out2 = fixed2->forward(x);
  for (size_t i = 0; i < forced.raw.size(); ++i) CHECK(torch::equal(forced.raw[i], out2.raw[i]));
  // Choices that are no candidates are refused.
  auto bad = choices;
  bad["model.0"].w_bits = 2;
  CHECK_THROWS_WITH(derive_model(net, bad), Catch::Contains("model.0"));
}

TEST_CASE("gradients reach every architecture logit", "[supernet]") {
  torch::manual_seed(8);
  for (bool recompute : {true, false}) {
    YoloModel net = pico_supernet();
    net->set_recompute(recompute);
    net->train();
    Tensor x = torch::rand({2, 3, 64, 64});
    auto loss = make_loss(net)->compute(net->forward(x).raw, some_targets(), 64, 64);
    loss.total.backward();
    ParamGroups groups = net->param_groups();
    CHECK(groups.arch.size() > 100);
    CHECK_FALSE(groups.quant.empty());
    int64_t missing = 0;
    for (const auto& p : groups.arch)
      if (!p.grad().defined() || p.grad().abs().sum().item<float>() == 0.0f) ++missing;
    CHECK(missing == 0);
    // Probabilities of the site API are differentiable functions of the logits.
    auto sites = net->sites();
    Tensor expected_bits = torch::zeros({});
    for (const auto& s : sites) {
      Tensor bits = torch::tensor(std::vector<float>(s.w_bits.begin(), s.w_bits.end()));
      expected_bits = expected_bits + (s.w_probs * bits).sum();
    }
    CHECK(expected_bits.requires_grad());
  }
}

TEST_CASE("arch.yaml round trip rebuilds the same fixed model", "[supernet]") {
  torch::manual_seed(9);
  YoloModel net = pico_supernet();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : net->param_groups().arch) p.copy_(torch::randn_like(p));
  }
  auto choices = net->argmax_choices();
  const std::string path =
      (std::filesystem::temp_directory_path() / "mixnas_test_arch.yaml").string();
  write_arch_yaml(path, net, choices);
  ArchFile arch = read_arch_yaml(path);
  CHECK(arch.nc == 3);
  CHECK(arch.choices == choices);
  YoloModel rebuilt = build_from_arch(arch);
  YoloModel derived = derive_model(net, choices);
  auto a = rebuilt->named_parameters(true), b = derived->named_parameters(true);
  REQUIRE(a.size() == b.size());
  for (const auto& kv : b) {
    const Tensor* other = a.find(kv.key());
    REQUIRE(other != nullptr);
    CHECK(other->sizes() == kv.value().sizes());
  }
  CHECK(rebuilt->argmax_choices() == choices);
  // Same weights -> same outputs.
  {
    torch::NoGradGuard no_grad;
    for (auto& kv : rebuilt->named_parameters(true)) kv.value().copy_(*b.find(kv.key()));
    auto bb = derived->named_buffers(true);
    for (auto& kv : rebuilt->named_buffers(true)) kv.value().copy_(*bb.find(kv.key()));
  }
  rebuilt->eval();
  derived->eval();
  Tensor x = torch::rand({1, 3, 64, 64});
  CHECK(torch::equal(rebuilt->forward(x).raw[0], derived->forward(x).raw[0]));
  std::remove(path.c_str());
}

TEST_CASE("BN folding computes what the unfolded eval model computes", "[supernet]") {
  torch::manual_seed(10);
  BuildOptions o;
  o.nc = 3;
  YoloModel net = build_model(kModels + "yolov8-pico.yaml", o);  // fp32 sites
  net->train();
  Tensor x = torch::rand({2, 3, 64, 64});
  net->forward(x);  // move the running statistics away from their defaults
  net->eval();
  auto ref = net->forward(x);
  net->set_fold_bn(true);
  net->train();  // folded: running statistics are frozen even in training mode
  auto folded = net->forward(x);
  for (size_t i = 0; i < ref.raw.size(); ++i)
    CHECK(torch::allclose(ref.raw[i], folded.raw[i], 1e-4, 1e-4));
  auto* conv = net->site_refs()[1].block;
  auto [w, bias] = conv->folded_weight_bias();
  CHECK(w.sizes() == conv->conv->weight.sizes());
  CHECK(bias.size(0) == w.size(0));
}

TEST_CASE("weight quantizer steps are fitted to the folded weights", "[supernet][quant]") {
  torch::manual_seed(12);
  YoloModel net = pico_supernet();
  Tensor x = torch::rand({2, 3, 64, 64});
  net->train();
  net->forward(x);  // initialise every quantizer on the unfolded weights
  ConvImpl* block = nullptr;
  for (const auto& s : net->site_refs())
    if (s.block && s.name != "model.0") {
      block = s.block;
      break;
    }
  REQUIRE(block != nullptr);
  torch::NoGradGuard no_grad;
  // Per-channel BN scales far from 1, both signs: steps left as they were would be far off.
  const int64_t c = block->bn->weight.size(0);
  block->bn->weight.copy_(torch::linspace(-3.0, 3.0, c) + 0.05);
  block->bn->running_var.copy_(torch::linspace(0.01, 4.0, c));
  Tensor folded_w = block->folded_weight_bias().first;
  net->fit_weight_steps_to_folded();
  for (int bits : {2, 4, 8}) {
    INFO("w_bits " << bits);
    WeightQuantizerImpl* q = block->conv->weight_quantizer(bits);
    REQUIRE(q != nullptr);
    WeightQuantizerImpl expect(c, bits);
    expect.fit_to(folded_w);
    CHECK(torch::equal(q->step, expect.step));
  }
  // The folded forward quantizes on the fitted grid: one code per weight at 8 bits.
  net->set_fold_bn(true);
  WeightQuantizerImpl* q8 = block->conv->weight_quantizer(8);
  Tensor err = (q8->forward(folded_w) - folded_w).abs() / q8->step;
  CHECK(err.max().item<double>() <= 0.5 + 1e-4);
}

TEST_CASE("quantizers off compute the float model; observing calibrates them",
          "[supernet][quant]") {
  torch::manual_seed(13);
  YoloModel net = pico_supernet();
  ArchChoices choices = net->argmax_choices();
  for (auto& [name, c] : choices) c.w_bits = c.a_bits = 8;
  YoloModel m = derive_model(net, choices);
  Tensor x = torch::rand({2, 3, 64, 64});
  // Training mode: BN normalises with batch statistics, so the signal reaches the head (in eval
  // mode with fresh running statistics it fades away over the layers of a random model).
  m->train();
  Tensor init_out = m->forward(x).raw[0].clone();  // initialises every quantizer (LSQ+ init)
  m->set_quant_mode(QuantMode::kOff);
  Tensor ref = m->forward(x).raw[0].clone();
  const double init_err = (init_out - ref).abs().mean().item<double>();
  // Grids far off: the quantized forward breaks, the float one does not see them.
  std::vector<ActQuantizerImpl*> aqs;
  {
    torch::NoGradGuard no_grad;
    for (const auto& s : m->site_refs()) {
      ActQuantizerImpl* q = s.conv->act_quantizer(8);
      REQUIRE(q != nullptr);
      if (!q->image_input()) aqs.push_back(q);
      q->set_params(100.0, 0.0);
      s.conv->weight_quantizer(8)->set_step(100.0);
    }
  }
  CHECK(torch::equal(m->forward(x).raw[0], ref));
  m->set_quant_mode(QuantMode::kOn);
  const double scale = ref.abs().max().item<double>();
  CHECK((m->forward(x).raw[0] - ref).abs().max().item<double>() > 0.1 * scale);
  // Observing is a float forward too; finishing gives every non-image quantizer its range and
  // every weight quantizer fitted steps. The 8-bit model then tracks the float one more closely
  // than with LSQ+'s min/max init on the same batch (a random model amplifies every error: 0.30
  // mean abs error with that init, 0.23 calibrated, against a mean |output| of 1.37).
  m->set_quant_mode(QuantMode::kObserve);
  CHECK(torch::equal(m->forward(x).raw[0], ref));
  CHECK(m->finish_calibration() == static_cast<int>(aqs.size()));
  for (auto* q : aqs) CHECK(q->step_value() < 1.0);
  m->set_quant_mode(QuantMode::kOn);
  Tensor out = m->forward(x).raw[0];
  CHECK((out - ref).abs().mean().item<double>() < 0.9 * init_err);
}

TEST_CASE("detection losses fall when overfitting one batch", "[supernet][loss]") {
  torch::manual_seed(11);
  const char* v5_tiny = R"(nc: 3
depth_multiple: 0.33
width_multiple: 0.125
anchors:
  - [10,13, 16,30, 33,23]
  - [30,61, 62,45, 59,119]
  - [116,90, 156,198, 373,326]
backbone:
  - [-1, 1, Conv, [64, 6, 2, 2]]
  - [-1, 1, Conv, [128, 3, 2]]
  - [-1, 1, C3, [128]]
  - [-1, 1, Conv, [256, 3, 2]]
  - [-1, 1, C3, [256]]
  - [-1, 1, Conv, [512, 3, 2]]
  - [-1, 1, Conv, [1024, 3, 2]]
  - [-1, 1, SPPF, [1024, 5]]
head:
  - [[4, 5, 7], 1, Detect, [nc, anchors]]
)";
  Tensor x = torch::rand({2, 3, 64, 64});
  Tensor targets = some_targets();
  for (int kind = 0; kind < 2; ++kind) {
    YoloModel net =
        kind == 0 ? pico_supernet() : YoloModel(parse_model_spec(v5_tiny, "v5tiny.yaml", ""));
    net->train();
    auto loss_fn = make_loss(net);
    ParamGroups g = net->param_groups();
    std::vector<Tensor> params = g.weights;
    params.insert(params.end(), g.quant.begin(), g.quant.end());
    torch::optim::Adam opt(params, torch::optim::AdamOptions(2e-3));
    float first = 0, last = 0;
    for (int step = 0; step < 100; ++step) {
      opt.zero_grad();
      auto items = loss_fn->compute(net->forward(x).raw, targets, 64, 64);
      items.total.backward();
      opt.step();
      if (step == 0) first = items.total.item<float>();
      last = items.total.item<float>();
      REQUIRE(std::isfinite(last));
    }
    INFO((kind == 0 ? "v8 supernet" : "v5") << " loss " << first << " -> " << last);
    CHECK(last < 0.5f * first);
  }
}

TEST_CASE("CIoU and NMS known answers", "[loss]") {
  Tensor a = torch::tensor({0.f, 0.f, 10.f, 10.f});
  CHECK(bbox_ciou(a, a).item<float>() == Approx(1.0f).margin(1e-5));
  // Same size, shifted by 5: IoU = 50/150; centres 5 apart, enclosing box 15 x 10 -> rho2/c2 =
  // 25/325.
  Tensor b = torch::tensor({5.f, 0.f, 15.f, 10.f});
  CHECK(bbox_ciou(a, b).item<float>() == Approx(50.0 / 150.0 - 25.0 / 325.0).margin(1e-5));
  Predictions p;
  p.boxes = torch::tensor({0.f, 0.f, 10.f, 10.f, 1.f, 1.f, 11.f, 11.f, 50.f, 50.f, 60.f, 60.f, 0.f,
                           0.f, 10.f, 10.f})
                .view({1, 4, 4});
  // Box 1 overlaps box 0 (IoU 81/119) in the same class; box 3 is box 0 in another class.
  p.scores = torch::tensor({0.9f, 0.0f, 0.8f, 0.0f, 0.7f, 0.0f, 0.0f, 0.6f}).view({1, 4, 2});
  auto dets = non_max_suppression(p, 0.25, 0.45);
  REQUIRE(dets.size() == 1);
  CHECK(dets[0].scores.size(0) == 3);
  CHECK(dets[0].classes[2].item<int64_t>() == 1);
  CHECK(non_max_suppression(p, 0.25, 0.45, 300, true)[0].scores.size(0) == 2);
  CHECK(non_max_suppression(p, 0.95)[0].scores.size(0) == 0);
}

namespace {

// The distillation loss of v8_distill_loss written out per anchor, class and bin in double.
void distill_reference(const Tensor& s, const Tensor& t, int64_t nc, double& cls, double& dfl) {
  const int64_t reg = 16, anchors = s.size(2) * s.size(3);
  auto sv = s.to(torch::kDouble).reshape({s.size(1), -1}),
       tv = t.to(torch::kDouble).reshape({t.size(1), -1});
  auto sigmoid = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  double ce = 0, w_sum = 0, kl_sum = 0;
  for (int64_t a = 0; a < anchors; ++a) {
    double w = 0;
    for (int64_t c = 0; c < nc; ++c) {
      const double p = sigmoid(tv[4 * reg + c][a].item<double>());
      const double q = sigmoid(sv[4 * reg + c][a].item<double>());
      ce += -(p * std::log(q) + (1 - p) * std::log(1 - q)) +
            (p * std::log(p) + (1 - p) * std::log(1 - p));
      w = std::max(w, p);
    }
    double kl = 0;
    for (int64_t side = 0; side < 4; ++side) {
      double zs = 0, zt = 0;
      for (int64_t j = 0; j < reg; ++j) {
        zs += std::exp(sv[side * reg + j][a].item<double>());
        zt += std::exp(tv[side * reg + j][a].item<double>());
      }
      for (int64_t j = 0; j < reg; ++j) {
        const double pt = std::exp(tv[side * reg + j][a].item<double>()) / zt;
        const double ps = std::exp(sv[side * reg + j][a].item<double>()) / zs;
        kl += pt * std::log(pt / ps) / 4;
      }
    }
    w_sum += w;
    kl_sum += w * kl;
  }
  const double norm = std::max(w_sum, 1.0);
  cls = ce / norm;
  dfl = kl_sum / norm;
}

}  // namespace

TEST_CASE(
    "distillation loss: known answers, zero where the heads agree, gradients towards the "
    "teacher",
    "[loss]") {
  torch::manual_seed(5);
  const int64_t nc = 2, no = 64 + nc;
  // Two levels of one image; the teacher's class logits high enough that the weights sum past 1.
  std::vector<Tensor> teacher = {torch::randn({1, no, 1, 2}), torch::randn({1, no, 1, 1})};
  teacher[0].narrow(1, 64, 1).fill_(2.0);
  teacher[1].narrow(1, 64 + 1, 1).fill_(1.5);
  std::vector<Tensor> student = {torch::randn({1, no, 1, 2}).requires_grad_(),
                                 torch::randn({1, no, 1, 1}).requires_grad_()};
  double cls = 0, dfl = 0;
  distill_reference(
      torch::cat({student[0].detach().flatten(2), student[1].detach().flatten(2)}, 2).unsqueeze(2),
      torch::cat({teacher[0].flatten(2), teacher[1].flatten(2)}, 2).unsqueeze(2), nc, cls, dfl);
  DistillItems d = v8_distill_loss(student, teacher, nc, 0.5, 1.5);
  CHECK(d.cls.item<double>() == Approx(0.5 * cls).epsilon(1e-5));
  CHECK(d.dfl.item<double>() == Approx(1.5 * dfl).epsilon(1e-5));
  CHECK(d.total.item<double>() == Approx(0.5 * cls + 1.5 * dfl).epsilon(1e-5));
  CHECK(cls > 0);
  CHECK(dfl > 0);

  // The teacher itself as the student: nothing to learn.
  DistillItems same = v8_distill_loss(teacher, teacher, nc, 0.5, 1.5);
  CHECK(std::abs(same.total.item<double>()) < 1e-5);

  // Gradient steps on the student's outputs alone reach the teacher's.
  torch::optim::Adam opt({student[0], student[1]}, torch::optim::AdamOptions(0.05));
  for (int step = 0; step < 400; ++step) {
    opt.zero_grad();
    v8_distill_loss(student, teacher, nc, 0.5, 1.5).total.backward();
    opt.step();
  }
  CHECK(v8_distill_loss(student, teacher, nc, 0.5, 1.5).total.item<double>() < 1e-3);
  CHECK(torch::allclose(student[0].narrow(1, 64, nc).sigmoid(),
                        teacher[0].narrow(1, 64, nc).sigmoid(), 0, 0.02));

  // Heads that differ are refused, naming both shapes.
  std::vector<Tensor> other = {torch::randn({1, no + 1, 1, 2}), teacher[1]};
  CHECK_THROWS_WITH(v8_distill_loss(student, other, nc, 0.5, 1.5),
                    Catch::Matchers::Contains("head level 0 of the teacher is [1, 67, 1, 2]") &&
                        Catch::Matchers::Contains("the student's [1, 66, 1, 2]"));
  CHECK_THROWS_WITH(v8_distill_loss(student, {teacher[0]}, nc, 0.5, 1.5),
                    Catch::Matchers::Contains("the teacher has 1 head levels, the student 2"));
}
