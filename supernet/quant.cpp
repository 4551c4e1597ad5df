#include "supernet/quant.h"

#include <ATen/Parallel.h>

#include <cmath>

#include "core/error.h"
#include "supernet/fused_kernels.h"

namespace mixnas::supernet {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

void check_bits(int bits, const std::string& where) {
  if ((bits >= 1 && bits <= 8) || bits == kFloatBits) return;
  throw Error(where + ": bit-width " + std::to_string(bits) +
              " is not supported; use 1..8, or 32 for fp32 (no quantization)");
}

namespace {

struct GradScaleFn : torch::autograd::Function<GradScaleFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, double scale) {
    ctx->saved_data["scale"] = scale;
    return x.view_as(x);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {grads[0] * ctx->saved_data["scale"].toDouble(), Tensor()};
  }
};

struct RoundSteFn : torch::autograd::Function<RoundSteFn> {
  static Tensor forward(AutogradContext*, const Tensor& x) { return torch::round(x); }
  static variable_list backward(AutogradContext*, variable_list grads) { return {grads[0]}; }
};

int64_t weight_qmax(int bits) {
  return bits == 1 ? 1 : (int64_t{1} << (bits - 1)) - 1;
}
int64_t weight_qmin(int bits) {
  return bits == 1 ? -1 : -(int64_t{1} << (bits - 1));
}

}  // namespace

Tensor grad_scale(const Tensor& x, double scale) {
  return GradScaleFn::apply(x, scale);
}
Tensor round_ste(const Tensor& x) {
  return RoundSteFn::apply(x);
}

Tensor weight_codes(const Tensor& w, const Tensor& step, int bits) {
  if (bits == 1) return torch::where(w >= 0, torch::ones_like(w), -torch::ones_like(w));
  return torch::clamp(torch::round(w / step), static_cast<double>(weight_qmin(bits)),
                      static_cast<double>(weight_qmax(bits)));
}

Tensor act_codes(const Tensor& x, double step, int64_t zero_point, int bits) {
  const double qmax = static_cast<double>((int64_t{1} << bits) - 1);
  return torch::clamp(torch::round(x / static_cast<float>(step)) + static_cast<double>(zero_point),
                      0.0, qmax);
}

int64_t act_zero_point(double step, double beta, int bits) {
  const float qmax = static_cast<float>((int64_t{1} << bits) - 1);
  float z = round_half_even(-static_cast<float>(beta) / static_cast<float>(step));
  return static_cast<int64_t>(std::min(std::max(z, 0.0f), qmax));
}

// ---------------------------------------------------------------------------------------------
WeightQuantizerImpl::WeightQuantizerImpl(int64_t out_channels, int bits) : bits_(bits) {
  check_bits(bits, "weight quantizer");
  step = register_parameter("step", torch::ones({out_channels, 1, 1, 1}));
  initialized_ = register_buffer("initialized", torch::zeros({1}, torch::kBool));
}

void WeightQuantizerImpl::init_from(const Tensor& w) {
  torch::NoGradGuard no_grad;
  Tensor mean_abs = w.abs().flatten(1).mean(1).view({-1, 1, 1, 1});
  Tensor init = bits_ == 1 ? mean_abs : 2.0 * mean_abs / std::sqrt(double(weight_qmax(bits_)));
  step.copy_(init.clamp_min(1e-8));
  initialized_.fill_(true);
}

void WeightQuantizerImpl::set_step(double value) {
  torch::NoGradGuard no_grad;
  step.fill_(value);
  initialized_.fill_(true);
}

Tensor WeightQuantizerImpl::forward(const Tensor& w) {
  if (bits_ == kFloatBits) return w;
  if (!initialized()) init_from(w.detach());
  const double qp = double(weight_qmax(bits_));
  const double n = double(w[0].numel());
  Tensor s = grad_scale(step, 1.0 / std::sqrt(qp * n));
  Tensor v = w / s;
  if (bits_ == 1) {
    // sign(w) with w >= 0 -> +1; straight-through gradient inside |w / s| <= 1.
    Tensor sign = torch::where(w >= 0, torch::ones_like(w), -torch::ones_like(w));
    Tensor clipped = torch::clamp(v, -1.0, 1.0);
    Tensor q = sign + (clipped - clipped.detach());
    return q * s;
  }
  Tensor q = round_ste(torch::clamp(v, double(weight_qmin(bits_)), qp));
  return q * s;
}

// ---------------------------------------------------------------------------------------------
ActQuantizerImpl::ActQuantizerImpl(int bits) : bits_(bits) {
  check_bits(bits, "activation quantizer");
  step = register_parameter("step", torch::ones({1}));
  beta = register_parameter("beta", torch::zeros({1}));
  initialized_ = register_buffer("initialized", torch::zeros({1}, torch::kBool));
}

