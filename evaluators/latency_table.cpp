#include "evaluators/latency_table.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/progress.h"

namespace mixnas::eval {

LatencyTable::LatencyTable(std::string device_id, std::string runtime_version, int threads,
                           int runs)
    : device_id_(std::move(device_id)),
      runtime_version_(std::move(runtime_version)),
      threads_(threads),
      runs_(runs) {}

LatencyTable LatencyTable::load(const std::string& path) {
  std::string text = read_file(path);
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw Error(path + ": not a JSON object (a latency table?)");
  auto field = [&](const char* name) -> const nlohmann::json& {
    auto it = j.find(name);
    if (it == j.end()) throw Error(path + ": missing field '" + std::string(name) + "'");
    return *it;
  };
  if (field("format") != "mixnas-lut-1") {
    throw Error(path + ": unknown table format " + field("format").dump() +
                " (expected mixnas-lut-1)");
  }
  try {
    LatencyTable t(field("device_id").get<std::string>(),
                   field("runtime_version").get<std::string>(), field("threads").get<int>(),
                   field("runs").get<int>());
    if (auto p = j.find("provenance"); p != j.end() && p->is_object()) t.provenance_ = *p;
    if (j.value("predicted", false) && !t.predicted())  // tables from before "provenance"
      t.provenance_ = {{"source", "predicted"}, {"text", field("model").get<std::string>()}};
    for (const auto& [key, e] : field("entries").items()) {
      LatencyEntry entry;
      entry.median_ms = e.at("median_ms").get<double>();
      entry.min_ms = e.at("min_ms").get<double>();
      entry.p90_ms = e.at("p90_ms").get<double>();
      entry.kernel = e.at("kernel").get<std::string>();
      entry.weight_bytes = e.at("weight_bytes").get<int64_t>();
      // Tables written before the field existed: their kernels held what the package held.
      entry.resident_weight_bytes = e.contains("resident_weight_bytes")
                                        ? e.at("resident_weight_bytes").get<int64_t>()
                                        : entry.weight_bytes;
      entry.arena_bytes = e.at("arena_bytes").get<int64_t>();
      if (!(entry.median_ms >= 0) || !std::isfinite(entry.median_ms)) {
        throw Error("entry '" + key + "' has an invalid median_ms");
      }
      t.entries_[key] = entry;
    }
    auto read_cal = [](const nlohmann::json& c) {
      Calibration cal;
      cal.scale = c.at("scale").get<double>();
      cal.offset_ms = c.at("offset_ms").get<double>();
      cal.mape_pct = c.at("mape_pct").get<double>();
      cal.max_err_pct = c.value("max_err_pct", -1.0);
      cal.n = c.at("n").get<int>();
      if (!std::isfinite(cal.scale) || !std::isfinite(cal.offset_ms)) {
        throw Error("a calibration has a non-finite scale or offset");
      }
      return cal;
    };
    if (auto c = j.find("calibration"); c != j.end()) t.calibration_ = read_cal(*c);
    if (auto c = j.find("calibrations"); c != j.end()) {
      for (const auto& [key, value] : c->items()) t.calibrations_[key] = read_cal(value);
    }
    return t;
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": malformed latency table: " + e.what());
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

bool LatencyTable::use_calibration(const std::string& model_key) {
  auto it = calibrations_.find(model_key);
  if (it == calibrations_.end()) return false;
  calibration_ = it->second;
  return true;
}

void LatencyTable::save(const std::string& path) const {
  auto cal_json = [](const Calibration& c) {
    return nlohmann::json{{"scale", c.scale},
                          {"offset_ms", c.offset_ms},
                          {"mape_pct", c.mape_pct},
                          {"max_err_pct", c.max_err_pct},
                          {"n", c.n}};
  };
  nlohmann::json cals = nlohmann::json::object();
  for (const auto& [key, c] : calibrations_) cals[key] = cal_json(c);
  nlohmann::json entries = nlohmann::json::object();
  for (const auto& [key, e] : entries_) {
    entries[key] = {{"median_ms", e.median_ms},
                    {"min_ms", e.min_ms},
                    {"p90_ms", e.p90_ms},
                    {"kernel", e.kernel},
                    {"weight_bytes", e.weight_bytes},
                    {"resident_weight_bytes", e.resident_weight_bytes},
                    {"arena_bytes", e.arena_bytes}};
  }
  nlohmann::json j = {{"format", "mixnas-lut-1"},
                      {"device_id", device_id_},
                      {"runtime_version", runtime_version_},
                      {"threads", threads_},
                      {"runs", runs_},
                      {"entries", entries},
                      {"calibration", cal_json(calibration_)},
                      {"calibrations", cals}};
  if (!provenance_.empty()) j["provenance"] = provenance_;
  if (predicted()) j["predicted"] = true, j["model"] = model();
  write_file_atomic(path, j.dump(1) + "\n");
}

bool LatencyTable::matches(const std::string& device_id, const std::string& runtime_version,
                           int threads) const {
  return device_id_ == device_id && runtime_version_ == runtime_version && threads_ == threads;
}

const LatencyEntry& LatencyTable::at(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    throw Error("latency table of " + device_id_ + " has no entry " + key +
                " (run `mixnas lut build` for this search space)");
  }
  return it->second;
}

size_t LatencyTable::fill(const std::vector<LayerSignature>& signatures, Evaluator& evaluator,
                          size_t batch) {
  std::vector<LayerSignature> todo;
  std::set<std::string> seen;
  for (const auto& s : signatures) {
    std::string key = s.key();
    if (has(key) || !seen.insert(key).second) continue;
    todo.push_back(s);
  }
  if (todo.empty()) return 0;
  provenance_ = evaluator.provenance();
  if (batch == 0) batch = evaluator.layers_per_call();
  Progress progress("latency table", static_cast<int64_t>(todo.size()), "layer");
  for (size_t b = 0; b < todo.size(); b += batch) {
    std::vector<LayerSignature> part(todo.begin() + b,
                                     todo.begin() + std::min(todo.size(), b + batch));
    std::vector<LayerRow> rows = evaluator.measure_layers(part);
    if (rows.size() != part.size())
      throw Error(evaluator.kind() + " evaluator answered " + std::to_string(rows.size()) +
                  " rows for " + std::to_string(part.size()) + " layers");
    for (const auto& r : rows) {
      LatencyEntry e;
      e.median_ms = r.latency.median_ms;
      e.min_ms = r.latency.min_ms;
      e.p90_ms = r.latency.p90_ms;
      e.kernel = r.kernel;
      e.weight_bytes = r.weight_bytes;
      e.resident_weight_bytes = r.resident_weight_bytes;
      e.arena_bytes = r.arena_bytes;
      entries_[r.key] = e;
    }
    progress.advance(static_cast<int64_t>(part.size()));
  }
  progress.finish();
  return todo.size();
}

double LatencyTable::raw_sum_ms(const std::vector<std::string>& keys) const {
  double sum = 0;
  for (const auto& k : keys) sum += at(k).median_ms;
  return sum;
}

double LatencyTable::predict_ms(const std::vector<std::string>& keys) const {
  return calibration_.scale * raw_sum_ms(keys) + calibration_.offset_ms;
}

void LatencyTable::calibrate(const std::vector<std::pair<double, double>>& pairs) {
  size_t n = pairs.size();
  if (n == 0) return;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const auto& [x, y] : pairs) {
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  double denom = static_cast<double>(n) * sxx - sx * sx;
  double lo = pairs.front().first, hi = lo;
  for (const auto& p : pairs) lo = std::min(lo, p.first), hi = std::max(hi, p.first);
  calibration_.scale = 0;
  if (n >= 2 && hi - lo < kMinCalibrationSpread * (sx / static_cast<double>(n))) {
    // The models' layer sums lie too close together for a slope: timing noise would make it (a
    // quick-start table once fitted 3.0 x sum - 1.6 ms on sums within 10% of each other, and
    // mispredicted other models by 38%). The table's own scale then stands, and the fit is the
    // offset of the fixed ops alone: the mean of measured - sum.
    calibration_.scale = 1.0;
    calibration_.offset_ms = (sy - sx) / static_cast<double>(n);
  } else if (n >= 2 && std::abs(denom) > 1e-12) {
    calibration_.scale = (static_cast<double>(n) * sxy - sx * sy) / denom;
    calibration_.offset_ms = (sy - calibration_.scale * sx) / static_cast<double>(n);
  }
  // A slope that is not positive says the layer sums do not explain the whole-model times (layers
  // so small that the fixed ops and timing noise dominate). Kept, it would turn the latency term
  // around: the search would be pushed towards the slower candidates. The fit through the origin
  // keeps the table's order of candidates instead.
  if (!(calibration_.scale > 0)) {
    calibration_.scale = sxx > 0 && sxy > 0 ? sxy / sxx : 1.0;
    calibration_.offset_ms = 0;
  }
  double sum_err = 0, max_err = 0;
  for (const auto& [x, y] : pairs) {
    double pred = calibration_.scale * x + calibration_.offset_ms;
    double err = y > 0 ? std::abs(pred - y) / y * 100.0 : 0.0;
    sum_err += err;
    max_err = std::max(max_err, err);
  }
  calibration_.mape_pct = sum_err / static_cast<double>(n);
  calibration_.max_err_pct = max_err;
  calibration_.n = static_cast<int>(n);
}

TableComparison compare_tables(const LatencyTable& predicted, const LatencyTable& measured) {
  TableComparison c;
  double sum = 0;
  for (const auto& [key, p] : predicted.entries()) {
    auto it = measured.entries().find(key);
    if (it == measured.entries().end() || !(it->second.median_ms > 0)) continue;
    const LatencyEntry& m = it->second;
    const double err = 100.0 * (p.median_ms - m.median_ms) / m.median_ms;
    c.layers.push_back({key, p.kernel, m.kernel, p.median_ms, m.median_ms, err});
    sum += std::fabs(err);
    c.max_err_pct = std::max(c.max_err_pct, std::fabs(err));
  }
  if (!c.layers.empty()) c.mape_pct = sum / c.layers.size();
  return c;
}

}  // namespace mixnas::eval
