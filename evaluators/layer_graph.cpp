#include "evaluators/layer_graph.h"

#include <cmath>
#include <sstream>

#include "core/error.h"
#include "core/hash.h"
#include "deploy/runtime/builder.h"
#include "deploy/runtime/kernels/activation.h"

namespace mixnas::eval {
namespace {

// A small deterministic generator (SplitMix64), so every machine builds the same weights.
struct SplitMix {
  uint64_t state;
  uint64_t next() { return splitmix64(state); }
  float uniform() { return static_cast<float>(next() >> 40) / static_cast<float>(1 << 24); }
};

bool valid_bits(int b) {
  return (b >= 1 && b <= 8) || b == 32;
}

}  // namespace

std::string LayerSignature::key() const {
  std::ostringstream out;
  out << "conv_i" << in_h << 'x' << in_w << 'x' << in_c << "_o" << out_c << "_k" << kernel << "_s"
      << stride << "_g" << groups << '_' << act << "_w" << w_bits << 'a' << a_bits << "_o"
      << out_bits;
  return out.str();
}

nlohmann::json LayerSignature::to_json() const {
  return {{"in_h", in_h},     {"in_w", in_w},     {"in_c", in_c},        {"out_c", out_c},
          {"kernel", kernel}, {"stride", stride}, {"groups", groups},    {"act", act},
          {"w_bits", w_bits}, {"a_bits", a_bits}, {"out_bits", out_bits}};
}

LayerSignature LayerSignature::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("layer signature: expected a JSON object");
  LayerSignature s;
  auto get_int = [&](const char* name, int& field, bool required) {
    auto it = j.find(name);
    if (it == j.end()) {
      if (required) throw Error(std::string("layer signature: missing field '") + name + "'");
      return;
    }
    if (!it->is_number_integer()) {
      throw Error(std::string("layer signature: field '") + name + "' must be an integer");
    }
    int64_t v = it->get<int64_t>();
    if (v < -(1LL << 30) || v > (1LL << 30)) {
      throw Error(std::string("layer signature: field '") + name + "' is out of range");
    }
    field = static_cast<int>(v);
  };
  get_int("in_h", s.in_h, true);
  get_int("in_w", s.in_w, true);
  get_int("in_c", s.in_c, true);
  get_int("out_c", s.out_c, true);
  get_int("kernel", s.kernel, true);
  get_int("stride", s.stride, false);
  get_int("groups", s.groups, false);
  get_int("w_bits", s.w_bits, false);
  get_int("a_bits", s.a_bits, false);
  get_int("out_bits", s.out_bits, false);
  if (auto it = j.find("act"); it != j.end()) {
    if (!it->is_string()) throw Error("layer signature: field 'act' must be a string");
    s.act = it->get<std::string>();
  }
  s.validate();
  return s;
}

void LayerSignature::validate() const {
  auto fail = [&](const std::string& what) {
    throw Error("layer signature " + key() + ": " + what);
  };
  // Bounds keep a hostile request from asking for gigabytes: 2048x2048 pixels, 4096 channels.
  if (in_h < 1 || in_w < 1 || in_h > 2048 || in_w > 2048) fail("in_h/in_w must be in 1..2048");
  if (in_c < 1 || out_c < 1 || in_c > 4096 || out_c > 4096) fail("channels must be in 1..4096");
  if (kernel < 1 || kernel > 11) fail("kernel must be in 1..11");
  if (stride < 1 || stride > 4) fail("stride must be in 1..4");
  if (groups < 1 || in_c % groups != 0 || out_c % groups != 0) {
    fail("groups must divide in_c and out_c");
  }
  if (!valid_bits(w_bits) || !valid_bits(a_bits) || !valid_bits(out_bits)) {
    fail("bits must be 1..8 or 32");
  }
  if ((w_bits == 32) != (a_bits == 32)) fail("w_bits and a_bits are both 32 (fp32) or both 1..8");
  if (static_cast<int64_t>(in_h) * in_w * std::max(in_c, out_c) > (int64_t{1} << 26)) {
    fail("the layer is too large (more than 64 Mi elements per tensor)");
  }
  rt::Activation a;
  if (!rt::parse_activation(act, &a)) fail("unknown activation '" + act + "'");
}

