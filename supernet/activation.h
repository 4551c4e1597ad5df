#pragma once
// Activation functions a Conv block may use, with the exact definitions of docs/numerics.md.
#include <torch/torch.h>

#include <ostream>
#include <string>
#include <vector>

namespace mixnas::supernet {

enum class Act {
  kIdentity,
  kRelu,
  kRelu6,
  kLeakyRelu,
  kHardswish,
  kSilu,
  kSigmoid,
  kTanh,
  kGelu,
  kGeluTanh,
  kMish,
  kHardsigmoid,
};

// Slope of leakyrelu for x < 0 (YOLOv5's LeakyReLU models use 0.1).
constexpr float kLeakySlope = 0.1f;

// Canonical lower-case names: identity relu relu6 leakyrelu hardswish silu sigmoid tanh gelu
// gelu_tanh mish hardsigmoid.
const std::vector<std::string>& act_names();
std::string act_name(Act act);
// Accepts the canonical names and ultralytics' spellings (nn.SiLU(), nn.ReLU6(), nn.LeakyReLU(0.1),
// nn.Identity()). Throws mixnas::Error naming `where` and listing the valid names.
Act parse_act(const std::string& name, const std::string& where);
// True when the function never returns a negative value, so that the consumer's quantizer is
// unsigned with zero point 0 (NUMERICS: after ReLU / ReLU6).
bool act_is_nonneg(Act act);
inline std::ostream& operator<<(std::ostream& out, Act act) {
  return out << act_name(act);
}

torch::Tensor apply_act(Act act, const torch::Tensor& x);
// Scalar forms (float32), used by the fused mixed-activation kernel and by tests.
float act_value(Act act, float x);
float act_derivative(Act act, float x);

}  // namespace mixnas::supernet
