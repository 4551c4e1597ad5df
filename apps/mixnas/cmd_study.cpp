// mixnas study CONFIG [key=value ...] [--resume]: every strategy of study.strategies on one search
// config, into runs/study/<name>/<strategy>/, compared in study.json and study.html.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "apps/mixnas/commands.h"
#include "apps/mixnas/search_setup.h"
#include "core/atomic_file.h"
#include "core/log.h"
#include "core/run_dir.h"
#include "core/schemas.h"
#include "search/study.h"

namespace mixnas::cli {
namespace fs = std::filesystem;

namespace {

void print_winners(const nlohmann::json& study) {
  for (const auto& [name, e] : study["strategies"].items()) {
    const nlohmann::json& w = e["winner"];
    if (w.is_null()) {
      std::printf("%s: no model meets the budget (search %.1f s)\n", name.c_str(),
                  e["search_seconds"].get<double>());
      continue;
    }
    std::printf(
        "%s: %s mAP50-95=%.4f latency=%.3f ms peak=%lld bytes predicted=%.3f ms budget=%.3f ms "
        "search=%.1f s\n",
        name.c_str(), w["name"].get<std::string>().c_str(), w["map50_95"].get<double>(),
        w["latency_ms"].get<double>(), static_cast<long long>(w["peak_bytes"].get<int64_t>()),
        w.value("predicted_latency_ms", -1.0), w.value("budget_latency_ms", -1.0),
        e["search_seconds"].get<double>());
  }
}

}  // namespace

Runner add_study_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "study",
      "Run DNAS and its rivals (greedy, random, evolution, uniform) on one config and "
      "compare the measured winners (study.json, study.html)");
  auto words = std::make_shared<ConfigArgs>();
  auto resume = std::make_shared<bool>(false);
  add_config_args(cmd, *words);
  cmd->add_flag("--resume", *resume,
                "Continue runs/study/<name>: strategies with a summary.json are kept");
  return [words, resume] {
    config::Config cfg = load_config_args(*words, config::search_schema());
    std::unique_ptr<eval::Evaluator> evaluator = evaluator_from_config(cfg);
    const std::string dir =
        make_run_dir("study", cfg.get_string("name"), *resume || cfg.get_bool("exist_ok"));
    log::info("study into ", dir, ", latency measured on ", evaluator->device_id());
    search::ConfigLoader load = [words](const std::vector<std::string>& overrides) {
      ConfigArgs args = *words;
      args.words.insert(args.words.end(), overrides.begin(), overrides.end());
      return load_config_args(args, config::search_schema());
    };
    nlohmann::json study = search::run_study(load, *evaluator, dir, *resume);
    print_winners(study);
    std::printf("study: %s/study.json\nreport: %s/study.html\n", dir.c_str(), dir.c_str());
    return 0;
  };
}

}  // namespace mixnas::cli
