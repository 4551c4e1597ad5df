#pragma once
// While an ActivationObserver is alive on a thread, every MixedActivation forward on that thread
// hands its output to it: the NWOT zero-cost proxy (search/nwot.h) reads the binary activation
// codes of a batch this way, without hooks in the model's forward.
#include <torch/torch.h>

#include <functional>

namespace mixnas::supernet {

class ActivationObserver {
 public:
  explicit ActivationObserver(std::function<void(const torch::Tensor&)> observe);
  ~ActivationObserver();
  ActivationObserver(const ActivationObserver&) = delete;
  ActivationObserver& operator=(const ActivationObserver&) = delete;
  // Called by MixedActivationImpl::forward with its output; nothing when no observer is alive.
  static void notify(const torch::Tensor& output);

 private:
  std::function<void(const torch::Tensor&)> observe_;
  ActivationObserver* previous_;
};

}  // namespace mixnas::supernet
