// `mixnas bench MODEL.mxr`: latency and memory of a package on this machine, measured by the
// runtime's profiler. The last line of stdout is machine-readable:
//   LATENCY median_ms=<x> p90_ms=<x> arena_bytes=<n> weight_bytes=<n> peak_bytes=<n>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "apps/mixnas/commands.h"
#include "core/atomic_file.h"
#include "core/log.h"
#include "deploy/runtime/session.h"
#include "evaluators/agent/client.h"

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

// The same measurement through mixnas-agent (the path a search uses for its device).
int run_bench_remote(const BenchOptions& o) {
  agent::RemoteEvaluator remote(load_device_config(o.device));
  agent::MeasureOptions mo;
  mo.runs = o.runs;
  mo.warmup = o.warmup;
  mo.threads = o.threads;
  std::string package = read_file(o.model);
  agent::MeasureResult r = remote.benchmark(package, mo);
  std::printf("measured by device %s (%d thread(s)) through %s\n", r.device_id.c_str(), r.threads,
              o.device.c_str());
  std::printf("%-40s %-10s %-36s %10s\n", "node", "op", "kernel", "median_ms");
  for (const auto& n : r.nodes) {
    std::printf("%-40s %-10s %-36s %10.4f\n", n.name.c_str(), n.op.c_str(), n.kernel.c_str(),
                n.median_ms);
  }
  std::printf("total: min %.4f  median %.4f  mean %.4f  p90 %.4f  std %.4f ms over %d runs; peak RSS %lld bytes\n",
              r.latency.min_ms, r.latency.median_ms, r.latency.mean_ms, r.latency.p90_ms,
              r.latency.std_ms, r.latency.runs, static_cast<long long>(r.peak_rss_bytes));
  std::printf(
      "LATENCY median_ms=%.4f p90_ms=%.4f arena_bytes=%lld weight_bytes=%lld peak_bytes=%lld\n",
      r.latency.median_ms, r.latency.p90_ms, static_cast<long long>(r.memory.arena_bytes),
      static_cast<long long>(r.memory.weight_bytes), static_cast<long long>(r.memory.peak_bytes));
  std::fflush(stdout);
  return 0;
}

int run_bench(const BenchOptions& o) {
  const auto model = rt::Model::load(o.model);
  rt::SessionOptions so;
  so.threads = o.threads;
  so.reference_kernels = o.reference;
  so.runs = o.runs;
  so.warmup = o.warmup;
  rt::Session session(model, so);
  // A deterministic synthetic image of the input size (latency does not depend on the content).
  const rt::InputSpec& spec = model->graph().input;
  std::vector<uint8_t> image(static_cast<size_t>(spec.width) * spec.height * 3);
  for (size_t i = 0; i < image.size(); ++i)
    image[i] = static_cast<uint8_t>((i * 2654435761u) >> 24);
  session.set_input_image({image.data(), spec.width, spec.height, 0});
  log::info("bench: ", o.model, ": ", model->graph().nodes.size(), " nodes, ", o.warmup,
            " warm-up + ", o.runs, " runs, ", session.threads(), " thread(s)");
  const rt::Profile p = session.profile();
  std::fputs(rt::format_profile(p).c_str(), stdout);
  std::printf(
      "LATENCY median_ms=%.4f p90_ms=%.4f arena_bytes=%lld weight_bytes=%lld peak_bytes=%lld\n",
      p.total.median_ms, p.total.p90_ms, static_cast<long long>(p.memory.arena_bytes),
      static_cast<long long>(p.memory.weight_bytes), static_cast<long long>(p.memory.peak_bytes));
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
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--runs", o->runs, "Timed runs")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "Untimed runs first")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  cmd->add_flag("--reference", o->reference, "Use the scalar reference convs (for comparison)");
  cmd->add_option("--device", o->device,
                  "configs/devices/X.yaml: measure on that device class through mixnas-agent");
  return [o] { return o->device.empty() ? run_bench(*o) : run_bench_remote(*o); };
}

}  // namespace mixnas::cli
