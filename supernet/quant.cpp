#include "supernet/quant.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

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

void WeightQuantizerImpl::fit_to(const Tensor& w) {
  torch::NoGradGuard no_grad;
  if (bits_ == kFloatBits) return;
  if (bits_ == 1) return init_from(w);  // mean|w_c|: already the optimum
  Tensor flat = w.detach().flatten(1).to(torch::kFloat);
  const double qmax = double(weight_qmax(bits_));
  Tensor amax = std::get<0>(flat.abs().max(1, /*keepdim=*/true)).clamp_min(1e-8);
  Tensor best_err, best_step;
  for (int k = 4; k <= 40; ++k) {
    Tensor s = amax * (double(k) / 40.0 / qmax);
    Tensor err = (weight_codes(flat, s, bits_) * s - flat).square().sum(1, true);
    if (!best_err.defined()) {
      best_err = err;
      best_step = s;
    } else {
      Tensor better = err < best_err;
      best_err = torch::where(better, err, best_err);
      best_step = torch::where(better, s, best_step);
    }
  }
  step.copy_(best_step.view_as(step));
  initialized_.fill_(true);
}

void WeightQuantizerImpl::set_step(double value) {
  torch::NoGradGuard no_grad;
  step.fill_(value);
  initialized_.fill_(true);
}

double WeightQuantizerImpl::grad_scale(const Tensor& w) const {
  const double n = double(w.numel()) / double(std::max<int64_t>(w.size(0), 1));
  return 1.0 / std::sqrt(double(weight_qmax(bits_)) * n);
}

