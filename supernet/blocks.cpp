#include "supernet/blocks.h"

#include <cmath>

#include "core/error.h"

namespace mixnas::supernet {

using torch::Tensor;

namespace {
void add_conv_site(BuildContext& ctx, const std::string& name, QConv2dImpl* conv,
                   MixedActivationImpl* act, ConvImpl* block) {
  SiteRef ref;
  ref.name = name;
  ref.layer = ctx.layer;
  ref.module = ctx.module;
  ref.conv = conv;
  ref.act = act;
  ref.block = block;
  ctx.sites.push_back(ref);
}

torch::nn::ModuleList as_module_list(const std::vector<std::shared_ptr<BottleneckImpl>>& blocks) {
  torch::nn::ModuleList list;
  for (const auto& b : blocks) list->push_back(b);
  return list;
}
}  // namespace

// ---------------------------------------------------------------------------------------------
ConvImpl::ConvImpl(BuildContext& ctx, const std::string& name, int64_t c1, int64_t c2, int64_t k,
                   int64_t s, int64_t p, int64_t g, int64_t d, bool with_act) {
  SiteSpec spec = ctx.resolve(name, with_act);
  QConv2dImpl::Options o{c1, c2, k, s, p < 0 ? d * (k - 1) / 2 : p, g, d, false};
  conv = register_module("conv", QConv2d(o, spec.w_bits, spec.a_bits, ctx.sampling, ctx.recompute));
  bn = register_module(
      "bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(c2).eps(1e-3).momentum(0.03)));
  std::vector<Act> acts = with_act ? spec.acts : std::vector<Act>{Act::kIdentity};
  if (acts.empty()) acts = {Act::kIdentity};
  act = register_module("act", MixedActivation(acts, ctx.sampling, ctx.recompute));
  add_conv_site(ctx, name, conv.get(), act.get(), this);
}

Tensor ConvImpl::forward(const Tensor& x) {
  if (!fold_bn_ || ShapeProbeGuard::active()) return act(bn(conv(x)));
  // Folded: y = conv_q(x, w * s_bn) + (beta - mu * s_bn); running statistics are not updated.
  Tensor s_bn = bn->weight / torch::sqrt(bn->running_var + bn->options.eps());
  Tensor shift = bn->bias - bn->running_mean * s_bn;
  return act(conv->forward_folded(x, s_bn, shift));
}

std::pair<Tensor, Tensor> ConvImpl::folded_weight_bias() const {
  torch::NoGradGuard no_grad;
  Tensor s_bn = bn->weight / torch::sqrt(bn->running_var + bn->options.eps());
  Tensor w = conv->weight * s_bn.view({-1, 1, 1, 1});
  Tensor b = bn->bias - bn->running_mean * s_bn;
  if (conv->bias.defined()) b = b + conv->bias * s_bn;
  return {w, b};
}

void ConvImpl::fit_weight_steps_to_folded() {
  Tensor w = folded_weight_bias().first;
  for (int bits : conv->w_bits()) {
    WeightQuantizerImpl* q = conv->weight_quantizer(bits);
    if (q) q->fit_to(w);
  }
}

bool ConvImpl::propagate(bool input_nonneg) {
  conv->set_input_nonneg(input_nonneg);
  return act->output_nonneg();
}
bool ConvImpl::propagate_nonneg(const std::vector<bool>& inputs) {
  return propagate(inputs.at(0));
}

// ---------------------------------------------------------------------------------------------
BottleneckImpl::BottleneckImpl(BuildContext& ctx, const std::string& name, int64_t c1, int64_t c2,
                               bool shortcut, int64_t g, int64_t k1, int64_t k2, double e) {
  const int64_t c_ = int64_t(double(c2) * e);
  cv1 = register_module("cv1", Conv(ctx, name + ".cv1", c1, c_, k1, 1));
  cv2 = register_module("cv2", Conv(ctx, name + ".cv2", c_, c2, k2, 1, -1, g));
  add = shortcut && c1 == c2;
}

Tensor BottleneckImpl::forward(const Tensor& x) {
  Tensor y = cv2(cv1(x));
  return add ? x + y : y;
}

bool BottleneckImpl::propagate_nonneg(const std::vector<bool>& in) {
  bool y = cv2->propagate(cv1->propagate(in.at(0)));
  return add ? (in.at(0) && y) : y;
}

// ---------------------------------------------------------------------------------------------
C2fImpl::C2fImpl(BuildContext& ctx, const std::string& name, int64_t c1, int64_t c2, int64_t n,
                 bool shortcut, int64_t g, double e) {
  const int64_t c = int64_t(double(c2) * e);
  cv1 = register_module("cv1", Conv(ctx, name + ".cv1", c1, 2 * c, 1, 1));
  cv2 = register_module("cv2", Conv(ctx, name + ".cv2", (2 + n) * c, c2, 1));
  for (int64_t i = 0; i < n; ++i)
    m.push_back(std::make_shared<BottleneckImpl>(ctx, name + ".m." + std::to_string(i), c, c,
                                                 shortcut, g, 3, 3, 1.0));
  register_module("m", as_module_list(m));
}

Tensor C2fImpl::forward_inputs(const std::vector<Tensor>& in) {
  std::vector<Tensor> y = cv1(in.at(0)).chunk(2, 1);
  for (auto& b : m) y.push_back(b->forward(y.back()));
  return cv2(torch::cat(y, 1));
}

bool C2fImpl::propagate_nonneg(const std::vector<bool>& in) {
  bool a = cv1->propagate(in.at(0));
  bool all = a;
  for (auto& b : m) {
    a = b->propagate_nonneg({a});
    all = all && a;
  }
  return cv2->propagate(all);
}

// ---------------------------------------------------------------------------------------------
C3Impl::C3Impl(BuildContext& ctx, const std::string& name, int64_t c1, int64_t c2, int64_t n,
               bool shortcut, int64_t g, double e) {
  const int64_t c_ = int64_t(double(c2) * e);
  cv1 = register_module("cv1", Conv(ctx, name + ".cv1", c1, c_, 1, 1));
  cv2 = register_module("cv2", Conv(ctx, name + ".cv2", c1, c_, 1, 1));
  cv3 = register_module("cv3", Conv(ctx, name + ".cv3", 2 * c_, c2, 1));
  for (int64_t i = 0; i < n; ++i)
    m.push_back(std::make_shared<BottleneckImpl>(ctx, name + ".m." + std::to_string(i), c_, c_,
                                                 shortcut, g, 1, 3, 1.0));
  register_module("m", as_module_list(m));
}

Tensor C3Impl::forward_inputs(const std::vector<Tensor>& in) {
  Tensor a = cv1(in.at(0));
  for (auto& b : m) a = b->forward(a);
  return cv3(torch::cat({a, cv2(in.at(0))}, 1));
}

bool C3Impl::propagate_nonneg(const std::vector<bool>& in) {
  bool a = cv1->propagate(in.at(0));
  for (auto& b : m) a = b->propagate_nonneg({a});
  bool c = cv2->propagate(in.at(0));
  return cv3->propagate(a && c);
}

// ---------------------------------------------------------------------------------------------
SPPFImpl::SPPFImpl(BuildContext& ctx, const std::string& name, int64_t c1, int64_t c2, int64_t k_)
    : k(k_) {
  const int64_t c_ = c1 / 2;
  cv1 = register_module("cv1", Conv(ctx, name + ".cv1", c1, c_, 1, 1));
  cv2 = register_module("cv2", Conv(ctx, name + ".cv2", c_ * 4, c2, 1, 1));
}

Tensor SPPFImpl::forward_inputs(const std::vector<Tensor>& in) {
  Tensor x = cv1(in.at(0));
  Tensor y1 = torch::max_pool2d(x, k, 1, k / 2);
  Tensor y2 = torch::max_pool2d(y1, k, 1, k / 2);
  Tensor y3 = torch::max_pool2d(y2, k, 1, k / 2);
  return cv2(torch::cat({x, y1, y2, y3}, 1));
}

bool SPPFImpl::propagate_nonneg(const std::vector<bool>& in) {
  return cv2->propagate(cv1->propagate(in.at(0)));
}

// ---------------------------------------------------------------------------------------------
Tensor UpsampleImpl::forward_inputs(const std::vector<Tensor>& in) {
  namespace F = torch::nn::functional;
  return F::interpolate(in.at(0), F::InterpolateFuncOptions()
                                      .scale_factor(std::vector<double>{scale_, scale_})
                                      .mode(torch::kNearest));
}

Tensor ConcatImpl::forward_inputs(const std::vector<Tensor>& in) {
  return torch::cat(in, dim_);
}
bool ConcatImpl::propagate_nonneg(const std::vector<bool>& in) {
  for (bool b : in)
    if (!b) return false;
  return true;
}

RepeatImpl::RepeatImpl(std::vector<std::shared_ptr<BlockImpl>> blocks)
    : blocks_(std::move(blocks)) {
  for (size_t i = 0; i < blocks_.size(); ++i) register_module(std::to_string(i), blocks_[i]);
}
Tensor RepeatImpl::forward_inputs(const std::vector<Tensor>& in) {
  Tensor x = blocks_.at(0)->forward_inputs(in);
  for (size_t i = 1; i < blocks_.size(); ++i) x = blocks_[i]->forward_inputs({x});
  return x;
}
bool RepeatImpl::propagate_nonneg(const std::vector<bool>& in) {
  bool a = blocks_.at(0)->propagate_nonneg(in);
  for (size_t i = 1; i < blocks_.size(); ++i) a = blocks_[i]->propagate_nonneg({a});
  return a;
}

// ---------------------------------------------------------------------------------------------
DetectBranchImpl::DetectBranchImpl(BuildContext& ctx, const std::string& name, int64_t c_in,
                                   int64_t c_mid, int64_t c_out) {
  c0 = register_module("0", Conv(ctx, name + ".0", c_in, c_mid, 3));
  c1 = register_module("1", Conv(ctx, name + ".1", c_mid, c_mid, 3));
  SiteSpec spec = ctx.resolve(name + ".2", false);
  QConv2dImpl::Options o{c_mid, c_out, 1, 1, 0, 1, 1, true};
  out = register_module("2", QConv2d(o, spec.w_bits, spec.a_bits, ctx.sampling, ctx.recompute));
  add_conv_site(ctx, name + ".2", out.get(), nullptr, nullptr);
}

Tensor DetectBranchImpl::forward(const Tensor& x) {
  return out(c1(c0(x)));
}

std::pair<Tensor, Tensor> make_anchor_points(const std::vector<std::pair<int64_t, int64_t>>& sizes,
                                             const std::vector<double>& strides) {
  std::vector<Tensor> points, stride_list;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const auto [h, w] = sizes[i];
    Tensor sx = torch::arange(w, torch::kFloat) + 0.5;
    Tensor sy = torch::arange(h, torch::kFloat) + 0.5;
    auto grids = torch::meshgrid({sy, sx}, "ij");
    points.push_back(torch::stack({grids[1], grids[0]}, -1).view({-1, 2}));
    stride_list.push_back(torch::full({h * w, 1}, strides.at(i), torch::kFloat));
  }
  return {torch::cat(points, 0), torch::cat(stride_list, 0)};
}

Tensor dist_to_bbox(const Tensor& ltrb, const Tensor& points) {
  auto lt = ltrb.narrow(-1, 0, 2);
  auto rb = ltrb.narrow(-1, 2, 2);
  return torch::cat({points - lt, points + rb}, -1);
}

Tensor dfl_decode(const Tensor& logits, int64_t reg_max) {
  auto shape = logits.sizes().vec();
  shape.back() = 4;
  shape.push_back(reg_max);
  Tensor prob = torch::softmax(logits.reshape(shape), -1);
  Tensor proj = torch::arange(reg_max, logits.options());
  return (prob * proj).sum(-1);
}

DetectImpl::DetectImpl(BuildContext& ctx, const std::string& name, int64_t nc_,
                       std::vector<int64_t> ch) {
  nc = nc_;
  const int64_t c2 = std::max({int64_t{16}, ch.at(0) / 4, kRegMax * 4});
  const int64_t c3 = std::max(ch.at(0), std::min(nc, int64_t{100}));
  torch::nn::ModuleList l2, l3;
  for (size_t i = 0; i < ch.size(); ++i) {
    cv2.push_back(std::make_shared<DetectBranchImpl>(ctx, name + ".cv2." + std::to_string(i), ch[i],
                                                     c2, 4 * kRegMax));
    l2->push_back(cv2.back());
  }
  for (size_t i = 0; i < ch.size(); ++i) {
    cv3.push_back(
        std::make_shared<DetectBranchImpl>(ctx, name + ".cv3." + std::to_string(i), ch[i], c3, nc));
    l3->push_back(cv3.back());
  }
  register_module("cv2", l2);
  register_module("cv3", l3);
  auto dfl = std::make_shared<torch::nn::Module>();
  auto dfl_conv = std::make_shared<torch::nn::Module>();
  dfl_weight = dfl_conv->register_parameter(
      "weight", torch::arange(kRegMax, torch::kFloat).view({1, kRegMax, 1, 1}), false);
  dfl->register_module("conv", dfl_conv);
  register_module("dfl", dfl);
}

std::vector<Tensor> DetectImpl::forward_levels(const std::vector<Tensor>& inputs) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < inputs.size(); ++i)
    out.push_back(torch::cat({cv2.at(i)->forward(inputs[i]), cv3.at(i)->forward(inputs[i])}, 1));
  return out;
}

