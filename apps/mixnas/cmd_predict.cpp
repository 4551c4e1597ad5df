#include "apps/mixnas/commands.h"

namespace mixnas::cli {

Runner add_predict_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("predict", "Run a model on images and draw the detections");
  cmd->allow_extras();
  return [] { return not_implemented("predict", "issue 6: prediction"); };
}

}  // namespace mixnas::cli
