#include "evaluators/evaluator_factory.h"

#include <cstdlib>

#include <yaml-cpp/yaml.h>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "core/schemas.h"
#include "core/text.h"
#include "evaluators/agent_evaluator.h"
#include "evaluators/device_model/model_evaluator.h"

namespace mixnas::eval {
namespace {

agent::RemoteOptions agent_options(const config::Config& cfg) {
  agent::RemoteOptions o;
  for (const auto& a : cfg.get_string_list("agents")) {
    try {
      o.agents.push_back(agent::AgentAddress::parse(a));
    } catch (const Error& e) {
      throw Error(cfg.where("agents").str() + ": " + e.what());
    }
  }
  if (o.agents.empty()) throw Error(cfg.where("agents").str() + ": 'agents' lists no agent");
  std::string token_file = cfg.resolve_path("token_file");
  if (!token_file.empty() && token_file[0] == '~') {
    const char* home = std::getenv("HOME");
    token_file = std::string(home ? home : "") + token_file.substr(1);
  }
  try {
    o.token = text::trim(read_file(token_file));
  } catch (const Error& e) {
    throw Error(cfg.where("token_file").str() + ": " + e.what());
  }
  if (o.token.empty()) throw Error(cfg.where("token_file").str() + ": the token file is empty");
  o.timeout_s = cfg.get_float("timeout_s");
  o.retries = static_cast<int>(cfg.get_int("retries"));
  const std::string ca_file = cfg.get_string("tls_ca_file");
  o.tls.ca_file = ca_file.empty() ? "" : cfg.resolve_path("tls_ca_file");
  o.tls.fingerprint_sha256 = cfg.get_string("tls_fingerprint_sha256");
  try {
    o.tls.validate();
  } catch (const Error& e) {
    throw Error(cfg.where(o.tls.ca_file.empty() ? "tls_fingerprint_sha256" : "tls_ca_file").str() +
                ": " + e.what());
  }
  return o;
}

}  // namespace

bool is_device_model(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw Error(path + ": not a device YAML (" + e.what() + ")");
  }
  return root.IsMap() && root["kind"] && root["kind"].IsScalar() &&
         root["kind"].as<std::string>() == "model";
}

agent::RemoteOptions load_agent_device(const std::string& path) {
  return agent_options(config::Config::load(path, config::device_schema()));
}

std::unique_ptr<Evaluator> make_evaluator(const std::string& device,
                                          const MeasureOptions& options) {
  if (device == "local") return std::make_unique<LocalEvaluator>(options);
  if (is_device_model(device)) return make_model_evaluator(device, options);
  config::Config cfg = config::Config::load(device, config::device_schema());
  const std::string kind = cfg.get_string("evaluator");
  if (kind == "agent") return std::make_unique<AgentEvaluator>(agent_options(cfg), options);
  throw Error(cfg.where("evaluator").str() + ": unknown evaluator '" + kind +
              "' (known: agent; a device model says `kind: model`, docs/device_models.md; or set "
              "`device: local` in the search config)");
}

}  // namespace mixnas::eval
