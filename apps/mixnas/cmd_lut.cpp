// mixnas lut build CONFIG [key=value ...]     measures the latency table of a search config
// mixnas lut validate CONFIG [n=20] [...]     measures n random architectures whole and prints
//                                             last `LUT mape=<pct> max_err=<pct> n=<n>`
//   --against DEVICE (local | configs/devices/X.yaml) or --measured LUT.json: the config's
//   (predicted) table against layers measured there, per layer, then `LUT-LAYERS mape=<pct>
//   max_err=<pct> n=<n>`; the n whole models are then measured there too.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "apps/mixnas/commands.h"
#include "apps/mixnas/search_setup.h"
#include "core/error.h"
#include "core/log.h"
#include "core/schemas.h"
#include "evaluators/evaluator_factory.h"
#include "search/cost.h"
#include "search/lut.h"

namespace mixnas::cli {
namespace fs = std::filesystem;

namespace {

struct LutState {
  ConfigArgs build, validate;
  int n = 20;
  bool recalibrate = false;
  std::string out;
  std::string against, measured;  // validate: a device to measure on, or a measured table
};

// The measured side of `lut validate --against/--measured`: every signature of `cost` measured
// through `against`, or the table file (which must hold them).
eval::LatencyTable measured_table(const search::CostModel& cost, const LutState& st,
                                  eval::Evaluator* against) {
  if (!st.measured.empty()) return eval::LatencyTable::load(st.measured);
  eval::LatencyTable t(against->device_id(), against->runtime_version(), against->options().threads,
                       against->options().runs);
  t.fill(cost.signatures(), *against);
  return t;
}

// Per layer, the table's entry against the measured one; last `LUT-LAYERS mape= max_err= n=`.
void print_layer_errors(const eval::LatencyTable& table, const eval::LatencyTable& measured) {
  const eval::TableComparison c = eval::compare_tables(table, measured);
  if (c.layers.empty())
    throw Error("lut validate: the measured table (" + measured.device_id() +
                ") shares no layer with the table of " + table.device_id());
  std::printf("layers: %s against %s\n", table.device_id().c_str(), measured.device_id().c_str());
  for (const auto& l : c.layers)
    std::printf("%-44s %-32s predicted %.4f ms, measured %.4f ms (%+.1f%%)\n", l.key.c_str(),
                l.measured_kernel.c_str(), l.predicted_ms, l.measured_ms, l.err_pct);
  std::printf("LUT-LAYERS mape=%.2f max_err=%.2f n=%zu\n", c.mape_pct, c.max_err_pct,
              c.layers.size());
}

int run_lut(const config::Config& cfg, bool validate, const LutState& st) {
  std::unique_ptr<eval::Evaluator> evaluator = evaluator_from_config(cfg);
  torch::manual_seed(static_cast<uint64_t>(cfg.get_int("seed")));
  int imgsz = static_cast<int>(cfg.get_int("imgsz"));
  supernet::YoloModel supernet = supernet_from_config(cfg);
  search::CostModel cost(supernet, imgsz);
  search::LutRequest req;
  req.model_key = search::model_key(supernet, imgsz);
  req.cache_dir =
      cfg.get_string("cost.lut_cache").empty() ? "" : cfg.resolve_path("cost.lut_cache");
  req.run_copy = st.out;
  req.calibrate_n = static_cast<int>(cfg.get_int("cost.calibrate_n"));
  req.recalibrate = st.recalibrate && !validate;
  req.seed = static_cast<uint64_t>(cfg.get_int("seed"));
  req.imgsz = imgsz;
  if (req.cache_dir.empty() && req.run_copy.empty()) {
    throw Error("nowhere to keep the table: set cost.lut_cache or --out");
  }
  eval::LatencyTable table = search::prepare_table(supernet, cost, *evaluator, req);
  cost.attach(table);
  const auto& c = table.calibration();
  std::printf(
      "table: %zu entries for %s (runtime %s, %d thread(s)); calibration scale=%.4f "
      "offset=%.4f ms (fit on %d models, MAPE %.2f%%)\n",
      table.size(), table.device_id().c_str(), table.runtime_version().c_str(), table.threads(),
      c.scale, c.offset_ms, c.n, c.mape_pct);
  if (table.predicted()) std::printf("table: %s\n", table.model().c_str());
  if (!validate) return 0;
  std::unique_ptr<eval::Evaluator> against;
  if (!st.against.empty()) {
    eval::MeasureOptions mo = evaluator->options();
    against = eval::make_evaluator(st.against, mo);
  }
  if (against || !st.measured.empty())
    print_layer_errors(table, measured_table(cost, st, against.get()));
  // Architectures drawn apart from the calibration's (another seed), measured where the layers
  // were (the config's device without --against).
  auto pairs = search::measure_random_architectures(
      supernet, cost, against ? *against : *evaluator, st.n,
      static_cast<uint64_t>(cfg.get_int("seed")) + 31337u, imgsz);
  for (size_t i = 0; i < pairs.size(); ++i) {
    std::printf("arch %zu: predicted %.4f ms, measured %.4f ms (%+.2f%%)\n", i, pairs[i].first,
                pairs[i].second, 100.0 * (pairs[i].first - pairs[i].second) / pairs[i].second);
  }
  search::LutAccuracy a = search::lut_accuracy(pairs);
  std::printf("LUT mape=%.2f max_err=%.2f n=%d\n", a.mape_pct, a.max_err_pct, a.n);
  return 0;
}

}  // namespace

Runner add_lut_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("lut", "Build or validate the latency lookup table of a search config");
  cmd->require_subcommand(1);
  auto st = std::make_shared<LutState>();
  auto* build = cmd->add_subcommand("build",
                                    "Measure every candidate layer of the config's search space "
                                    "and calibrate on whole models");
  add_config_args(build, st->build);
  build->add_flag("--recalibrate", st->recalibrate,
                  "Measure the calibration even when one is stored");
  build->add_option("--out", st->out, "Also write the table used to this file");
  auto* validate = cmd->add_subcommand("validate",
                                       "Measure n random architectures whole against the "
                                       "table's prediction");
  add_config_args(validate, st->validate);
  validate->add_option("-n,--n", st->n, "Number of random architectures")
      ->check(CLI::Range(1, 10000));
  validate->add_option("--against", st->against,
                       "Measure every layer and the whole models on this device (local or a "
                       "device YAML) and compare it with the config's table, per layer");
  validate->add_option("--measured", st->measured,
                       "Compare the config's table per layer with this measured lut.json");
  return [st, build, validate] {
    bool is_validate = validate->parsed();
    ConfigArgs args = is_validate ? st->validate : st->build;
    // `n=20` is accepted as a word too, as the docs write it.
    std::vector<std::string> words;
    for (const auto& w : args.words) {
      if (w.rfind("n=", 0) == 0) {
        try {
          st->n = std::stoi(w.substr(2));
        } catch (const std::exception&) {
          throw Error("n: '" + w.substr(2) + "' is not an integer");
        }
        if (st->n < 1) throw Error("n must be at least 1");
        continue;
      }
      words.push_back(w);
    }
    args.words = words;
    (void)build;
    config::Config cfg = load_config_args(args, config::search_schema());
    return run_lut(cfg, is_validate, *st);
  };
}

}  // namespace mixnas::cli
