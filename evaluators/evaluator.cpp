#include "evaluators/evaluator.h"

#include "deploy/runtime/version.h"
#include "evaluators/device_id.h"

namespace mixnas::eval {

std::string LocalEvaluator::device_id() {
  return eval::device_id();
}

std::string LocalEvaluator::runtime_version() {
  return rt::runtime_version();
}

MeasureResult LocalEvaluator::measure_package(const std::string& package) {
  return eval::measure_package(package, options());
}

std::vector<LayerRow> LocalEvaluator::measure_layers(const std::vector<LayerSignature>& layers) {
  std::vector<LayerRow> rows;
  rows.reserve(layers.size());
  for (const auto& l : layers) rows.push_back(measure_layer(l, options()));
  return rows;
}

}  // namespace mixnas::eval
