#include "search/nwot.h"

#include <limits>

#include "core/error.h"
#include "supernet/activation_observer.h"

namespace mixnas::search {

torch::Tensor nwot_kernel(const torch::Tensor& codes) {
  if (codes.dim() != 2) throw Error("nwot_kernel: codes must be [batch, units]");
  torch::Tensor c = codes.to(torch::kFloat64);
  torch::Tensor not_c = 1.0 - c;
  return torch::matmul(c, c.t()) + torch::matmul(not_c, not_c.t());
}

double nwot_logdet(const torch::Tensor& kernel) {
  auto [sign, logabs] = torch::linalg_slogdet(kernel.to(torch::kFloat64));
  if (sign.item<double>() == 0) return -std::numeric_limits<double>::infinity();
  return logabs.item<double>();
}

NwotKernel::NwotKernel(int64_t batch) : kernel_(torch::zeros({batch, batch}, torch::kFloat64)) {}

void NwotKernel::add(const torch::Tensor& activation_output) {
  const int64_t b = kernel_.size(0);
  if (activation_output.size(0) != b)
    throw Error("NwotKernel: an activation of batch " + std::to_string(activation_output.size(0)) +
                " in a kernel of batch " + std::to_string(b));
  torch::Tensor codes = (activation_output.detach().reshape({b, -1}) > 0);
  kernel_ += nwot_kernel(codes);
  units_ += codes.size(1);
}

double nwot_score(supernet::YoloModel& model, const torch::Tensor& images) {
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  NwotKernel kernel(images.size(0));
  {
    supernet::ActivationObserver observer([&](const torch::Tensor& y) { kernel.add(y); });
    model->forward_raw(images);
  }
  model->train(was_training);
  return kernel.score();
}

}  // namespace mixnas::search