rt::Graph build_layer_graph(const LayerSignature& sig) {
  sig.validate();
  SplitMix rng{fnv1a(sig.key())};
  rt::GraphBuilder b("mixnas layer table");
  bool quantized = sig.w_bits != 32;
  // Input grid: codes spanning about [-1, 3] with an integer zero point, or floats.
  rt::Grid in_grid = rt::Grid::f32();
  if (quantized) {
    int levels = (1 << sig.a_bits) - 1;
    in_grid =
        rt::Grid::codes(sig.a_bits, 4.0f / static_cast<float>(std::max(levels, 1)), levels / 4);
  }
  int x = b.add_input("x", sig.in_h, sig.in_w, in_grid, sig.in_c);
  rt::Activation act;
  rt::parse_activation(sig.act, &act);
  rt::ConvLayer conv =
      rt::ConvLayer::square(sig.out_c, sig.kernel, sig.stride, static_cast<int>(act));
  conv.groups = sig.groups;
  int fan_in = (sig.in_c / sig.groups) * sig.kernel * sig.kernel;
  size_t count = static_cast<size_t>(sig.out_c) * fan_in;
  float std_w = std::sqrt(2.0f / static_cast<float>(fan_in));
  conv.bias.resize(sig.out_c);
  for (auto& v : conv.bias) v = (rng.uniform() - 0.5f) * 0.2f;
  if (quantized) {
    conv.w_bits = sig.w_bits;
    conv.weight_codes.resize(count);
    int qmax = sig.w_bits == 1 ? 1 : (1 << (sig.w_bits - 1)) - 1;
    int qmin = sig.w_bits == 1 ? -1 : -(1 << (sig.w_bits - 1));
    for (auto& q : conv.weight_codes) {
      if (sig.w_bits == 1) {
        q = (rng.next() & 1) ? 1 : -1;
      } else {
        q = static_cast<int8_t>(qmin + static_cast<int>(rng.next() % (qmax - qmin + 1)));
      }
    }
    conv.weight_scale.assign(sig.out_c, std_w / static_cast<float>(std::max(qmax, 1)));
  } else {
    conv.w_bits = 32;
    conv.weights_f32.resize(count);
    for (auto& w : conv.weights_f32) w = (rng.uniform() * 2.0f - 1.0f) * std_w;
  }
  rt::Grid out_grid = sig.out_bits == 32
                          ? rt::Grid::f32()
                          : rt::Grid::codes(sig.out_bits, 0.05f, (1 << sig.out_bits) / 4);
  std::vector<int> outs = b.add_conv("conv", x, conv, {out_grid});
  b.set_outputs(outs);
  return b.graph();
}

std::vector<LayerSignature> conv_signatures(const rt::Graph& g, std::vector<int>* nodes) {
  std::vector<LayerSignature> out;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const rt::Node& n = g.nodes[i];
    if (n.op != rt::OpType::kConv2d) continue;
    const auto& in = g.tensors[n.inputs[0]];
    const auto& w = g.tensors[n.inputs[1]];
    const auto& o = g.tensors[n.outputs[0]];
    LayerSignature s;
    s.in_h = in.shape[0], s.in_w = in.shape[1], s.in_c = in.shape[2];
    s.out_c = w.shape[0], s.kernel = w.shape[2], s.stride = n.conv.stride_h;
    s.groups = n.conv.groups;
    s.act = rt::activation_name(static_cast<rt::Activation>(n.conv.activation));
    s.w_bits = w.bits, s.a_bits = in.bits, s.out_bits = o.bits;
    out.push_back(s);
    if (nodes) nodes->push_back(static_cast<int>(i));
  }
  return out;
}

}  // namespace mixnas::eval
