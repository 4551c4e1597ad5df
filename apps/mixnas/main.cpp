// mixnas: the command line. One subcommand per stage of the pipeline; each lives in cmd_<name>.cpp.
#include <cstdio>
#include <exception>
#include <map>
#include <string>

#include "apps/mixnas/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "core/version.h"

namespace mixnas::cli {

int not_implemented(const std::string& command, const std::string& issue) {
  log::error("'mixnas ", command, "' is not implemented yet (", issue, ")");
  return 2;
}

config::Config load_config_args(const std::vector<std::string>& words, const config::Schema& schema) {
  if (words.empty() || words[0].find('=') != std::string::npos) {
    return config::Config::defaults(schema, words);
  }
  return config::Config::load(words[0], schema, {words.begin() + 1, words.end()});
}

void add_config_args(CLI::App* cmd, std::vector<std::string>& words) {
  cmd->add_option("config", words, "CONFIG.yaml followed by key=value overrides (train.epochs=3)")
      ->required();
}

}  // namespace mixnas::cli

int main(int argc, char** argv) {
  using namespace mixnas;
  CLI::App app{"mixnas " MIXNAS_VERSION
               ": neural-architecture search of activations and bit-widths for YOLO detectors on "
               "edge devices",
               "mixnas"};
  app.set_version_flag("--version", std::string("mixnas ") + MIXNAS_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  cli::GlobalOptions globals;
  app.add_flag("-v,--verbose", globals.verbose, "More output (debug messages)");
  app.add_flag("-q,--quiet", globals.quiet, "Only warnings and errors");

  std::map<const CLI::App*, cli::Runner> runners;
  auto add = [&](cli::Runner (*adder)(CLI::App&)) {
    auto all = [](CLI::App*) { return true; };
    size_t before = app.get_subcommands(all).size();
    cli::Runner runner = adder(app);
    auto subs = app.get_subcommands(all);
    if (subs.size() != before + 1) throw std::logic_error("a command must add one subcommand");
    runners[subs.back()] = std::move(runner);
  };
  add(cli::add_data_command);
  add(cli::add_model_command);
  add(cli::add_train_command);
  add(cli::add_val_command);
  add(cli::add_search_command);
  add(cli::add_export_command);
  add(cli::add_bench_command);
  add(cli::add_predict_command);
  add(cli::add_lut_command);
  add(cli::add_info_command);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (globals.quiet) log::set_level(log::Level::kWarn);
  if (globals.verbose > 0) log::set_level(log::Level::kDebug);

  try {
    for (const auto& [sub, runner] : runners) {
      if (sub->parsed()) return runner();
    }
  } catch (const Error& e) {
    log::error(e.what());
    return 1;
  } catch (const std::exception& e) {
    log::error("internal error: ", e.what(),
               " (this is a bug in mixnas; please report it with the command you ran)");
    return 3;
  }
  return 0;
}