Predictions DetectImpl::decode(const std::vector<Tensor>& raw) const {
  std::vector<Tensor> flat;
  std::vector<std::pair<int64_t, int64_t>> sizes;
  const int64_t b = raw.at(0).size(0);
  for (const auto& r : raw) {
    flat.push_back(r.view({b, r.size(1), -1}));
    sizes.emplace_back(r.size(2), r.size(3));
  }
  Tensor all = torch::cat(flat, 2).transpose(1, 2);  // [B, A, 64 + nc]
  auto [points, stride] = make_anchor_points(sizes, strides);
  points = points.to(all.device());
  stride = stride.to(all.device());
  Tensor dist = dfl_decode(all.narrow(2, 0, 4 * kRegMax), kRegMax);
  Predictions p;
  p.boxes = dist_to_bbox(dist, points) * stride;
  p.scores = torch::sigmoid(all.narrow(2, 4 * kRegMax, nc));
  return p;
}

void DetectImpl::set_strides(const std::vector<double>& s) {
  strides = s;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < cv2.size(); ++i) {
    cv2[i]->out->bias.fill_(1.0);
    cv3[i]->out->bias.fill_(std::log(5.0 / double(nc) / std::pow(640.0 / s.at(i), 2)));
  }
}

bool DetectImpl::propagate_nonneg(const std::vector<bool>& inputs) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    for (auto* branch : {cv2[i].get(), cv3[i].get()}) {
      bool a = branch->c1->propagate(branch->c0->propagate(inputs[i]));
      branch->out->set_input_nonneg(a);
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
DetectV5Impl::DetectV5Impl(BuildContext& ctx, const std::string& name, int64_t nc_,
                           std::vector<std::vector<double>> anchors, std::vector<int64_t> ch) {
  nc = nc_;
  if (anchors.size() != ch.size())
    throw Error("Detect: " + std::to_string(anchors.size()) + " anchor levels for " +
                std::to_string(ch.size()) + " inputs; give one anchor list per input");
  const int64_t na = int64_t(anchors.at(0).size() / 2);
  std::vector<float> flat;
  for (const auto& level : anchors) {
    if (level.size() != size_t(2 * na) || level.empty())
      throw Error("Detect: every anchor level must list the same number of (w, h) pairs");
    for (double v : level) flat.push_back(float(v));
  }
  anchors_px =
      register_buffer("anchors", torch::tensor(flat).view({int64_t(anchors.size()), na, 2}));
  torch::nn::ModuleList list;
  for (size_t i = 0; i < ch.size(); ++i) {
    const std::string site = name + ".m." + std::to_string(i);
    SiteSpec spec = ctx.resolve(site, false);
    QConv2dImpl::Options o{ch[i], na * (nc + 5), 1, 1, 0, 1, 1, true};
    m.push_back(
        std::make_shared<QConv2dImpl>(o, spec.w_bits, spec.a_bits, ctx.sampling, ctx.recompute));
    list->push_back(m.back());
    add_conv_site(ctx, site, m.back().get(), nullptr, nullptr);
  }
  register_module("m", list);
}

std::vector<Tensor> DetectV5Impl::forward_levels(const std::vector<Tensor>& inputs) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor y = m.at(i)->forward(inputs[i]);
    const int64_t b = y.size(0), h = y.size(2), w = y.size(3);
    out.push_back(y.view({b, na(), nc + 5, h, w}).permute({0, 1, 3, 4, 2}).contiguous());
  }
  return out;
}

