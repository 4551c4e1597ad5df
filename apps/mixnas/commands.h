#pragma once
// Every subcommand of `mixnas` registers itself here. One file per command: cmd_<name>.cpp.
#include <CLI/CLI.hpp>

#include "core/config.h"

#include <functional>
#include <string>
#include <vector>

namespace mixnas::cli {

// Shared by all commands: set from the global flags before the command runs.
struct GlobalOptions {
  int verbose = 0;
  bool quiet = false;
};

// A command parses its options into its own state and returns the function that runs it. The
// function returns the process exit code (0 ok, 1 user error, 2 not implemented).
using Runner = std::function<int()>;

Runner add_data_command(CLI::App& app);
Runner add_model_command(CLI::App& app);
Runner add_train_command(CLI::App& app);
Runner add_val_command(CLI::App& app);
Runner add_search_command(CLI::App& app);
Runner add_study_command(CLI::App& app);
Runner add_export_command(CLI::App& app);
Runner add_bench_command(CLI::App& app);
Runner add_predict_command(CLI::App& app);
Runner add_lut_command(CLI::App& app);
Runner add_info_command(CLI::App& app);
Runner add_agent_ping_command(CLI::App& app);

// The positional `CONFIG.yaml [key=value ...]` words of a command, plus the overrides its
// --name/--exist-ok flags stand for.
struct ConfigArgs {
  std::vector<std::string> words;
  std::vector<std::string> flags;
};
void add_config_args(CLI::App* cmd, ConfigArgs& args);
// -> a validated config (the first word may itself be an override, in which case the schema's
// defaults are the base). Throws mixnas::Error on any bad input.
config::Config load_config_args(const ConfigArgs& args, const config::Schema& schema);

}  // namespace mixnas::cli