void ActQuantizerImpl::set_image_input(bool value) {
  image_input_ = value;
  if (value && bits_ == 8) {
    torch::NoGradGuard no_grad;
    step.fill_(1.0 / 255.0);
    beta.zero_();
    initialized_.fill_(true);
  }
}

void ActQuantizerImpl::maybe_init(const Tensor& x) {
  if (bits_ == kFloatBits || initialized()) return;
  torch::NoGradGuard no_grad;
  const double qmax = double(this->qmax());
  double lo = x.min().item<double>();
  double hi = x.max().item<double>();
  if (unsigned_) {
    lo = 0.0;
    hi = std::max(hi, 0.0);
  }
  lo = std::min(lo, 0.0);  // real zero stays on the grid
  step.fill_(std::max((hi - lo) / qmax, 1e-6));
  beta.fill_(unsigned_ ? 0.0 : lo);
  initialized_.fill_(true);
}

void ActQuantizerImpl::set_params(double step_value, double beta_value) {
  torch::NoGradGuard no_grad;
  step.fill_(step_value);
  beta.fill_(beta_value);
  initialized_.fill_(true);
}

double ActQuantizerImpl::step_value() const {
  if (image_input_ && bits_ == 8) return 1.0 / 255.0;
  return step.item<double>();
}

int64_t ActQuantizerImpl::zero_point() const {
  if (unsigned_ || (image_input_ && bits_ == 8)) return 0;
  return act_zero_point(step.item<double>(), beta.item<double>(), bits_);
}

double ActQuantizerImpl::grad_scale(const Tensor& x) const {
  const double n = double(x.numel()) / double(std::max<int64_t>(x.size(0), 1));
  return 1.0 / std::sqrt(double(qmax()) * n);
}

Tensor ActQuantizerImpl::forward(const Tensor& x) {
  if (bits_ == kFloatBits) return x;
  maybe_init(x);
  const double qmax = double(this->qmax());
  if (image_input_ && bits_ == 8) {
    const float s = 1.0f / 255.0f;
    Tensor q = round_ste(torch::clamp(x / s, 0.0, qmax));
    return q * s;
  }
  const double g = grad_scale(x);
  Tensor s = supernet::grad_scale(step, g);
  Tensor z;
  if (unsigned_) {
    z = torch::zeros_like(s);
  } else {
    Tensor b = supernet::grad_scale(beta, g);
    z = round_ste(torch::clamp(-b / s, 0.0, qmax));
  }
  Tensor q = round_ste(torch::clamp(x / s + z, 0.0, qmax));
  return (q - z) * s;
}

