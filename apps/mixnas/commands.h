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
Runner add_export_command(CLI::App& app);
Runner add_bench_command(CLI::App& app);
Runner add_predict_command(CLI::App& app);
Runner add_lut_command(CLI::App& app);
Runner add_info_command(CLI::App& app);

// `CONFIG.yaml key=value ...` -> a validated config (the first word may itself be an override, in
// which case the schema's defaults are the base). Throws mixnas::Error on any bad input.
config::Config load_config_args(const std::vector<std::string>& words, const config::Schema& schema);

// Adds the positional `CONFIG.yaml [key=value ...]` words to a command.
void add_config_args(CLI::App* cmd, std::vector<std::string>& words);

// For commands whose implementation belongs to an open issue.
int not_implemented(const std::string& command, const std::string& issue);

}  // namespace mixnas::cli
