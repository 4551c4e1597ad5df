#pragma once
// The remote evaluator: measurements made by mixnas-agent on a device class, through the agent
// client (evaluators/agent/client.h) with its rotation, retries and failover.
#include <memory>
#include <string>
#include <vector>

#include "evaluators/agent/client.h"
#include "evaluators/evaluator.h"

namespace mixnas::eval {

class AgentEvaluator final : public Evaluator {
 public:
  AgentEvaluator(agent::RemoteOptions remote, MeasureOptions options);
  std::string kind() const override { return "agent"; }
  // The id the agents report; asked once, then kept.
  std::string device_id() override;
  // This build's runtime: the agents are expected to run the same build (`mixnas agent-ping`
  // shows theirs).
  std::string runtime_version() override;
  MeasureResult measure_package(const std::string& package) override;
  std::vector<LayerRow> measure_layers(const std::vector<LayerSignature>& layers) override;

 private:
  agent::RemoteEvaluator agents_;
  std::string device_id_;
};

}  // namespace mixnas::eval