// ---------------------------------------------------------------------------------------------
// Fused mixture of activation quantizers. Per candidate i: kind 0 = fp32 (identity), 1 = unsigned
// (z = 0), 2 = signed LSQ+ (z from beta), 3 = fixed image grid (s = 1/255, z = 0, no learning).
namespace {

struct CandidateParams {
  int kind;
  float p, s, z, qmax, gscale;
  bool z_inside;  // -beta / s within [0, qmax]: z depends on beta and s
  float beta;
};

std::vector<CandidateParams> candidate_params(const Tensor& probs, const Tensor& steps,
                                              const Tensor& betas,
                                              const std::vector<int64_t>& kinds,
                                              const std::vector<int64_t>& bits,
                                              const std::vector<double>& gscales) {
  const Tensor pc = probs.to(torch::kFloat).contiguous();
  const Tensor sc = steps.to(torch::kFloat).contiguous();
  const Tensor bc = betas.to(torch::kFloat).contiguous();
  auto pa = pc.accessor<float, 1>();
  auto sa = sc.accessor<float, 1>();
  auto ba = bc.accessor<float, 1>();
  std::vector<CandidateParams> out(kinds.size());
  for (size_t i = 0; i < kinds.size(); ++i) {
    CandidateParams& c = out[i];
    c.kind = int(kinds[i]);
    c.p = pa[i];
    c.gscale = float(gscales[i]);
    c.qmax = c.kind == 0 ? 0.0f : float((int64_t{1} << bits[i]) - 1);
    c.s = c.kind == 3 ? 1.0f / 255.0f : sa[i];
    c.beta = ba[i];
    c.z = 0.0f;
    c.z_inside = false;
    if (c.kind == 2) {
      float zf = -c.beta / c.s;
      c.z_inside = zf >= 0.0f && zf <= c.qmax;
      c.z = std::min(std::max(round_half_even(zf), 0.0f), c.qmax);
    }
  }
  return out;
}

std::vector<fused::QuantCandidate> to_fused(const std::vector<CandidateParams>& cands) {
  std::vector<fused::QuantCandidate> out;
  for (const auto& c : cands) out.push_back({c.kind, c.p, c.s, c.z, c.qmax, c.beta, c.z_inside});
  return out;
}

struct MixedActQuantFn : torch::autograd::Function<MixedActQuantFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x_in, const Tensor& probs,
                        const Tensor& steps, const Tensor& betas, std::vector<int64_t> kinds,
                        std::vector<int64_t> bits, std::vector<double> gscales) {
    Tensor x = x_in.contiguous();
    ctx->save_for_backward({x, probs, steps, betas});
    ctx->saved_data["kinds"] = kinds;
    ctx->saved_data["bits"] = bits;
    ctx->saved_data["gscales"] = gscales;
    auto cands =
        candidate_params(probs.detach(), steps.detach(), betas.detach(), kinds, bits, gscales);
    Tensor out = torch::empty_like(x);
    const float* xp = x.data_ptr<float>();
    float* op = out.data_ptr<float>();
    const auto fc = to_fused(cands);
    at::parallel_for(0, x.numel(), 16384, [&](int64_t b, int64_t e) {
      fused::mixed_quant_forward(xp + b, op + b, e - b, fc.data(), int(fc.size()));
    });
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    Tensor x = saved[0];
    Tensor gout = grads[0].contiguous();
    auto kinds = ctx->saved_data["kinds"].toIntVector();
    auto bits = ctx->saved_data["bits"].toIntVector();
    auto gscales = ctx->saved_data["gscales"].toDoubleVector();
    auto cands = candidate_params(saved[1], saved[2], saved[3], kinds, bits, gscales);
    const int64_t k_count = int64_t(cands.size());
    Tensor gx = torch::empty_like(x);
    const float* xp = x.data_ptr<float>();
    const float* gp = gout.data_ptr<float>();
    float* gxp = gx.data_ptr<float>();
    const int64_t n = x.numel();
    const int64_t chunk = 16384;
    const int64_t n_chunks = (n + chunk - 1) / chunk;
    // Per chunk: d/dp, d/ds, d/dbeta for each candidate (double accumulators).
    std::vector<double> partial(size_t(n_chunks * k_count * 3), 0.0);
    const auto fc = to_fused(cands);
    at::parallel_for(0, n_chunks, 1, [&](int64_t cb, int64_t ce) {
      for (int64_t ch = cb; ch < ce; ++ch) {
        const int64_t b = ch * chunk, e = std::min(n, b + chunk);
        fused::mixed_quant_backward(xp + b, gp + b, gxp + b, e - b, fc.data(), int(k_count),
                                    partial.data() + ch * k_count * 3);
      }
    });
    std::vector<double> total(size_t(k_count * 3), 0.0);
    for (int64_t ch = 0; ch < n_chunks; ++ch)
      for (int64_t j = 0; j < k_count * 3; ++j)
        total[size_t(j)] += partial[size_t(ch * k_count * 3 + j)];
    Tensor gprob = torch::zeros({k_count});
    Tensor gstep = torch::zeros({k_count});
    Tensor gbeta = torch::zeros({k_count});
    for (int64_t i = 0; i < k_count; ++i) {
      const auto& c = cands[size_t(i)];
      gprob[i] = total[size_t(i * 3)];
      if (c.kind == 1 || c.kind == 2) {
        gstep[i] = double(c.p) * c.gscale * total[size_t(i * 3 + 1)];
        if (c.kind == 2) gbeta[i] = double(c.p) * c.gscale * total[size_t(i * 3 + 2)];
      }
    }
    return {gx, gprob, gstep, gbeta, Tensor(), Tensor(), Tensor()};
  }
};

}  // namespace

Tensor mixed_act_quant(const Tensor& x, const Tensor& probs,
                       const std::vector<ActQuantizerImpl*>& quantizers, bool recompute) {
  for (auto* q : quantizers)
    if (q) q->maybe_init(x);
  if (!recompute || x.scalar_type() != torch::kFloat) {
    Tensor out;
    for (size_t i = 0; i < quantizers.size(); ++i) {
      Tensor branch = quantizers[i] ? quantizers[i]->forward(x) : x;
      Tensor term = probs[int64_t(i)] * branch;
      out = out.defined() ? out + term : term;
    }
    return out;
  }
  std::vector<int64_t> kinds, bits;
  std::vector<double> gscales;
  std::vector<Tensor> steps, betas;
  Tensor zero = torch::zeros({1});
  for (auto* q : quantizers) {
    if (!q || q->bits() == kFloatBits) {
      kinds.push_back(0);
      bits.push_back(kFloatBits);
      gscales.push_back(0.0);
      steps.push_back(zero);
      betas.push_back(zero);
      continue;
    }
    const bool image = q->image_input() && q->bits() == 8;
    kinds.push_back(image ? 3 : (q->is_unsigned() ? 1 : 2));
    bits.push_back(q->bits());
    gscales.push_back(q->grad_scale(x));
    steps.push_back(q->step.view({1}));
    betas.push_back(q->beta.view({1}));
  }
  return MixedActQuantFn::apply(x, probs.to(torch::kFloat), torch::cat(steps), torch::cat(betas),
                                kinds, bits, gscales);
}

}  // namespace mixnas::supernet
