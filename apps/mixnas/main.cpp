// mixnas: the command line. One subcommand per stage of the pipeline; each lives in cmd_<name>.cpp.
#include <signal.h>

#include <cstdio>
#include <exception>
#include <map>
#include <string>

#include "apps/mixnas/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "core/version.h"

namespace mixnas::cli {

config::Config load_config_args(const ConfigArgs& args, const config::Schema& schema) {
  std::vector<std::string> overrides;
  bool from_file = !args.words.empty() && args.words[0].find('=') == std::string::npos;
  overrides.assign(args.words.begin() + (from_file ? 1 : 0), args.words.end());
  overrides.insert(overrides.end(), args.flags.begin(), args.flags.end());
  if (!from_file) return config::Config::defaults(schema, overrides);
  return config::Config::load(args.words[0], schema, overrides);
}

void add_config_args(CLI::App* cmd, ConfigArgs& args) {
  cmd->add_option("config", args.words,
                  "CONFIG.yaml followed by key=value overrides (train.epochs=3)")
      ->required();
  // --name/--exist-ok are the config's name/exist_ok keys, as overrides.
  cmd->add_option_function<std::string>(
      "--name", [&args](const std::string& v) { args.flags.push_back("name=" + v); },
      "Run name: results in runs/<command>/<name>");
  cmd->add_flag_function(
      "--exist-ok", [&args](int64_t) { args.flags.push_back("exist_ok=true"); },
      "Reuse runs/<command>/<name> instead of numbering a new folder");
}

}  // namespace mixnas::cli

int main(int argc, char** argv) {
  using namespace mixnas;
  // Beyond the file size limit (ulimit -f) a write then fails with EFBIG, which the atomic writer
  // reports (exit 1, the previous file kept), instead of the signal killing the process silently.
  signal(SIGXFSZ, SIG_IGN);
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
  add(cli::add_study_command);
  add(cli::add_export_command);
  add(cli::add_bench_command);
  add(cli::add_predict_command);
  add(cli::add_lut_command);
  add(cli::add_info_command);
  add(cli::add_agent_ping_command);

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
