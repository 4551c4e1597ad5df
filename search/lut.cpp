#include "search/lut.h"

#include <cmath>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/progress.h"
#include "deploy/export/export.h"

namespace mixnas::search {
namespace fs = std::filesystem;
namespace sn = mixnas::supernet;

std::string model_key(const sn::YoloModel& model, int imgsz) {
  std::ostringstream text;
  text << model->spec().text << "\nnc=" << model->nc() << "\nimgsz=" << imgsz << "\n";
  for (const auto& s : model->sites()) {
    text << s.name << ':';
    for (auto a : s.acts) text << sn::act_name(a) << ',';
    text << '|';
    for (int b : s.w_bits) text << b << ',';
    text << '|';
    for (int b : s.a_bits) text << b << ',';
    text << '\n';
  }
  const uint64_t h = fnv1a(text.str());
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

double measure_architecture(sn::YoloModel& supernet, const sn::ArchChoices& choices,
                            eval::Evaluator& evaluator, int imgsz) {
  sn::YoloModel fixed = sn::derive_model(supernet, choices);
  {
    // Quantizers not trained yet take their initial steps from one random batch; latency does
    // not depend on the values.
    torch::NoGradGuard no_grad;
    fixed->train();
    fixed->forward_raw(torch::rand({2, 3, imgsz, imgsz}));
    fixed->eval();
  }
  exporter::ExportOptions eo;
  eo.imgsz = imgsz;
  std::string package = exporter::export_mxr(fixed, eo);
  return evaluator.measure_package(package).latency.median_ms;
}

std::vector<std::pair<double, double>> measure_random_architectures(sn::YoloModel& supernet,
                                                                    const CostModel& cost,
                                                                    eval::Evaluator& evaluator,
                                                                    int n, uint64_t seed, int imgsz,
                                                                    bool raw) {
  std::vector<std::pair<double, double>> out;
  if (n <= 0) return out;
  Progress progress("whole models", n, "model");
  for (int i = 0; i < n; ++i) {
    sn::ArchChoices c = cost.random_choices(seed + static_cast<uint64_t>(i) * 7919u);
    double predicted = raw ? cost.raw_latency_ms(c) : cost.latency_ms(c);
    double measured = measure_architecture(supernet, c, evaluator, imgsz);
    out.push_back({predicted, measured});
    progress.advance();
  }
  progress.finish();
  return out;
}

LutAccuracy lut_accuracy(const std::vector<std::pair<double, double>>& pm) {
  LutAccuracy a;
  double sum = 0, mx = 0;
  for (const auto& [p, m] : pm) {
    if (!(m > 0)) continue;
    double e = std::abs(p - m) / m * 100.0;
    sum += e;
    mx = std::max(mx, e);
    ++a.n;
  }
  if (a.n > 0) {
    a.mape_pct = sum / a.n;
    a.max_err_pct = mx;
  }
  return a;
}

eval::LatencyTable prepare_table(sn::YoloModel& supernet, const CostModel& cost,
                                 eval::Evaluator& evaluator, const LutRequest& req) {
  const int threads = evaluator.options().threads;
  auto usable = [&](const eval::LatencyTable& t) {
    return t.matches(evaluator.device_id(), evaluator.runtime_version(), threads);
  };
  eval::LatencyTable table(evaluator.device_id(), evaluator.runtime_version(), threads,
                           evaluator.options().runs);
  bool from_run = false;
  if (req.reuse_run_copy && !req.run_copy.empty() && fs::exists(req.run_copy)) {
    eval::LatencyTable t = eval::LatencyTable::load(req.run_copy);
    if (usable(t)) {
      table = t;
      from_run = true;
      log::info("latency table: ", req.run_copy, " (", table.size(),
                " entries, kept from the run)");
    } else {
      log::warn(req.run_copy, " was measured on ", t.device_id(), " (runtime ", t.runtime_version(),
                ", ", t.threads(), " threads): measuring a new table for ", evaluator.device_id());
    }
  }
  std::string cache_file;
  if (!from_run && !req.cache_dir.empty()) {
    cache_file = (fs::path(req.cache_dir) / (evaluator.device_id() + ".json")).string();
    if (fs::exists(cache_file)) {
      eval::LatencyTable t = eval::LatencyTable::load(cache_file);
      if (usable(t)) {
        table = t;
        log::info("latency table cache: ", cache_file, " (", table.size(), " entries)");
      } else {
        log::info("latency table cache ", cache_file,
                  " is for another runtime version or thread "
                  "count: starting a new one");
      }
    }
  }
  auto signatures = cost.signatures();
  size_t measured = table.fill(signatures, evaluator);
  if (table.provenance().empty()) table.set_provenance(evaluator.provenance());
  log::info("latency table: ", signatures.size(), " signatures, ", measured,
            table.predicted() ? " predicted now, " : " measured now, ",
            signatures.size() - measured, " from the table");
  if (table.predicted()) log::info("latency table: ", table.model());

  bool have_cal = table.use_calibration(req.model_key);
  if (!have_cal || req.recalibrate) {
    // Calibrate on raw (uncalibrated) sums.
    CostModel raw = cost;
    eval::LatencyTable t0 = table;
    t0.set_calibration(eval::Calibration{});
    raw.attach(t0);
    log::info("calibrating the table on ", req.calibrate_n, " whole random architectures");
    auto pairs = measure_random_architectures(supernet, raw, evaluator, req.calibrate_n,
                                              req.seed + 104729u, req.imgsz, /*raw=*/true);
    table.calibrate(pairs);
    table.store_calibration(req.model_key);
    const auto& c = table.calibration();
    log::info("calibration: measured = ", c.scale, " x sum + ", c.offset_ms, " ms (fit MAPE ",
              c.mape_pct, "% on ", c.n, " models)");
  }
  if (!cache_file.empty() || (!req.cache_dir.empty() && !from_run)) {
    fs::create_directories(req.cache_dir);
    table.save((fs::path(req.cache_dir) / (evaluator.device_id() + ".json")).string());
  }
  if (!req.run_copy.empty()) {
    const fs::path parent = fs::path(req.run_copy).parent_path();
    if (!parent.empty()) fs::create_directories(parent);  // `--out t.json`: this folder
    table.save(req.run_copy);
  }
  return table;
}

}  // namespace mixnas::search
