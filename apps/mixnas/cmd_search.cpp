#include <memory>

#include "apps/mixnas/commands.h"
#include "core/schemas.h"

namespace mixnas::cli {

Runner add_search_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("search", "Run a search: supernet, derive, finetune, export, measure, report");
  auto words = std::make_shared<ConfigArgs>();
  add_config_args(cmd, *words);
  return [words] {
    config::Config cfg = load_config_args(*words, config::search_schema());
    return not_implemented("search", "issue 8: DNAS search");
  };
}

}  // namespace mixnas::cli
