// Train and search from C++: the library calls behind `mixnas search`, for an application that
// drives mixnas itself (a sweep over targets, a service, a notebook kernel). It loads a search
// config with key=value overrides, measures on this machine through mixnas' runtime, runs the
// whole job (latency table, supernet search, derive, finetune, export, measure, baselines, report)
// and prints the winner's choices and its headline comparison.
//
//   search_cpp CONFIG [key=value ...]        e.g. search_cpp configs/search/quickstart.yaml
//
// Results land in runs/search/<name>/ as with the CLI (docs/search.md, "The run folder").
#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/run_dir.h"
#include "core/schemas.h"
#include "evaluators/evaluator_factory.h"
#include "search/run_search.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CONFIG [key=value ...]\n", argv[0]);
    return 2;
  }
  try {
    using namespace mixnas;
    const std::vector<std::string> overrides(argv + 2, argv + argc);
    const config::Config cfg = config::Config::load(argv[1], config::search_schema(), overrides);

    // Where candidates are measured: `device: local` is this process through mixnas' runtime; a
    // device YAML names an agent on a board (docs/agent.md) or a device model (docs/
    // device_models.md). Runs and threads as the config's cost section says.
    eval::MeasureOptions measure;
    measure.runs = static_cast<int>(cfg.get_int("cost.runs"));
    measure.warmup = static_cast<int>(cfg.get_int("cost.warmup"));
    measure.threads = std::max<int>(1, static_cast<int>(cfg.get_int("cost.threads")));
    measure.validate();
    const std::string device = cfg.get_string("device");
    std::unique_ptr<eval::Evaluator> evaluator =
        eval::make_evaluator(device == "local" ? device : cfg.resolve_path("device"), measure);

    const std::string run =
        make_run_dir("search", cfg.get_string("name"), cfg.get_bool("exist_ok"));
    write_file_atomic(run + "/args.yaml", cfg.to_yaml());
    const nlohmann::json summary = search::run_search(cfg, *evaluator, run, /*resume=*/false);

    std::printf("run: %s\n", run.c_str());
    if (summary.contains("searched")) {
      const auto& s = summary["searched"];
      std::printf("searched: mAP50-95 %.4f, %.3f ms, peak %lld bytes\n",
                  s["map50_95"].get<double>(), s["latency_ms"].get<double>(),
                  static_cast<long long>(s["peak_bytes"].get<int64_t>()));
    }
    if (summary.contains("headline")) {
      const std::string headline = summary["headline"].get<std::string>();
      const auto& h = summary[headline];
      std::printf("%s: mAP50-95 %+.2f points, latency %+.1f%%, peak memory %+.1f%%\n",
                  headline.c_str(), 100 * h["map50_95_delta"].get<double>(),
                  -h["latency_reduction_pct"].get<double>(),
                  -h["peak_memory_reduction_pct"].get<double>());
    }
    std::printf("architecture: %s/arch.yaml\n", run.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
