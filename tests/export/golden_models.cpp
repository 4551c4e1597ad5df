#include "tests/export/golden_models.h"

#include <cmath>

#include "core/error.h"
#include "core/hash.h"
#include "tests/runtime/golden.h"

namespace mixnas::exporter::testing {

namespace {

using supernet::Act;

// Package size: the Detect box branch alone holds ~170k weights. Sites of more than kLargeSite
// weights take 1-2 bit weights; 8-bit weights stay on sites of at most kByteSite weights; fp32 on
// either side (the weights are then stored as floats) on sites of at most kFloatSite weights.
constexpr int64_t kLargeSite = 5000;
constexpr int64_t kByteSite = 2500;
constexpr int64_t kFloatSite = 1200;

struct Recipe {
  uint64_t seed = 0;
  std::vector<Act> acts;
  std::vector<int> w_small, w_large;  // weight bits by site size (32 = fp32 weights)
  std::vector<int> a_bits;            // 32 = fp32 input
  double fp32_fraction = 0;           // of the sites up to kFloatSite: fp32 weights and input
  int image_w = 8, image_a = 8;       // the conv that reads the image
};

struct Entry {
  GoldenModel model;
  Recipe recipe;
};

const std::vector<Entry>& entries() {
  static const std::vector<Entry> all = {
      {{"w1a2_relu_family",
        "1-4 bit weights (1 on large convs), 2-4 bit activations, relu/relu6/leakyrelu/"
        "hardswish/silu, fp32 sites among them, 8-bit image input codes"},
       {101,
        {Act::kRelu, Act::kRelu6, Act::kLeakyRelu, Act::kHardswish, Act::kSilu},
        {1, 2, 3, 4},
        {1},
        {2, 3, 4},
        0.15,
        8,
        8}},
      {{"mixed_bits_all_acts",
        "1-5/8/fp32 weights with 2-4/6/8/fp32 activations chosen independently (fp32 weights on "
        "quantized inputs and the reverse), every activation (smooth ones through their vectorised "
        "approximations), float input quantized to 4 bits by the first conv"},
       {303,
        {Act::kIdentity, Act::kRelu, Act::kRelu6, Act::kLeakyRelu, Act::kHardswish, Act::kSilu,
         Act::kSigmoid, Act::kTanh, Act::kGelu, Act::kGeluTanh, Act::kMish, Act::kHardsigmoid},
        {1, 2, 3, 4, 5, 8, 32},
        {1, 2},
        {2, 3, 4, 6, 8, 32},
        0.1,
        4,
        4}},
  };
  return all;
}

// splitmix64: the same numbers on every platform.
struct Stream {
  uint64_t state;
  explicit Stream(uint64_t seed) : state(seed) {}
  uint64_t next() { return splitmix64(state); }
  // Uniform in [lo, hi), computed in double and rounded once to float.
  float uniform(double lo, double hi) {
    const double u = double(next() >> 11) * (1.0 / 9007199254740992.0);
    return float(lo + (hi - lo) * u);
  }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[size_t(next() % v.size())];
  }
};

uint64_t key(const std::string& name, uint64_t seed, uint64_t purpose) {
  return rt::golden::fnv1a64(name.data(), name.size()) ^ (seed * 0x100000001B3ull) ^ purpose;
}

void fill(torch::Tensor t, Stream& s, double lo, double hi) {
  torch::Tensor c = t.contiguous();
  float* p = c.data_ptr<float>();
  for (int64_t i = 0; i < c.numel(); ++i) p[i] = s.uniform(lo, hi);
  if (!c.is_same(t)) t.copy_(c);
}

// 6 significant bits: calibration noise below that vanishes.
double coarse(double v) {
  if (v == 0.0 || !std::isfinite(v)) return v;
  int e = 0;
  const double m = std::frexp(v, &e);
  return std::ldexp(std::nearbyint(m * 64.0) / 64.0, e);
}

void coarsen(torch::Tensor t, Stream& s) {
  // The perturbation moves steps off their initial values, as training does.
  static const std::vector<double> factors = {0.875, 1.0, 1.125, 1.25};
  torch::Tensor c = t.contiguous();
  float* p = c.data_ptr<float>();
  for (int64_t i = 0; i < c.numel(); ++i) p[i] = float(coarse(double(p[i])) * s.pick(factors));
  if (!c.is_same(t)) t.copy_(c);
}

supernet::ArchChoices choices_for(const Recipe& r) {
  supernet::BuildOptions o;
  o.nc = 3;
  auto base = supernet::build_model(golden_model_yaml(), o);
  supernet::ArchChoices choices;
  bool first = true;
  for (const auto& site : base->site_refs()) {
    Stream s(key(site.name, r.seed, 1));
    supernet::SiteChoice c;
    if (site.act) c.act = s.pick(r.acts);
    const int64_t weights = site.conv->weight.numel();
    c.w_bits = s.pick(weights > kLargeSite ? r.w_large : r.w_small);
    c.a_bits = s.pick(r.a_bits);
    if (weights > kFloatSite) {
      if (c.w_bits == supernet::kFloatBits) c.w_bits = 8;
      if (c.a_bits == supernet::kFloatBits) c.a_bits = 8;
    }
    if (c.w_bits == 8 && weights > kByteSite) c.w_bits = 4;
    if (weights <= kFloatSite && s.uniform(0, 1) < r.fp32_fraction)
      c.w_bits = c.a_bits = supernet::kFloatBits;
    if (first) {
      c.w_bits = r.image_w;
      c.a_bits = r.image_a;
      first = false;
    }
    choices[site.name] = c;
  }
  return choices;
}

// [1, 3, H, W] floats pixel * (1/255), as the runtime's float input computes them.
torch::Tensor image_tensor(const std::vector<uint8_t>& rgb) {
  std::vector<float> f(rgb.size());
  for (size_t i = 0; i < rgb.size(); ++i) f[i] = float(rgb[i]) * (1.0f / 255.0f);
  return torch::from_blob(f.data(), {kGoldenImgsz, kGoldenImgsz, 3}, torch::kFloat)
      .permute({2, 0, 1})
      .unsqueeze(0)
      .clone();
}

const Entry& entry(const std::string& name) {
  for (const Entry& e : entries())
    if (e.model.name == name) return e;
  throw Error("no golden model named '" + name + "'");
}

}  // namespace

