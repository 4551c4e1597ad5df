#include "apps/mixnas/commands.h"

namespace mixnas::cli {

Runner add_model_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("model", "Build a model YAML and print its per-layer summary");
  cmd->allow_extras();
  return [] { return not_implemented("model", "issue 5: supernet"); };
}

}  // namespace mixnas::cli
