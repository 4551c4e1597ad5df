#include "evaluators/agent_evaluator.h"

#include <utility>

#include "deploy/runtime/version.h"

namespace mixnas::eval {

AgentEvaluator::AgentEvaluator(agent::RemoteOptions remote, MeasureOptions options)
    : Evaluator(options), agents_(std::move(remote)) {}

std::string AgentEvaluator::device_id() {
  if (device_id_.empty()) device_id_ = agents_.device_id();
  return device_id_;
}

std::string AgentEvaluator::runtime_version() {
  return rt::runtime_version();
}

MeasureResult AgentEvaluator::measure_package(const std::string& package) {
  return agents_.benchmark(package, options());
}

std::vector<LayerRow> AgentEvaluator::measure_layers(const std::vector<LayerSignature>& layers) {
  return agents_.measure_layers(layers, options());
}

}  // namespace mixnas::eval
