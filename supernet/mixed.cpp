#include "supernet/mixed.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <cmath>

#include "core/error.h"
#include "supernet/activation_observer.h"
#include "supernet/fused_kernels.h"

namespace mixnas::supernet {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {
thread_local bool g_shape_probe = false;
}

ShapeProbeGuard::ShapeProbeGuard() : previous_(g_shape_probe) {
  g_shape_probe = true;
}
ShapeProbeGuard::~ShapeProbeGuard() {
  g_shape_probe = previous_;
}
bool ShapeProbeGuard::active() {
  return g_shape_probe;
}

ArchMode parse_arch_mode(const std::string& name) {
  if (name == "softmax") return ArchMode::kSoftmax;
  if (name == "gumbel") return ArchMode::kGumbel;
  if (name == "hard_gumbel") return ArchMode::kHardGumbel;
  if (name == "fixed") return ArchMode::kFixed;
  throw Error("unknown architecture sampling mode '" + name +
              "'; valid: softmax, gumbel, hard_gumbel, fixed");
}

std::string arch_mode_name(ArchMode mode) {
  switch (mode) {
    case ArchMode::kSoftmax:
      return "softmax";
    case ArchMode::kGumbel:
      return "gumbel";
    case ArchMode::kHardGumbel:
      return "hard_gumbel";
    case ArchMode::kFixed:
      return "fixed";
  }
  return "?";
}

Tensor choice_weights(const Tensor& logits, const ArchSampling& sampling) {
  if (!logits.defined()) return torch::ones({1});
  const double tau = sampling.tau > 0 ? sampling.tau : 1.0;
  switch (sampling.mode) {
    case ArchMode::kSoftmax:
    case ArchMode::kFixed:
      // logits / 1 == logits exactly: skip the op (one autograd node less per choice and step).
      return torch::softmax(tau == 1.0 ? logits : logits / tau, 0);
    case ArchMode::kGumbel:
    case ArchMode::kHardGumbel: {
      Tensor u = torch::rand_like(logits).clamp(1e-10, 1.0 - 1e-7);
      Tensor y = torch::softmax((logits - torch::log(-torch::log(u))) / tau, 0);
      if (sampling.mode == ArchMode::kGumbel) return y;
      Tensor hard = torch::zeros_like(y);
      hard[y.argmax().item<int64_t>()] = 1.0;
      return hard - y.detach() + y;
    }
  }
  return torch::softmax(logits, 0);
}

// ---------------------------------------------------------------------------------------------
namespace {

struct MixedActFn : torch::autograd::Function<MixedActFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x_in, const Tensor& probs,
                        std::vector<int64_t> acts) {
    RECORD_FUNCTION("mixnas::mixed_activation", std::vector<c10::IValue>({x_in}));
    Tensor x = x_in.contiguous();
    ctx->save_for_backward({x, probs});
    ctx->saved_data["acts"] = acts;
    Tensor p = probs.detach().to(torch::kFloat).contiguous();
    std::vector<float> pv(p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
    Tensor out = torch::empty_like(x);
    const float* xp = x.data_ptr<float>();
    float* op = out.data_ptr<float>();
    std::vector<int> codes(acts.begin(), acts.end());
    at::parallel_for(0, x.numel(), 16384, [&](int64_t b, int64_t e) {
      fused::mixed_act_forward(xp + b, op + b, e - b, codes.data(), pv.data(), int(codes.size()));
    });
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    Tensor x = saved[0];
    auto acts = ctx->saved_data["acts"].toIntVector();
    Tensor p = saved[1].to(torch::kFloat).contiguous();
    std::vector<float> pv(p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
    Tensor g = grads[0].contiguous();
    Tensor gx = torch::empty_like(x);
    const float* xp = x.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    float* gxp = gx.data_ptr<float>();
    const int64_t n = x.numel(), chunk = 16384, n_chunks = (n + chunk - 1) / chunk;
    const size_t k_count = acts.size();
    std::vector<double> partial(size_t(n_chunks) * k_count, 0.0);
    std::vector<int> codes(acts.begin(), acts.end());
    at::parallel_for(0, n_chunks, 1, [&](int64_t cb, int64_t ce) {
      for (int64_t ch = cb; ch < ce; ++ch) {
        const int64_t b = ch * chunk, e = std::min(n, b + chunk);
        fused::mixed_act_backward(xp + b, gp + b, gxp + b, e - b, codes.data(), pv.data(),
                                  int(k_count), partial.data() + size_t(ch) * k_count);
      }
    });
    Tensor gprob = torch::zeros({int64_t(k_count)}, torch::kDouble);
    auto ga = gprob.accessor<double, 1>();
    for (int64_t ch = 0; ch < n_chunks; ++ch)
      for (size_t i = 0; i < k_count; ++i) ga[int64_t(i)] += partial[size_t(ch) * k_count + i];
    return {gx, gprob.to(saved[1].scalar_type()), Tensor()};
  }
};

}  // namespace

Tensor mixed_activation(const Tensor& x, const Tensor& probs, const std::vector<Act>& acts,
                        bool recompute) {
  if (recompute && x.scalar_type() == torch::kFloat) {
    std::vector<int64_t> codes;
    for (Act a : acts) codes.push_back(int64_t(a));
    return MixedActFn::apply(x, probs, codes);
  }
  Tensor out;
  for (size_t i = 0; i < acts.size(); ++i) {
    Tensor term = probs[int64_t(i)] * apply_act(acts[i], x);
    out = out.defined() ? out + term : term;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
MixedActivationImpl::MixedActivationImpl(std::vector<Act> candidates,
                                         std::shared_ptr<ArchSampling> sampling, bool recompute)
    : candidates_(std::move(candidates)), sampling_(std::move(sampling)), recompute_(recompute) {
  if (candidates_.empty()) throw Error("a mixed activation needs at least one candidate");
  if (candidates_.size() > 1)
    alpha = register_parameter("alpha", torch::zeros({int64_t(candidates_.size())}));
}

Tensor MixedActivationImpl::probabilities() const {
  if (!alpha.defined()) return torch::ones({1});
  return torch::softmax(alpha, 0);
}

int MixedActivationImpl::chosen() const {
  if (forced_ >= 0) return forced_;
  if (!alpha.defined()) return 0;
  return int(alpha.argmax().item<int64_t>());
}

bool MixedActivationImpl::output_nonneg() const {
  if (!searchable() || sampling_->mode == ArchMode::kFixed)
    return act_is_nonneg(candidates_[size_t(chosen())]);
  for (Act a : candidates_)
    if (!act_is_nonneg(a)) return false;
  return true;
}

Tensor MixedActivationImpl::forward(const Tensor& x) {
  if (ShapeProbeGuard::active()) return x;
  Tensor y = !searchable() || sampling_->mode == ArchMode::kFixed
                 ? apply_act(candidates_[size_t(chosen())], x)
                 : mixed_activation(x, choice_weights(alpha, *sampling_), candidates_, recompute_);
  ActivationObserver::notify(y);
  return y;
}

// ---------------------------------------------------------------------------------------------
QConv2dImpl::QConv2dImpl(const Options& options, std::vector<int> w_bits, std::vector<int> a_bits,
                         std::shared_ptr<ArchSampling> sampling, bool recompute)
    : options_(options),
      w_bits_(std::move(w_bits)),
      a_bits_(std::move(a_bits)),
      sampling_(std::move(sampling)),
      recompute_(recompute) {
  if (w_bits_.empty() || a_bits_.empty())
    throw Error("a quantized conv needs at least one w_bits and one a_bits candidate");
  if (options.in_channels % options.groups || options.out_channels % options.groups)
    throw Error("conv channels " + std::to_string(options.in_channels) + " -> " +
                std::to_string(options.out_channels) + " are not divisible by groups " +
                std::to_string(options.groups));
  const int64_t fan_in = options.in_channels / options.groups * options.kernel * options.kernel;
  const double bound = 1.0 / std::sqrt(double(fan_in));
  weight = register_parameter(
      "weight", torch::empty({options.out_channels, options.in_channels / options.groups,
                              options.kernel, options.kernel})
                    .uniform_(-bound, bound));
  if (options.bias)
    bias = register_parameter("bias", torch::empty({options.out_channels}).uniform_(-bound, bound));
  for (int b : w_bits_) {
    check_bits(b, "w_bits");
    wq_.push_back(b == kFloatBits ? nullptr
                                  : register_module("wq_b" + std::to_string(b),
                                                    std::make_shared<WeightQuantizerImpl>(
                                                        options.out_channels, b)));
  }
  for (int b : a_bits_) {
    check_bits(b, "a_bits");
    aq_.push_back(b == kFloatBits ? nullptr
                                  : register_module("aq_b" + std::to_string(b),
                                                    std::make_shared<ActQuantizerImpl>(b)));
  }
  if (w_bits_.size() > 1)
    alpha_w = register_parameter("alpha_w", torch::zeros({int64_t(w_bits_.size())}));
  if (a_bits_.size() > 1)
    alpha_a = register_parameter("alpha_a", torch::zeros({int64_t(a_bits_.size())}));
}

Tensor QConv2dImpl::w_probabilities() const {
  return alpha_w.defined() ? torch::softmax(alpha_w, 0) : torch::ones({1});
}
Tensor QConv2dImpl::a_probabilities() const {
  return alpha_a.defined() ? torch::softmax(alpha_a, 0) : torch::ones({1});
}
int QConv2dImpl::chosen_w() const {
  if (forced_w_ >= 0) return forced_w_;
  return alpha_w.defined() ? int(alpha_w.argmax().item<int64_t>()) : 0;
}
int QConv2dImpl::chosen_a() const {
  if (forced_a_ >= 0) return forced_a_;
  return alpha_a.defined() ? int(alpha_a.argmax().item<int64_t>()) : 0;
}

void QConv2dImpl::set_input_nonneg(bool value) {
  for (auto& q : aq_)
    if (q) q->set_unsigned(value);
}
void QConv2dImpl::set_image_input(bool value) {
  for (auto& q : aq_)
    if (q) q->set_image_input(value);
}

ActQuantizerImpl* QConv2dImpl::act_quantizer(int bits) {
  for (size_t i = 0; i < a_bits_.size(); ++i)
    if (a_bits_[i] == bits) return aq_[i].get();
  return nullptr;
}
WeightQuantizerImpl* QConv2dImpl::weight_quantizer(int bits) {
  for (size_t i = 0; i < w_bits_.size(); ++i)
    if (w_bits_[i] == bits) return wq_[i].get();
  return nullptr;
}

Tensor QConv2dImpl::quantized_input(const Tensor& x) {
  if (sampling_->quant != QuantMode::kOn) {
    if (sampling_->quant == QuantMode::kObserve)
      for (auto& q : aq_)
        if (q) q->observe(x);
    return x;
  }
  const bool single = a_bits_.size() == 1 || sampling_->mode == ArchMode::kFixed;
  if (single) {
    auto* q = aq_[size_t(a_bits_.size() == 1 ? 0 : chosen_a())].get();
    return q ? q->forward(x) : x;
  }
  std::vector<ActQuantizerImpl*> qs;
  for (auto& q : aq_) qs.push_back(q.get());
  return mixed_act_quant(x, choice_weights(alpha_a, *sampling_), qs, recompute_);
}

Tensor QConv2dImpl::quantized_weight(const Tensor& w) {
  if (sampling_->quant != QuantMode::kOn) return w;
  const bool single = w_bits_.size() == 1 || sampling_->mode == ArchMode::kFixed;
  if (single) {
    auto* q = wq_[size_t(w_bits_.size() == 1 ? 0 : chosen_w())].get();
    return q ? q->forward(w) : w;
  }
  std::vector<WeightQuantizerImpl*> qs;
  for (auto& q : wq_) qs.push_back(q.get());
  return mixed_weight_quant(w, choice_weights(alpha_w, *sampling_), qs, recompute_);
}

Tensor QConv2dImpl::forward(const Tensor& x) {
  return forward_folded(x, Tensor(), Tensor());
}

Tensor QConv2dImpl::forward_folded(const Tensor& x, const Tensor& w_scale,
                                   const Tensor& extra_bias) {
  last_in_shape_ = x.sizes().vec();
  Tensor out;
  if (ShapeProbeGuard::active()) {
    out = torch::conv2d(x, weight, bias, options_.stride, options_.padding, options_.dilation,
                        options_.groups);
  } else {
    Tensor w = w_scale.defined() ? weight * w_scale.view({-1, 1, 1, 1}) : weight;
    Tensor b = bias;
    if (extra_bias.defined()) b = b.defined() ? b * w_scale + extra_bias : extra_bias;
    out = torch::conv2d(quantized_input(x), quantized_weight(w), b, options_.stride,
                        options_.padding, options_.dilation, options_.groups);
  }
  last_out_shape_ = out.sizes().vec();
  return out;
}

ConvGeometry QConv2dImpl::geometry() const {
  ConvGeometry g;
  g.in_channels = options_.in_channels;
  g.out_channels = options_.out_channels;
  g.kernel = options_.kernel;
  g.stride = options_.stride;
  g.padding = options_.padding;
  g.groups = options_.groups;
  g.dilation = options_.dilation;
  g.has_bias = options_.bias;
  if (last_in_shape_.size() == 4) {
    g.in_h = last_in_shape_[2];
    g.in_w = last_in_shape_[3];
  }
  if (last_out_shape_.size() == 4) {
    g.out_h = last_out_shape_[2];
    g.out_w = last_out_shape_[3];
  }
  return g;
}

}  // namespace mixnas::supernet
