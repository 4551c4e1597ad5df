#include "apps/mixnas/commands.h"

namespace mixnas::cli {

Runner add_data_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("data", "Build, convert and check datasets (make fmnist-det, convert coco|voc)");
  cmd->allow_extras();
  return [] { return not_implemented("data", "issue 6: datasets"); };
}

}  // namespace mixnas::cli
