#include "apps/mixnas/commands.h"

namespace mixnas::cli {

Runner add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "Export trained weights to .mxr, ONNX and arch.yaml");
  cmd->allow_extras();
  return [] { return not_implemented("export", "issue 7: export"); };
}

}  // namespace mixnas::cli