const std::vector<GoldenModel>& golden_models() {
  static const std::vector<GoldenModel> models = [] {
    std::vector<GoldenModel> m;
    for (const Entry& e : entries()) m.push_back(e.model);
    return m;
  }();
  return models;
}

std::string golden_dir() {
  return std::string(MIXNAS_SOURCE_DIR) + "/tests/data/runtime_golden";
}

std::string golden_model_yaml() {
  return golden_dir() + "/yolov8-femto.yaml";
}

torch::Tensor golden_input_tensor() {
  return image_tensor(rt::golden::make_input_image(kGoldenImgsz, kGoldenImgsz, kGoldenInputSeed));
}

supernet::YoloModel make_golden_model(const std::string& name) {
  const Recipe& r = entry(name).recipe;
  supernet::BuildOptions o;
  o.nc = 3;
  o.choices = choices_for(r);
  auto model = supernet::build_model(golden_model_yaml(), o);
  torch::NoGradGuard no_grad;
  for (const auto& site : model->site_refs()) {
    Stream s(key(site.name, r.seed, 2));
    const double bound = std::sqrt(3.0 / double(site.conv->weight[0].numel()));
    fill(site.conv->weight, s, -bound, bound);
    // Class and box biases around the score threshold, so that NMS keeps a few boxes.
    if (!site.block && site.conv->bias.defined()) fill(site.conv->bias, s, -2.5, 0.0);
  }
  for (const auto& m : model->named_modules()) {
    auto* bn = dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.value().get());
    if (!bn) continue;
    Stream s(key(m.key(), r.seed, 3));
    fill(bn->weight, s, 0.6, 1.4);
    fill(bn->bias, s, -0.3, 0.3);
    fill(bn->running_mean, s, -0.35, 0.35);
    fill(bn->running_var, s, 0.5, 2.0);
  }
  model->eval();
  model->set_fold_bn(true);
  // Calibration on an image other than the golden input, in double precision: the quantizers'
  // initial steps and offsets come from min/max and mean |w| of tensors that float convolutions
  // compute with machine-dependent summation orders (oneDNN and BLAS pick kernels per CPU). In
  // double those differences stay ~1e-16 relative, far below what coarse() keeps, so every
  // machine derives the same parameters and the same package bytes.
  model->to(torch::kDouble);
  model->forward_raw(
      image_tensor(rt::golden::make_input_image(kGoldenImgsz, kGoldenImgsz, 7)).to(torch::kDouble));
  model->to(torch::kFloat);
  for (const auto& site : model->site_refs()) {
    Stream s(key(site.name, r.seed, 4));
    for (int b : site.conv->w_bits())
      if (auto* wq = site.conv->weight_quantizer(b)) coarsen(wq->step, s);
    for (int b : site.conv->a_bits()) {
      auto* aq = site.conv->act_quantizer(b);
      if (!aq || aq->image_input()) continue;
      coarsen(aq->step, s);
      coarsen(aq->beta, s);
    }
  }
  return model;
}

ExportOptions golden_export_options() {
  ExportOptions o;
  o.imgsz = kGoldenImgsz;
  o.class_names = {"disc", "ring", "square"};
  o.conf = 0.25f;
  o.iou = 0.45f;
  o.max_det = 100;
  return o;
}

}  // namespace mixnas::exporter::testing
