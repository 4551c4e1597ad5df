#include <memory>

#include "apps/mixnas/commands.h"
#include "core/schemas.h"

namespace mixnas::cli {

Runner add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a fixed model (model YAML or arch.yaml) from a config");
  auto words = std::make_shared<std::vector<std::string>>();
  add_config_args(cmd, *words);
  return [words] {
    config::Config cfg = load_config_args(*words, config::train_schema());
    return not_implemented("train", "issue 6: training");
  };
}

}  // namespace mixnas::cli