Tensor WeightQuantizerImpl::forward(const Tensor& w) {
  if (bits_ == kFloatBits) return w;
  if (!initialized()) init_from(w.detach());
  const double qp = double(weight_qmax(bits_));
  Tensor s = supernet::grad_scale(step, grad_scale(w));
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

void ActQuantizerImpl::observe(const Tensor& x) {
  if (bits_ == kFloatBits || image_input_ || x.numel() == 0) return;
  torch::NoGradGuard no_grad;
  Tensor v = x.detach().flatten().to(torch::kFloat);
  constexpr int64_t kMaxValues = int64_t{1} << 16;
  if (v.numel() > kMaxValues)
    v = v.slice(0, 0, v.numel(), (v.numel() + kMaxValues - 1) / kMaxValues);
  const double qmax = double(this->qmax());
  const double lo = unsigned_ ? 0.0 : std::min(v.min().item<double>(), 0.0);
  const double hi = std::max(v.max().item<double>(), 0.0);
  if (!(hi > lo)) return;
  // Candidate upper ends as one [K, 1] column; the grid of each: s = (hi_k - lo) / qmax and the
  // integer zero point of NUMERICS (real zero on the grid).
  std::vector<double> his;
  for (int k = 10; k <= 40; ++k) his.push_back(std::max(hi * k / 40.0, lo + 1e-6));
  Tensor hk = torch::tensor(his, torch::kDouble).to(torch::kFloat).view({-1, 1});
  Tensor s = ((hk - lo) / qmax).clamp_min(1e-8);
  Tensor z = torch::clamp(torch::round(-lo / s), 0.0, qmax);
  Tensor q = torch::clamp(torch::round(v.view({1, -1}) / s) + z, 0.0, qmax);
  Tensor err = ((q - z) * s - v.view({1, -1})).square().sum(1);
  const int64_t best = err.argmin().item<int64_t>();
  observed_lo_ += lo;
  observed_hi_ += his[size_t(best)];
  ++observed_;
}

bool ActQuantizerImpl::finish_observation() {
  if (observed_ == 0) return false;
  const double lo = observed_lo_ / double(observed_), hi = observed_hi_ / double(observed_);
  observed_lo_ = observed_hi_ = 0;
  observed_ = 0;
  set_params(std::max((hi - lo) / double(qmax()), 1e-6), unsigned_ ? 0.0 : lo);
  return true;
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
// Fused mixtures. The custom autograd functions below keep only their input (and the small
// parameters) for backward and compute the K candidates in one pass over the data, forward and
// backward; their values are those of the composite forms (same float operations in the same
// order), their gradients equal the composite ones up to float rounding.
namespace {

float scalar_value(const Tensor& t) {
  return t.scalar_type() == torch::kFloat ? *t.data_ptr<float>() : t.item<float>();
}

// probs as float32 contiguous values.
std::vector<float> prob_values(const Tensor& probs) {
  const Tensor p = probs.detach().to(torch::kFloat).contiguous();
  return std::vector<float>(p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
}

// Per activation-quantizer candidate i: kind 0 = fp32 (identity), 1 = unsigned (z = 0), 2 = signed
// LSQ+ (z from beta), 3 = fixed image grid (s = 1/255, z = 0, no learning). Learned parameters are
// passed as one list: step for kind 1, step then beta for kind 2, nothing for kinds 0 and 3.
struct CandidateParams {
  int kind;
  float p, s, z, qmax;
  double gscale;
  bool z_inside;  // -beta / s within [0, qmax]: z depends on beta and s
  float beta;
  int step_index = -1, beta_index = -1;  // positions in the parameter list
};

std::vector<CandidateParams> candidate_params(const Tensor& probs, at::TensorList params,
                                              const std::vector<int64_t>& kinds,
                                              const std::vector<int64_t>& bits,
                                              const std::vector<double>& gscales) {
  const std::vector<float> pv = prob_values(probs);
  std::vector<CandidateParams> out(kinds.size());
  int next = 0;
  for (size_t i = 0; i < kinds.size(); ++i) {
    CandidateParams& c = out[i];
    c.kind = int(kinds[i]);
    c.p = pv[i];
    c.gscale = gscales[i];
    c.qmax = c.kind == 0 ? 0.0f : float((int64_t{1} << bits[i]) - 1);
    c.s = c.kind == 3 ? 1.0f / 255.0f : 1.0f;
    c.beta = 0.0f;
    if (c.kind == 1 || c.kind == 2) {
      c.step_index = next++;
      c.s = scalar_value(params[size_t(c.step_index)]);
    }
    if (c.kind == 2) {
      c.beta_index = next++;
      c.beta = scalar_value(params[size_t(c.beta_index)]);
    }
    c.z = 0.0f;
    c.z_inside = false;
    if (c.kind == 2) {
      const float zf = -c.beta / c.s;
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

Tensor scalar_grad(const Tensor& like, double value) {
  return torch::full_like(like, value, torch::MemoryFormat::Contiguous);
}

constexpr int64_t kChunk = 16384;  // elements per parallel work item

struct MixedActQuantFn : torch::autograd::Function<MixedActQuantFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x_in, const Tensor& probs,
                        at::TensorList params, std::vector<int64_t> kinds,
                        std::vector<int64_t> bits, std::vector<double> gscales) {
    RECORD_FUNCTION("mixnas::mixed_act_quant", std::vector<c10::IValue>({x_in}));
    Tensor x = x_in.contiguous();
    variable_list to_save{x, probs};
    to_save.insert(to_save.end(), params.begin(), params.end());
    ctx->save_for_backward(to_save);
    ctx->saved_data["kinds"] = kinds;
    ctx->saved_data["bits"] = bits;
    ctx->saved_data["gscales"] = gscales;
    const auto fc = to_fused(candidate_params(probs, params, kinds, bits, gscales));
    Tensor out = torch::empty_like(x);
    const float* xp = x.data_ptr<float>();
    float* op = out.data_ptr<float>();
    at::parallel_for(0, x.numel(), kChunk, [&](int64_t b, int64_t e) {
      fused::mixed_quant_forward(xp + b, op + b, e - b, fc.data(), int(fc.size()));
    });
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const Tensor& x = saved[0];
    const at::TensorList params(saved.data() + 2, saved.size() - 2);
    Tensor gout = grads[0].contiguous();
    const auto cands = candidate_params(saved[1], params, ctx->saved_data["kinds"].toIntVector(),
                                        ctx->saved_data["bits"].toIntVector(),
                                        ctx->saved_data["gscales"].toDoubleVector());
    const int64_t k_count = int64_t(cands.size());
    Tensor gx = torch::empty_like(x);
    const float* xp = x.data_ptr<float>();
    const float* gp = gout.data_ptr<float>();
    float* gxp = gx.data_ptr<float>();
    const int64_t n = x.numel();
    const int64_t n_chunks = (n + kChunk - 1) / kChunk;
    // Per chunk: d/dp, d/ds, d/dbeta for each candidate (double accumulators).
    std::vector<double> partial(size_t(n_chunks * k_count * 3), 0.0);
    const auto fc = to_fused(cands);
    at::parallel_for(0, n_chunks, 1, [&](int64_t cb, int64_t ce) {
      for (int64_t ch = cb; ch < ce; ++ch) {
        const int64_t b = ch * kChunk, e = std::min(n, b + kChunk);
        fused::mixed_quant_backward(xp + b, gp + b, gxp + b, e - b, fc.data(), int(k_count),
                                    partial.data() + ch * k_count * 3);
      }
    });
    std::vector<double> total(size_t(k_count * 3), 0.0);
    for (int64_t ch = 0; ch < n_chunks; ++ch)
      for (int64_t j = 0; j < k_count * 3; ++j)
        total[size_t(j)] += partial[size_t(ch * k_count * 3 + j)];
    std::vector<float> gprob(size_t(k_count), 0.0f);
    variable_list out(2 + params.size() + 3);
    out[0] = gx;
    for (int64_t i = 0; i < k_count; ++i) {
      const auto& c = cands[size_t(i)];
      gprob[size_t(i)] = float(total[size_t(i * 3)]);
      if (c.step_index >= 0)
        out[size_t(2 + c.step_index)] = scalar_grad(
            params[size_t(c.step_index)], double(c.p) * c.gscale * total[size_t(i * 3 + 1)]);
      if (c.beta_index >= 0)
        out[size_t(2 + c.beta_index)] = scalar_grad(
            params[size_t(c.beta_index)], double(c.p) * c.gscale * total[size_t(i * 3 + 2)]);
    }
    out[1] = torch::tensor(gprob).to(saved[1].scalar_type());
    return out;
  }
};

// Weights: one candidate per w_bits (32 = fp32); the steps of the quantized ones are passed as a
// list, in candidate order.
struct MixedWeightQuantFn : torch::autograd::Function<MixedWeightQuantFn> {
  static std::vector<fused::WeightCandidate> candidates(const Tensor& probs, at::TensorList steps,
                                                        const std::vector<int64_t>& bits,
                                                        std::vector<Tensor>& keep) {
    const std::vector<float> pv = prob_values(probs);
    std::vector<fused::WeightCandidate> out;
    size_t next = 0;
    for (size_t j = 0; j < bits.size(); ++j) {
      fused::WeightCandidate c{int(bits[j]), pv[j], nullptr};
      if (c.bits != kFloatBits) {
        keep.push_back(steps[next++].detach().to(torch::kFloat).contiguous());
        c.step = keep.back().data_ptr<float>();
      }
      out.push_back(c);
    }
    return out;
  }

  static Tensor forward(AutogradContext* ctx, const Tensor& w_in, const Tensor& probs,
                        at::TensorList steps, std::vector<int64_t> bits,
                        std::vector<double> gscales) {
    RECORD_FUNCTION("mixnas::mixed_weight_quant", std::vector<c10::IValue>({w_in}));
    Tensor w = w_in.contiguous();
    variable_list to_save{w, probs};
    to_save.insert(to_save.end(), steps.begin(), steps.end());
    ctx->save_for_backward(to_save);
    ctx->saved_data["bits"] = bits;
    ctx->saved_data["gscales"] = gscales;
    std::vector<Tensor> keep;
    keep.reserve(steps.size());
    const auto cands = candidates(probs, steps, bits, keep);
    Tensor out = torch::empty_like(w);
    const int64_t rows = w.size(0), cols = rows > 0 ? w.numel() / rows : 0;
    fused::mixed_weight_forward(w.data_ptr<float>(), out.data_ptr<float>(), rows, cols,
                                cands.data(), int(cands.size()));
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const Tensor& w = saved[0];
    const at::TensorList steps(saved.data() + 2, saved.size() - 2);
    const auto bits = ctx->saved_data["bits"].toIntVector();
    const auto gscales = ctx->saved_data["gscales"].toDoubleVector();
    std::vector<Tensor> keep;
    keep.reserve(steps.size());
    const auto cands = candidates(saved[1], steps, bits, keep);
    const int64_t count = int64_t(cands.size());
    Tensor g = grads[0].contiguous();
    Tensor gw = torch::empty_like(w);
    const int64_t rows = w.size(0), cols = rows > 0 ? w.numel() / rows : 0;
    std::vector<double> gp(size_t(count), 0.0), gs(size_t(count * rows), 0.0);
    fused::mixed_weight_backward(w.data_ptr<float>(), g.data_ptr<float>(), gw.data_ptr<float>(),
                                 rows, cols, cands.data(), int(count), gp.data(), gs.data());
    variable_list out(2 + steps.size() + 2);
    out[0] = gw;
    out[1] = torch::tensor(std::vector<float>(gp.begin(), gp.end())).to(saved[1].scalar_type());
    size_t next = 0;
    for (int64_t j = 0; j < count; ++j) {
      if (cands[size_t(j)].bits == kFloatBits) continue;
      const Tensor& step = steps[next];
      Tensor gstep = torch::empty(step.sizes(), step.options().dtype(torch::kFloat));
      float* dst = gstep.data_ptr<float>();
      const double scale = double(cands[size_t(j)].p) * gscales[size_t(j)];
      for (int64_t r = 0; r < rows; ++r) dst[r] = float(scale * gs[size_t(j * rows + r)]);
      out[2 + next] = gstep.to(step.scalar_type());
      ++next;
    }
    return out;
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
  std::vector<Tensor> params;
  for (auto* q : quantizers) {
    if (!q || q->bits() == kFloatBits) {
      kinds.push_back(0);
      bits.push_back(kFloatBits);
      gscales.push_back(0.0);
      continue;
    }
    const bool image = q->image_input() && q->bits() == 8;
    const int64_t kind = image ? 3 : (q->is_unsigned() ? 1 : 2);
    kinds.push_back(kind);
    bits.push_back(q->bits());
    gscales.push_back(q->grad_scale(x));
    if (kind == 1 || kind == 2) params.push_back(q->step);
    if (kind == 2) params.push_back(q->beta);
  }
  return MixedActQuantFn::apply(x, probs, at::TensorList(params), kinds, bits, gscales);
}

Tensor mixed_weight_quant(const Tensor& w, const Tensor& probs,
                          const std::vector<WeightQuantizerImpl*>& quantizers, bool fused) {
  auto quantized = [](const WeightQuantizerImpl* q) { return q && q->bits() != kFloatBits; };
  for (auto* q : quantizers)
    if (quantized(q) && !q->initialized()) q->init_from(w.detach());
  if (!fused || w.scalar_type() != torch::kFloat || w.dim() < 1 || w.size(0) == 0) {
    Tensor out;
    for (size_t j = 0; j < quantizers.size(); ++j) {
      Tensor branch = quantized(quantizers[j]) ? quantizers[j]->forward(w) : w;
      Tensor term = probs[int64_t(j)] * branch;
      out = out.defined() ? out + term : term;
    }
    return out;
  }
  std::vector<int64_t> bits;
  std::vector<double> gscales;
  std::vector<Tensor> steps;
  for (auto* q : quantizers) {
    if (!quantized(q)) {
      bits.push_back(kFloatBits);
      gscales.push_back(0.0);
      continue;
    }
    bits.push_back(q->bits());
    gscales.push_back(q->grad_scale(w));
    steps.push_back(q->step);
  }
  return MixedWeightQuantFn::apply(w, probs, at::TensorList(steps), bits, gscales);
}

}  // namespace mixnas::supernet
