#include <chrono>
#include <cstdio>
#include <memory>

#include "apps/mixnas/commands.h"
#include "core/error.h"
#include "evaluators/agent/client.h"
#include "evaluators/evaluator_factory.h"

namespace mixnas::cli {

Runner add_agent_ping_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("agent-ping", "Print each agent's info and round-trip time");
  auto path = std::make_shared<std::string>();
  cmd->add_option("device", *path, "configs/devices/X.yaml")->required();
  return [path] {
    agent::RemoteOptions o = eval::load_agent_device(*path);
    int failed = 0;
    for (const auto& addr : o.agents) {
      agent::AgentClient client(addr, o.token, o.timeout_s, o.tls);
      try {
        auto t0 = std::chrono::steady_clock::now();
        client.health();
        double rtt =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        nlohmann::json info = client.info();
        std::printf("%-22s ok   rtt=%.2f ms  device_id=%s  cpu=%s  threads=%d\n",
                    addr.str().c_str(), rtt, info.value("device_id", "?").c_str(),
                    info.value("cpu", "?").c_str(), info.value("threads", 0));
      } catch (const Error& e) {
        ++failed;
        std::printf("%-22s FAIL %s\n", addr.str().c_str(), e.what());
      }
    }
    return failed == 0 ? 0 : 1;
  };
}

}  // namespace mixnas::cli
