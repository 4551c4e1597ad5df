#include "supernet/activation.h"

#include <cmath>

#include "core/error.h"
#include "core/text.h"

namespace mixnas::supernet {

namespace {
const std::vector<std::pair<std::string, Act>>& act_table() {
  static const std::vector<std::pair<std::string, Act>> table = {
      {"identity", Act::kIdentity},   {"relu", Act::kRelu},
      {"relu6", Act::kRelu6},         {"leakyrelu", Act::kLeakyRelu},
      {"hardswish", Act::kHardswish}, {"silu", Act::kSilu},
      {"sigmoid", Act::kSigmoid},     {"tanh", Act::kTanh},
      {"gelu", Act::kGelu},           {"gelu_tanh", Act::kGeluTanh},
      {"mish", Act::kMish},           {"hardsigmoid", Act::kHardsigmoid},
  };
  return table;
}

float sigmoidf(float x) {
  return 1.0f / (1.0f + std::exp(-x));
}
float softplusf(float x) {
  return x > 20.0f ? x : std::log1p(std::exp(x));
}
constexpr float kSqrt2Inv = 0.70710678118654752f;
constexpr float kSqrt2OverPi = 0.79788456080286536f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
}  // namespace

const std::vector<std::string>& act_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& [name, act] : act_table()) out.push_back(name);
    return out;
  }();
  return names;
}

std::string act_name(Act act) {
  for (const auto& [name, a] : act_table())
    if (a == act) return name;
  return "?";
}

Act parse_act(const std::string& name, const std::string& where) {
  std::string key = text::trim(name);
  if (text::starts_with(key, "nn.")) key = key.substr(3);
  auto paren = key.find('(');
  if (paren != std::string::npos) {
    std::string inside = key.substr(paren + 1);
    key = key.substr(0, paren);
    if (key == "LeakyReLU") {
      auto close = inside.find(')');
      std::string slope = text::trim(inside.substr(0, close));
      if (!slope.empty() && std::abs(std::stod(slope) - kLeakySlope) > 1e-6)
        throw Error(where + ": LeakyReLU slope " + slope +
                    " is not supported; mixnas uses slope 0.1 (write nn.LeakyReLU(0.1))");
    }
  }
  std::string lower;
  for (char c : key) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "gelutanh") lower = "gelu_tanh";
  for (const auto& [n, act] : act_table())
    if (n == lower) return act;
  std::string hint = text::closest(lower, act_names());
  throw Error(where + ": unknown activation '" + name + "'" +
              (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
              "; valid: " + text::join(act_names(), ", "));
}

bool act_is_nonneg(Act act) {
  return act == Act::kRelu || act == Act::kRelu6;
}

torch::Tensor apply_act(Act act, const torch::Tensor& x) {
  switch (act) {
    case Act::kIdentity:
      return x;
    case Act::kRelu:
      return torch::relu(x);
    case Act::kRelu6:
      return torch::clamp(x, 0.0, 6.0);
    case Act::kLeakyRelu:
      return torch::leaky_relu(x, kLeakySlope);
    case Act::kHardswish:
      return torch::hardswish(x);
    case Act::kSilu:
      return torch::silu(x);
    case Act::kSigmoid:
      return torch::sigmoid(x);
    case Act::kTanh:
      return torch::tanh(x);
    case Act::kGelu:
      return torch::gelu(x);
    case Act::kGeluTanh:
      return torch::gelu(x, "tanh");
    case Act::kMish:
      return torch::mish(x);
    case Act::kHardsigmoid:
      return torch::hardsigmoid(x);
  }
  return x;
}

float act_value(Act act, float x) {
  switch (act) {
    case Act::kIdentity:
      return x;
    case Act::kRelu:
      return x > 0.0f ? x : 0.0f;
    case Act::kRelu6:
      return std::min(std::max(x, 0.0f), 6.0f);
    case Act::kLeakyRelu:
      return x >= 0.0f ? x : kLeakySlope * x;
    case Act::kHardswish:
      return x * std::min(std::max(x + 3.0f, 0.0f), 6.0f) / 6.0f;
    case Act::kSilu:
      return x * sigmoidf(x);
    case Act::kSigmoid:
      return sigmoidf(x);
    case Act::kTanh:
      return std::tanh(x);
    case Act::kGelu:
      return 0.5f * x * (1.0f + std::erf(x * kSqrt2Inv));
    case Act::kGeluTanh:
      return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
    case Act::kMish:
      return x * std::tanh(softplusf(x));
    case Act::kHardsigmoid:
      return std::min(std::max(x / 6.0f + 0.5f, 0.0f), 1.0f);
  }
  return x;
}

// Derivatives follow PyTorch's choices at the kinks (relu'(0) = 0, relu6' = 1 on [0, 6] open at
// both ends as clamp does: 0 < x < 6; hardswish' = (2x + 3) / 6 on (-3, 3)).
float act_derivative(Act act, float x) {
  switch (act) {
    case Act::kIdentity:
      return 1.0f;
    case Act::kRelu:
      return x > 0.0f ? 1.0f : 0.0f;
    case Act::kRelu6:
      return (x >= 0.0f && x <= 6.0f) ? 1.0f : 0.0f;
    case Act::kLeakyRelu:
      return x > 0.0f ? 1.0f : kLeakySlope;
    case Act::kHardswish:
      if (x < -3.0f) return 0.0f;
      if (x < 3.0f) return (2.0f * x + 3.0f) / 6.0f;
      return 1.0f;
    case Act::kSilu: {
      float s = sigmoidf(x);
      return s * (1.0f + x * (1.0f - s));
    }
    case Act::kSigmoid: {
      float s = sigmoidf(x);
      return s * (1.0f - s);
    }
    case Act::kTanh: {
      float t = std::tanh(x);
      return 1.0f - t * t;
    }
    case Act::kGelu:
      return 0.5f * (1.0f + std::erf(x * kSqrt2Inv)) + x * kInvSqrt2Pi * std::exp(-0.5f * x * x);
    case Act::kGeluTanh: {
      float inner = kSqrt2OverPi * (x + 0.044715f * x * x * x);
      float t = std::tanh(inner);
      float dinner = kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * x * x);
      return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * dinner;
    }
    case Act::kMish: {
      float sp = softplusf(x);
      float t = std::tanh(sp);
      return t + x * (1.0f - t * t) * sigmoidf(x);
    }
    case Act::kHardsigmoid:
      return (x > -3.0f && x < 3.0f) ? 1.0f / 6.0f : 0.0f;
  }
  return 1.0f;
}

}  // namespace mixnas::supernet
