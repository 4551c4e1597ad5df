// mixnas search CONFIG [key=value ...] [--resume]: the whole search job into runs/search/<name>.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "apps/mixnas/commands.h"
#include "apps/mixnas/launch.h"
#include "apps/mixnas/search_setup.h"
#include "core/atomic_file.h"
#include "core/log.h"
#include "core/run_dir.h"
#include "core/schemas.h"
#include "search/run_search.h"
#include "training/distributed.h"

namespace mixnas::cli {
namespace fs = std::filesystem;

Runner add_search_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "search", "Run a search: supernet, derive, finetune, export, measure, baselines, report");
  auto words = std::make_shared<ConfigArgs>();
  auto resume = std::make_shared<bool>(false);
  auto nproc = std::make_shared<int>(1);
  add_config_args(cmd, *words);
  add_nproc_option(cmd, *nproc);
  cmd->add_flag("--resume", *resume,
                "Continue runs/search/<name> where it stopped (search epoch, finetune, baselines)");
  cmd->add_flag_function(
      "--sensitivity", [words](int64_t) { words->flags.push_back("search.sensitivity=true"); },
      "Per-layer sensitivity after the search (search.sensitivity: sensitivity.csv)");
  return [words, resume, nproc] {
    if (std::optional<int> launched = launch_or_join(*nproc)) return *launched;
    config::Config cfg = load_config_args(*words, config::search_schema());
    std::unique_ptr<eval::Evaluator> evaluator = evaluator_from_config(cfg);
    const bool main = training::dist::is_main();
    std::string run =
        make_job_run_dir("search", cfg.get_string("name"), *resume || cfg.get_bool("exist_ok"));
    if (main && (!*resume || !fs::exists(run + "/args.yaml")))
      write_file_atomic(run + "/args.yaml", cfg.to_yaml());
    log::info("search into ", run, ", latency measured on ", evaluator->device_id(), " (",
              evaluator->kind(), ")");
    nlohmann::json summary;
    try {
      summary = search::run_search(cfg, *evaluator, run, *resume);
    } catch (...) {
      if (main) remove_unused_run_dir(run);
      throw;
    }
    if (!main) return 0;
    if (summary.contains("searched")) {
      const auto& s = summary["searched"];
      std::printf("searched: mAP50-95=%.4f mAP50=%.4f latency=%.3f ms peak=%lld bytes\n",
                  s["map50_95"].get<double>(), s["map50"].get<double>(),
                  s["latency_ms"].get<double>(),
                  static_cast<long long>(s["peak_bytes"].get<int64_t>()));
    }
    nlohmann::json baselines = summary.value("baselines", nlohmann::json::object());
    for (const auto& [name, b] : baselines.items()) {
      std::printf("baseline %s: mAP50-95=%.4f mAP50=%.4f latency=%.3f ms peak=%lld bytes\n",
                  name.c_str(), b["map50_95"].get<double>(), b["map50"].get<double>(),
                  b["latency_ms"].get<double>(),
                  static_cast<long long>(b["peak_bytes"].get<int64_t>()));
    }
    std::printf("summary: %s/summary.json\n", run.c_str());
    if (fs::exists(run + "/report.html")) std::printf("report: %s/report.html\n", run.c_str());
    return 0;
  };
}

}  // namespace mixnas::cli
