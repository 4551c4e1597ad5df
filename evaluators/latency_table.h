#pragma once
// The latency lookup table: one row per one-layer graph signature (evaluators/layer_graph.h),
// measured on one device with one runtime version. Stored as JSON and reused across searches: the
// same signature on the same device id and runtime version is the same entry.
//
// File format (lut.json):
//   {"format": "mixnas-lut-1", "device_id": "...", "runtime_version": "0.1.0", "threads": 1,
//    "runs": 20, "entries": {"<signature key>": {"median_ms", "min_ms", "p90_ms", "kernel",
//    "weight_bytes", "resident_weight_bytes", "arena_bytes"}, ...},
//    "calibration": {"scale": 1.0, "offset_ms": 0.0, "mape_pct": -1, "max_err_pct": -1, "n": 0},
//    "calibrations": {"<model key>": {...same fields...}, ...},
//    "provenance": {"source": "measured" | "predicted", ...},
//    "predicted": true, "model": "predicted for <core> (device model <name>), not measured"}
//   (the last two only in tables a device model predicted; its provenance also names the model
//   file, the core, the llvm-mca version and the coefficients: DeviceModel::provenance_json)
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "evaluators/evaluator.h"

namespace mixnas::eval {

struct LatencyEntry {
  double median_ms = 0, min_ms = 0, p90_ms = 0;
  std::string kernel;
  int64_t weight_bytes = 0, arena_bytes = 0;
  // Weights as the kernel the runtime chose holds them: the layer's share of peak memory. Larger
  // than weight_bytes where low bits fall back to a wider kernel (kernels.md).
  int64_t resident_weight_bytes = 0;
};

// predicted whole-model latency = scale * (sum of layer entries) + offset_ms: the offset covers
// the ops that are not searchable layers (concat, upsample, pooling, decode, NMS), the scale the
// interaction effects (caches) seen in whole-model measurements.
struct Calibration {
  double scale = 1.0;
  double offset_ms = 0.0;
  double mape_pct = -1;  // mean absolute percentage error on the calibration set, -1 = unknown
  double max_err_pct = -1;
  int n = 0;
};

// Relative spread (max - min over the mean) the calibration models' layer sums need for a fitted
// slope.
constexpr double kMinCalibrationSpread = 0.2;

class LatencyTable {
 public:
  LatencyTable() = default;
  LatencyTable(std::string device_id, std::string runtime_version, int threads, int runs);

  // Loads `path`; throws mixnas::Error naming the file and field on a malformed table.
  static LatencyTable load(const std::string& path);
  // Writes atomically.
  void save(const std::string& path) const;

  const std::string& device_id() const { return device_id_; }
  const std::string& runtime_version() const { return runtime_version_; }
  int threads() const { return threads_; }
  // True when the table was measured on this device id and runtime version with these threads.
  bool matches(const std::string& device_id, const std::string& runtime_version, int threads) const;

  // Tables from a device model (evaluators/device_model) are predicted, not measured: they carry
  // "predicted": true and "model": e.g. "predicted for cortex-a72 (device model rpi4-model), not
  // measured", which commands print with the table.
  bool predicted() const { return provenance_.value("source", "") == "predicted"; }
  std::string model() const { return predicted() ? provenance_.value("text", "") : ""; }
  // Evaluator::provenance() of the evaluator that filled the table ({} = unknown, older tables).
  const nlohmann::json& provenance() const { return provenance_; }
  void set_provenance(const nlohmann::json& p) { provenance_ = p; }

  bool has(const std::string& key) const { return entries_.count(key) > 0; }
  // Throws mixnas::Error when the key is missing (run `mixnas lut build`).
  const LatencyEntry& at(const std::string& key) const;
  void put(const std::string& key, const LatencyEntry& entry) { entries_[key] = entry; }
  size_t size() const { return entries_.size(); }
  const std::map<std::string, LatencyEntry>& entries() const { return entries_; }

  // Measures the signatures not in the table yet (deduplicated), with a progress bar; returns how
  // many were measured. The table takes the evaluator's provenance. batch 0 = the evaluator's
  // layers_per_call().
  size_t fill(const std::vector<LayerSignature>& signatures, Evaluator& evaluator,
              size_t batch = 0);

  // Sum of the entries of `keys`, then calibrated.
  double predict_ms(const std::vector<std::string>& keys) const;
  double raw_sum_ms(const std::vector<std::string>& keys) const;
  // Least squares of measured = scale * sum + offset over (sum, measured) pairs; records MAPE.
  // The scale stays positive: when the fitted slope is not, the fit goes through the origin. When
  // the sums span less than kMinCalibrationSpread of their mean, no slope is fitted: scale 1 and
  // the mean offset.
  void calibrate(const std::vector<std::pair<double, double>>& sum_and_measured);
  const Calibration& calibration() const { return calibration_; }
  void set_calibration(const Calibration& c) { calibration_ = c; }

  // Calibrations belong to one model (its fixed ops make the offset): they are kept per model
  // key (model YAML, classes, input size, search space) so a cached table serves many models.
  void store_calibration(const std::string& model_key) { calibrations_[model_key] = calibration_; }
  // Makes the stored calibration of `model_key` the active one; false when there is none.
  bool use_calibration(const std::string& model_key);

 private:
  std::string device_id_;
  std::string runtime_version_;
  int threads_ = 1;
  int runs_ = 20;
  nlohmann::json provenance_ = nlohmann::json::object();
  std::map<std::string, LatencyEntry> entries_;
  Calibration calibration_;
  std::map<std::string, Calibration> calibrations_;
};

// One layer of two tables side by side (`mixnas lut validate --against`).
struct LayerError {
  std::string key, predicted_kernel, measured_kernel;
  double predicted_ms = 0, measured_ms = 0;
  double err_pct = 0;  // (predicted - measured) / measured, signed
};
struct TableComparison {
  std::vector<LayerError> layers;  // keys of both tables, in key order
  double mape_pct = -1;            // mean |err_pct|, -1 when no key is shared
  double max_err_pct = -1;
};
// Median entries of the keys both tables hold; measured entries of 0 ms are skipped.
TableComparison compare_tables(const LatencyTable& predicted, const LatencyTable& measured);

}  // namespace mixnas::eval
