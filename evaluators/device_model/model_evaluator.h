#pragma once
// The device model on the evaluator interface (evaluator.h): `device: configs/devices/X.yaml`
// with `kind: model` in a search or `mixnas lut` config. Layers and packages are predicted, not
// measured: a package's latency is the sum of its convs' predictions (the non-conv ops are not
// modelled; the latency table's calibration covers them where whole models are measured), its
// memory the host runtime's plan of it.
#include <memory>
#include <string>
#include <vector>

#include "evaluators/device_model/device_model.h"
#include "evaluators/evaluator.h"

namespace mixnas::eval {

class ModelEvaluator final : public Evaluator {
 public:
  ModelEvaluator(DeviceModel model, MeasureOptions options);
  std::string kind() const override { return "model"; }
  // "model:<name>:<core>", as DeviceModel::predict_table names its tables.
  std::string device_id() override;
  // The runtime's version + "+model-<hash>" of the model's figures (core, clock, bandwidth,
  // coefficients, llvm-mca version): a cached table of another model is not reused.
  std::string runtime_version() override;
  MeasureResult measure_package(const std::string& package) override;
  std::vector<LayerRow> measure_layers(const std::vector<LayerSignature>& layers) override;
  nlohmann::json provenance() override { return model_.provenance_json(); }
  // Picks are asked of the target build in one run (under qemu for aarch64): one call per table.
  size_t layers_per_call() const override { return 100000; }

  DeviceModel& model() { return model_; }

 private:
  DeviceModel model_;
};

// The device model of `device_yaml` (its kernel figures cached in .cache/devicemodel), on the
// evaluator interface; `options.threads` must equal the YAML's `threads`.
std::unique_ptr<Evaluator> make_model_evaluator(const std::string& device_yaml,
                                                const MeasureOptions& options);

}  // namespace mixnas::eval
