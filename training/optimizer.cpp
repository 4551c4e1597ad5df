#include "training/optimizer.h"

#include <algorithm>
#include <cmath>

namespace mixnas::training {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool contains(const std::vector<torch::Tensor>& v, const torch::Tensor& t) {
  return std::any_of(v.begin(), v.end(), [&](const torch::Tensor& a) { return a.is_same(t); });
}

}  // namespace

std::vector<ClassifiedParam> classify_parameters(const supernet::YoloModel& model) {
  const supernet::ParamGroups groups = model->param_groups();
  std::vector<ClassifiedParam> out;
  for (const auto& p : model->named_parameters(true)) {
    const torch::Tensor& t = p.value();
    ParamClass cls = ParamClass::kDecay;
    if (contains(groups.arch, t))
      cls = ParamClass::kArch;
    else if (contains(groups.quant, t))
      cls = ParamClass::kQuant;
    else if (ends_with(p.key(), "bias"))
      cls = ParamClass::kBias;
    else if (t.dim() <= 1)
      cls = ParamClass::kNorm;
    out.push_back({t, cls});
  }
  return out;
}

std::vector<torch::Tensor> of_classes(const std::vector<ClassifiedParam>& params,
                                      std::initializer_list<ParamClass> classes) {
  std::vector<torch::Tensor> out;
  for (const auto& p : params)
    if (std::find(classes.begin(), classes.end(), p.cls) != classes.end()) out.push_back(p.tensor);
  return out;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::string& name, double lr0,
                                                        double momentum,
                                                        const std::vector<ParamGroupSpec>& groups) {
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  if (name == "SGD") {
    for (const auto& g : groups) {
      param_groups.emplace_back(
          g.params,
          std::make_unique<torch::optim::SGDOptions>(
              torch::optim::SGDOptions(lr0).momentum(momentum).nesterov(true).weight_decay(
                  g.weight_decay)));
    }
    return std::make_unique<torch::optim::SGD>(param_groups, torch::optim::SGDOptions(lr0));
  }
  for (const auto& g : groups) {
    param_groups.emplace_back(
        g.params,
        std::make_unique<torch::optim::AdamWOptions>(
            torch::optim::AdamWOptions(lr0).betas({momentum, 0.999}).weight_decay(g.weight_decay)));
  }
  return std::make_unique<torch::optim::AdamW>(param_groups, torch::optim::AdamWOptions(lr0));
}

double schedule_factor(const std::string& schedule, double lrf, int epochs, double epoch) {
  const double x = epoch / epochs;
  if (schedule == "linear") return (1.0 - x) * (1.0 - lrf) + lrf;
  return ((1.0 - std::cos(x * M_PI)) / 2.0) * (lrf - 1.0) + 1.0;
}

void clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  grads.reserve(params.size());
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return;
  const double total = torch::stack(at::_foreach_norm(grads, 2)).norm(2).item<double>();
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0) at::_foreach_mul_(grads, coef);
}

void project_quantizer_steps(supernet::YoloModel& model) {
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters(true))
    if (ends_with(p.key(), ".step")) p.value().clamp_min_(1e-8);
}

}  // namespace mixnas::training
