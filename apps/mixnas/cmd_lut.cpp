#include "apps/mixnas/commands.h"

namespace mixnas::cli {

Runner add_lut_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("lut", "Build or validate a latency lookup table");
  cmd->allow_extras();
  return [] { return not_implemented("lut", "issue 8: latency table"); };
}

}  // namespace mixnas::cli
