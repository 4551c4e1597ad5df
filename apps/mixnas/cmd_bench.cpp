// `mixnas bench MODEL.mxr [--device configs/devices/X.yaml]`: latency and memory of a package,
// measured by the evaluator of this machine or of a device class (evaluators/evaluator.h), the
// same measurement a search makes. The last line of stdout is machine-readable:
//   LATENCY median_ms=<x> p90_ms=<x> arena_bytes=<n> weight_bytes=<n> peak_bytes=<n>
#include <cstdio>
#include <memory>
#include <string>

#include "apps/mixnas/commands.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "deploy/runtime/session.h"
#include "evaluators/evaluator_factory.h"

namespace mixnas::cli {
namespace {

struct BenchOptions {
  std::string model;
  int threads = 1;
  int runs = 20;
  int warmup = 3;
  bool reference = false;
  std::string device;  // configs/devices/X.yaml: measure through its agents
};

int run_bench(const BenchOptions& o) {
  if (o.reference && !o.device.empty())
    throw Error("--reference measures this machine's reference convs: drop --device or it");
  eval::MeasureOptions mo;
  mo.runs = o.runs;
  mo.warmup = o.warmup;
  mo.threads = o.threads;
  mo.reference_kernels = o.reference;
  std::unique_ptr<eval::Evaluator> evaluator =
      eval::make_evaluator(o.device.empty() ? "local" : o.device, mo);
  log::info("bench: ", o.model, ": ", o.warmup, " warm-up + ", o.runs, " runs, ", o.threads,
            " thread(s), ", evaluator->kind(), " evaluator");
  eval::MeasureResult r = evaluator->measure_package(read_file(o.model));
  std::printf("measured by device %s (%d thread(s))%s%s\n", r.device_id.c_str(), r.threads,
              o.device.empty() ? "" : " through ", o.device.c_str());
  rt::Profile p;
  p.threads = r.threads;
  p.warmup = o.warmup;
  p.nodes = r.nodes;
  p.total = r.latency;
  p.memory = r.memory;
  std::fputs(rt::format_profile(p).c_str(), stdout);
  if (r.peak_rss_bytes >= 0)
    std::printf("peak RSS %lld bytes\n", static_cast<long long>(r.peak_rss_bytes));
  std::printf(
      "LATENCY median_ms=%.4f p90_ms=%.4f arena_bytes=%lld weight_bytes=%lld peak_bytes=%lld\n",
      r.latency.median_ms, r.latency.p90_ms, static_cast<long long>(r.memory.arena_bytes),
      static_cast<long long>(r.memory.weight_bytes), static_cast<long long>(r.memory.peak_bytes));
  std::fflush(stdout);
  return 0;
}

}  // namespace

Runner add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "bench",
      "Measure an .mxr package with the runtime: per-node latency table, then one line "
      "'LATENCY median_ms=.. p90_ms=.. arena_bytes=.. weight_bytes=.. peak_bytes=..'");
  auto o = std::make_shared<BenchOptions>();
  cmd->add_option("model", o->model, "The .mxr package")->required()->check(CLI::ExistingFile);
  cmd->add_option("--threads", o->threads, "Threads (OpenMP) per run")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--runs", o->runs, "Timed runs")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "Untimed runs first")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  cmd->add_flag("--reference", o->reference, "Use the scalar reference convs (for comparison)");
  cmd->add_option("--device", o->device,
                  "configs/devices/X.yaml: measure on that device class through mixnas-agent");
  return [o] { return run_bench(*o); };
}

}  // namespace mixnas::cli
