#pragma once
// Hardware cost of a supernet's candidates, from a latency table measured through the runtime
// (evaluators/latency_table.h). Every searchable site x every candidate (activation, w_bits,
// a_bits) is one one-layer graph signature; the expected latency and memory of the supernet under
// its current site probabilities are differentiable functions of the architecture logits:
//
//   E[latency] = scale * sum_sites sum_{a,w,b} p_act[a] p_w[w] p_a[b] L_site[a,w,b] + offset
//   E[memory]  = sum_sites sum_{w,b} p_w[w] p_a[b] resident_bytes_site[w,b]
//                + max_sites E[activation bytes]
//
// resident_bytes are the weights as the runtime's chosen kernel holds them (a 2-bit layer that
// falls back to the int8 kernel on a CPU where low bits do not pay holds int8 weights), so the
// memory term rewards low bits only where the device's RAM sees them.
// where (scale, offset) is the table's calibration on whole-model measurements and activation
// bytes count the site's input and output as the runtime's arena holds them (4 bytes per float,
// 1..4-bit codes packed, docs/memory.md).
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "evaluators/latency_table.h"
#include "evaluators/layer_graph.h"
#include "supernet/model.h"

namespace mixnas::search {

// Proxy counts of one fixed architecture.
struct Proxies {
  int64_t macs = 0;
  double bops = 0;  // sum of MACs * w_bits * a_bits (fp32 sides count as 32)
  int64_t params = 0;
  int64_t weight_bytes = 0;  // packed at each site's w_bits (LUT entries)
  // As the kernels hold them at run time (LUT entries; packed bytes without a table): what
  // weights add to peak memory.
  int64_t resident_weight_bytes = 0;
  int64_t peak_activation_bytes =
      0;  // the largest input + output of one conv, as the arena holds them
};

class CostModel {
 public:
  // Probes `model` at imgsz x imgsz and lists every site's candidate signatures.
  CostModel(supernet::YoloModel& model, int imgsz);

  // Every signature of every candidate (with duplicates across sites removed).
  std::vector<eval::LayerSignature> signatures() const;
  // The signatures of one fixed architecture (one per site).
  std::vector<eval::LayerSignature> signatures(const supernet::ArchChoices& choices) const;

  // Reads the latency and weight bytes of every candidate from `table` (throws mixnas::Error
  // naming the first missing entry) and keeps the table's calibration.
  void attach(const eval::LatencyTable& table);
  bool attached() const { return attached_; }

  // Differentiable expectations under the model's current site probabilities (softmax of the
  // logits): scalar tensors with autograd to every logit.
  torch::Tensor expected_latency_ms(const supernet::YoloModel& model) const;
  torch::Tensor expected_memory_bytes(const supernet::YoloModel& model) const;

  // For one fixed architecture (sites missing from `choices` take their first candidate).
  double latency_ms(const supernet::ArchChoices& choices) const;      // calibrated
  double raw_latency_ms(const supernet::ArchChoices& choices) const;  // uncalibrated sum
  double memory_bytes(const supernet::ArchChoices& choices) const;
  Proxies proxies(const supernet::ArchChoices& choices) const;

  // A uniformly random choice per site (for the table's calibration and validation).
  supernet::ArchChoices random_choices(uint64_t seed) const;
  // The most expensive corner: every site at its largest bit-widths (<= 8 if any) and its
  // slowest activation. Targets of 0 in the config are fractions of its cost.
  supernet::ArchChoices reference_choices() const;
  // Every site with activation `act` (when a candidate; else the site's first) and the given
  // bits policy: "fp32" (32/32), "int8" (8/8 when candidates, else the largest), or the
  // bit-widths of `searched`.
  supernet::ArchChoices uniform_choices(supernet::Act act, const std::string& bits_policy,
                                        const supernet::ArchChoices& searched) const;

  // Bit-width candidates that cannot pay on the device the table measured. At one site, bits w
  // are dominated by wider bits w' when, for every activation and every a_bits candidate, the
  // (w', ...) layer runs the same kernel or is at most `margin` slower (a fraction), and holds no
  // more resident weight and arena bytes; the same for a_bits against wider a_bits. A CPU whose
  // 2- and 4-bit layers fall back to the int8 kernel gains nothing from them in time or RAM, and
  // the search would only lose accuracy there. One row per site that loses a candidate: the
  // candidates kept and dropped.
  struct Pruned {
    std::string site;
    std::vector<int> w_bits, a_bits;                  // kept
    std::vector<int> dropped_w_bits, dropped_a_bits;  // dropped
  };
  std::vector<Pruned> dominated_bits(const eval::LatencyTable& table, double margin) const;

  struct Site {
    std::string name;
    bool has_act = false;
    bool head_output = false;  // a bare conv of the head: float output
    std::vector<supernet::Act> acts;
    std::vector<int> w_bits, a_bits;
    supernet::ConvGeometry geometry;
    std::vector<float> latency;         // [A][W][B], ms
    std::vector<float> weight_bytes;    // [W], packed
    std::vector<float> resident_bytes;  // [W][B], as the chosen kernel holds the weights
  };
  const std::vector<Site>& sites() const { return sites_; }
  const eval::Calibration& calibration() const { return calibration_; }

 private:
  eval::LayerSignature signature(const Site& s, size_t a, int w_bits, int a_bits) const;
  size_t site_index(const std::string& name) const;
  std::vector<Site> sites_;
  int imgsz_;
  bool attached_ = false;
  eval::Calibration calibration_;
};

}  // namespace mixnas::search
