#pragma once
// One place that turns a config's `device:` value into an evaluator:
//   local                        this process (LocalEvaluator)
//   configs/devices/X.yaml       the device class that file describes; its `evaluator:` key says
//                                how it is evaluated (`agent`: through its mixnas-agent servers);
//                                with `kind: model` a device model (device_model/model_evaluator.h)
//                                predicts instead, from its own schema.
#include <memory>
#include <string>

#include "evaluators/agent/client.h"
#include "evaluators/evaluator.h"

namespace mixnas::eval {

// `device` is "local" or the path of a device YAML (relative paths as the caller resolved them).
std::unique_ptr<Evaluator> make_evaluator(const std::string& device, const MeasureOptions& options);

// True when the device YAML at `path` is a device model (`kind: model`).
bool is_device_model(const std::string& path);

// The agents, token and timeouts of a device YAML whose evaluator is `agent`. Errors name the
// file:line and key.
agent::RemoteOptions load_agent_device(const std::string& path);

}  // namespace mixnas::eval
