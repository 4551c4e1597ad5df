#include "apps/mixnas/commands.h"

namespace mixnas::cli {

Runner add_val_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("val", "Evaluate a model, or COCO result files (--coco-gt/--coco-dt)");
  cmd->allow_extras();
  return [] { return not_implemented("val", "issue 6: evaluation"); };
}

}  // namespace mixnas::cli
