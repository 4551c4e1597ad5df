#pragma once
// One-layer graphs for the latency table: a layer signature names a conv (shapes, stride, groups,
// activation, bits, threads); the same signature always builds the same graph, locally or on an
// agent, so a table entry measured anywhere means the same thing.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deploy/runtime/graph.h"

namespace mixnas::eval {

struct LayerSignature {
  int in_h = 0, in_w = 0, in_c = 0;
  int out_c = 0;
  int kernel = 1;
  int stride = 1;
  int groups = 1;
  std::string act = "identity";  // rt activation name
  int w_bits = 8;                // 1..8, or 32 for fp32
  int a_bits = 8;                // input code bits 1..8, or 32 for a float input
  int out_bits = 8;              // what the consumer reads: 32 = float, else codes

  // Canonical key: "conv_i40x40x64_o64_k3_s1_g1_silu_w4a8_o8".
  std::string key() const;
  nlohmann::json to_json() const;
  // Throws mixnas::Error naming the field when a value is missing or out of range.
  static LayerSignature from_json(const nlohmann::json& j);
  void validate() const;
};

// The one-layer graph of a signature, with deterministic pseudo-random weights and scales.
rt::Graph build_layer_graph(const LayerSignature& sig);

// The convs of a graph as one-layer signatures, in node order; `nodes` (if given) receives each
// one's node index.
std::vector<LayerSignature> conv_signatures(const rt::Graph& g, std::vector<int>* nodes = nullptr);

}  // namespace mixnas::eval
