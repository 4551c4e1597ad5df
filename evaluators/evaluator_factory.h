#pragma once
// One place that turns a config's `device:` value into an evaluator:
//   local                        this process (LocalEvaluator)
//   configs/devices/X.yaml       the device class that file describes; its `evaluator:` key says
//                                how it is evaluated (`agent`: through its mixnas-agent servers).
// A new kind of evaluator adds its `evaluator:` value in make_evaluator and its keys to the device
// schema (core/schemas.cpp).
#include <memory>
#include <string>

#include "evaluators/agent/client.h"
#include "evaluators/evaluator.h"

namespace mixnas::eval {

// `device` is "local" or the path of a device YAML (relative paths as the caller resolved them).
std::unique_ptr<Evaluator> make_evaluator(const std::string& device, const MeasureOptions& options);

// The agents, token and timeouts of a device YAML whose evaluator is `agent`. Errors name the
// file:line and key.
agent::RemoteOptions load_agent_device(const std::string& path);

}  // namespace mixnas::eval
