#include "apps/mixnas/commands.h"

namespace mixnas::cli {

Runner add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Measure an .mxr package with the runtime (latency, memory)");
  cmd->allow_extras();
  return [] { return not_implemented("bench", "issue 3: runtime"); };
}

}  // namespace mixnas::cli
