#include <chrono>
#include <cstdio>
#include <memory>

#include "apps/mixnas/commands.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/schemas.h"
#include "core/text.h"
#include "evaluators/agent/client.h"

namespace mixnas::cli {

agent::RemoteOptions load_device_config(const std::string& path) {
  config::Config cfg = config::Config::load(path, config::device_schema());
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
  std::string ca_file = cfg.get_string("tls_ca_file");
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

Runner add_agent_ping_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("agent-ping", "Print each agent's info and round-trip time");
  auto path = std::make_shared<std::string>();
  cmd->add_option("device", *path, "configs/devices/X.yaml")->required();
  return [path] {
    agent::RemoteOptions o = load_device_config(*path);
    int failed = 0;
    for (const auto& addr : o.agents) {
      agent::AgentClient client(addr, o.token, o.timeout_s, o.tls);
      try {
        auto t0 = std::chrono::steady_clock::now();
        client.health();
        double rtt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        nlohmann::json info = client.info();
        std::printf("%-22s ok   rtt=%.2f ms  device_id=%s  cpu=%s  threads=%d\n", addr.str().c_str(),
                    rtt, info.value("device_id", "?").c_str(), info.value("cpu", "?").c_str(),
                    info.value("threads", 0));
      } catch (const Error& e) {
        ++failed;
        std::printf("%-22s FAIL %s\n", addr.str().c_str(), e.what());
      }
    }
    return failed == 0 ? 0 : 1;
  };
}

}  // namespace mixnas::cli
