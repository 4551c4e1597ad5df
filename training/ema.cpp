#include "training/ema.h"

#include <cmath>
#include <string>

namespace mixnas::training {

supernet::YoloModel make_ema_model(const supernet::YoloModel& model) {
  supernet::YoloModel ema(model->spec(), model->build_options());
  {
    torch::NoGradGuard no_grad;
    auto dst_p = ema->named_parameters(true);
    for (const auto& p : model->named_parameters(true)) dst_p[p.key()].copy_(p.value());
    auto dst_b = ema->named_buffers(true);
    for (const auto& b : model->named_buffers(true)) dst_b[b.key()].copy_(b.value());
  }
  ema->eval();
  for (auto& p : ema->parameters()) p.set_requires_grad(false);
  return ema;
}

EmaPairs ema_pairs_of(const supernet::YoloModel& ema, const supernet::YoloModel& model) {
  EmaPairs p;
  // Parameters the model does not train (the DFL projection) are copied: an average of a constant
  // is not the constant in float arithmetic, and the exporter needs the exact ramp.
  auto add = [&](const torch::OrderedDict<std::string, torch::Tensor>& e,
                 const torch::OrderedDict<std::string, torch::Tensor>& m, bool parameters) {
    for (const auto& t : e) {
      const torch::Tensor& src = m[t.key()];
      if (t.value().is_floating_point() && (!parameters || src.requires_grad())) {
        p.ema_float.push_back(t.value());
        p.model_float.push_back(src.detach());
      } else {
        p.ema_other.push_back(t.value());
        p.model_other.push_back(src);
      }
    }
  };
  add(ema->named_parameters(true), model->named_parameters(true), true);
  add(ema->named_buffers(true), model->named_buffers(true), false);
  return p;
}

double ema_decay(int64_t updates) {
  return 0.9999 * (1.0 - std::exp(-static_cast<double>(updates) / 2000.0));
}

void update_ema(const EmaPairs& p, double d) {
  torch::NoGradGuard no_grad;
  if (!p.ema_float.empty()) {
    at::_foreach_mul_(p.ema_float, d);
    at::_foreach_add_(p.ema_float, p.model_float, 1.0 - d);
  }
  for (size_t i = 0; i < p.ema_other.size(); ++i) p.ema_other[i].copy_(p.model_other[i]);
}

}  // namespace mixnas::training