Predictions DetectV5Impl::decode(const std::vector<Tensor>& raw) const {
  std::vector<Tensor> boxes, scores;
  for (size_t i = 0; i < raw.size(); ++i) {
    const Tensor& r = raw[i];  // [B, na, H, W, 5 + nc]
    const int64_t b = r.size(0), h = r.size(2), w = r.size(3);
    Tensor y = torch::sigmoid(r);
    auto grids =
        torch::meshgrid({torch::arange(h, r.options()), torch::arange(w, r.options())}, "ij");
    Tensor grid = torch::stack({grids[1], grids[0]}, -1).view({1, 1, h, w, 2});
    Tensor anchor = anchors_px[int64_t(i)].to(r.device()).view({1, na(), 1, 1, 2});
    Tensor xy = (y.narrow(-1, 0, 2) * 2.0 - 0.5 + grid) * strides.at(i);
    Tensor wh = (y.narrow(-1, 2, 2) * 2.0).pow(2) * anchor;
    boxes.push_back(torch::cat({xy - wh / 2, xy + wh / 2}, -1).view({b, -1, 4}));
    scores.push_back((y.narrow(-1, 5, nc) * y.narrow(-1, 4, 1)).view({b, -1, nc}));
  }
  return {torch::cat(boxes, 1), torch::cat(scores, 1)};
}

void DetectV5Impl::set_strides(const std::vector<double>& s) {
  strides = s;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < m.size(); ++i) {
    Tensor b = m[i]->bias.view({na(), -1});
    b.select(1, 4).add_(std::log(8.0 / std::pow(640.0 / s.at(i), 2)));
    b.narrow(1, 5, nc).add_(std::log(0.6 / (double(nc) - 0.99)));
  }
}

bool DetectV5Impl::propagate_nonneg(const std::vector<bool>& inputs) {
  for (size_t i = 0; i < inputs.size(); ++i) m[i]->set_input_nonneg(inputs[i]);
  return false;
}

}  // namespace mixnas::supernet
