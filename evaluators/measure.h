#pragma once
// Measurements through the runtime: whole packages and one-layer graphs. The agent answers with
// these; the in-process evaluator calls the same functions, so local and remote numbers are made
// by the same code.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deploy/runtime/session.h"
#include "evaluators/layer_graph.h"

namespace mixnas::eval {

struct MeasureOptions {
  int runs = 20;
  int warmup = 5;
  int threads = 1;
  bool outputs = false;     // return the raw outputs and detections too
  uint64_t input_seed = 1;  // the deterministic input the graph runs on
  // The scalar reference convs instead of the dispatched kernels (`mixnas bench --reference`).
  // In-process only: not part of the agent protocol, so never sent.
  bool reference_kernels = false;

  // Throws mixnas::Error when a value is out of range (runs 1..10000, warmup 0..1000,
  // threads 1..256).
  void validate() const;
  nlohmann::json to_json() const;
  static MeasureOptions from_json(const nlohmann::json& j);
};

struct MeasureResult {
  std::string device_id;
  int threads = 1;
  rt::LatencyStats latency;
  rt::MemoryReport memory;
  int64_t peak_rss_bytes = -1;  // peak resident set of the process during the runs, -1 unknown
  std::vector<rt::NodeProfile> nodes;
  std::vector<rt::RawOutput> outputs;     // with MeasureOptions::outputs
  std::vector<rt::Detection> detections;  // with MeasureOptions::outputs

  nlohmann::json to_json() const;
  static MeasureResult from_json(const nlohmann::json& j);
};

// Fills the model's input with the deterministic pattern of `seed` (codes or floats in range).
void set_deterministic_input(rt::Session& session, uint64_t seed);

MeasureResult measure_model(const std::shared_ptr<const rt::Model>& model,
                            const MeasureOptions& options);
// Parses, validates and measures package bytes (throws mixnas::Error on a bad package).
MeasureResult measure_package(const std::string& package, const MeasureOptions& options);

struct LayerRow {
  std::string key;
  LayerSignature signature;
  std::string kernel;
  rt::LatencyStats latency;
  int64_t weight_bytes = 0;           // packed in the package
  int64_t resident_weight_bytes = 0;  // as the chosen kernel holds them in memory
  int64_t arena_bytes = 0;

  nlohmann::json to_json() const;
  // Rows of agents that predate resident_weight_bytes read it as weight_bytes.
  static LayerRow from_json(const nlohmann::json& j);
};

LayerRow measure_layer(const LayerSignature& signature, const MeasureOptions& options);

}  // namespace mixnas::eval
