#pragma once
// The cost evaluator: everything a search, `mixnas lut` and `mixnas bench` ask of a device. It
// measures a whole package, measures one-layer graphs (the latency table's rows) and names the
// device, so that a table or a report can say where its numbers come from.
//
// Implementations: LocalEvaluator (this process, through the runtime), AgentEvaluator
// (mixnas-agent on a device, evaluators/agent_evaluator.h), ModelEvaluator (a device model
// predicting the runtime's latency on a named core, evaluators/device_model/model_evaluator.h).
// make_evaluator (evaluators/evaluator_factory.h) picks one from a config's `device:` value.
#include <memory>
#include <string>
#include <vector>

#include "evaluators/layer_graph.h"
#include "evaluators/measure.h"

namespace mixnas::eval {

class Evaluator {
 public:
  virtual ~Evaluator() = default;
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;

  // "local", "agent", ...: logged and written next to the device id.
  virtual std::string kind() const = 0;
  // The id latency tables are keyed by (evaluators/device_id.h).
  virtual std::string device_id() = 0;
  // The runtime whose kernels the numbers describe: a table made with other kernels is stale.
  virtual std::string runtime_version() = 0;
  // Latency, memory and per-node profile of package bytes; throws mixnas::Error on a bad package.
  virtual MeasureResult measure_package(const std::string& package) = 0;
  // One row per signature, in the order given.
  virtual std::vector<LayerRow> measure_layers(const std::vector<LayerSignature>& layers) = 0;
  // Where the numbers come from, recorded with tables and reports: {"source": "measured",
  // "evaluator": kind()} here; a device model's {"source": "predicted", "text": ..., the model
  // file, core and llvm-mca version}.
  virtual nlohmann::json provenance() { return {{"source", "measured"}, {"evaluator", kind()}}; }
  // Layers per measure_layers call when a table is filled (a progress bar advances per call).
  virtual size_t layers_per_call() const { return 16; }

  // Runs, warm-up and threads of every measurement.
  const MeasureOptions& options() const { return options_; }

 protected:
  explicit Evaluator(MeasureOptions options) : options_(options) { options_.validate(); }

 private:
  MeasureOptions options_;
};

// Measures in this process with the runtime: the same code the agent runs on a device.
class LocalEvaluator final : public Evaluator {
 public:
  explicit LocalEvaluator(MeasureOptions options) : Evaluator(options) {}
  std::string kind() const override { return "local"; }
  std::string device_id() override;
  std::string runtime_version() override;
  MeasureResult measure_package(const std::string& package) override;
  std::vector<LayerRow> measure_layers(const std::vector<LayerSignature>& layers) override;
};

}  // namespace mixnas::eval
