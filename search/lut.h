#pragma once
// The latency table of one search: measured entries for every candidate signature (reused from a
// cache folder when the device id, runtime version and threads match), and the model's calibration
// on whole-model measurements of random architectures (`mixnas lut build` / `lut validate`).
#include <string>
#include <utility>
#include <vector>

#include "evaluators/evaluator.h"
#include "evaluators/latency_table.h"
#include "search/cost.h"
#include "search/dnas.h"
#include "supernet/model.h"

namespace mixnas::search {

// Names the model a calibration belongs to: model YAML text, classes, input size and the sites'
// candidates (a hash, hex).
std::string model_key(const supernet::YoloModel& model, int imgsz);

struct LutRequest {
  std::string model_key;
  std::string cache_dir;  // "" = no cache; else <cache_dir>/<device_id>.json
  std::string run_copy;   // where the table used is written (run folder lut.json); "" = nowhere
  bool reuse_run_copy = false;  // a resumed run keeps the table it started with
  int calibrate_n = 6;
  bool recalibrate = false;  // measure the calibration even when one is stored
  uint64_t seed = 0;
  int imgsz = 160;
};

// Loads or measures every entry `cost` needs and makes sure the table holds a calibration for
// the model; writes the cache and the run copy atomically.
eval::LatencyTable prepare_table(supernet::YoloModel& supernet, const CostModel& cost,
                                 eval::Evaluator& evaluator, const LutRequest& request);

// Measures one architecture whole: the fixed model of `choices` with the supernet's weights (its
// quantizers initialised on a random batch when untrained), exported at imgsz and run by the
// evaluator. Returns the measured median latency in ms.
double measure_architecture(supernet::YoloModel& supernet, const supernet::ArchChoices& choices,
                            eval::Evaluator& evaluator, int imgsz);

// (predicted, measured) latency pairs of n random architectures drawn with `seed`.
std::vector<std::pair<double, double>> measure_random_architectures(supernet::YoloModel& supernet,
                                                                    const CostModel& cost,
                                                                    eval::Evaluator& evaluator,
                                                                    int n, uint64_t seed, int imgsz,
                                                                    bool raw = false);

struct LutAccuracy {
  double mape_pct = -1, max_err_pct = -1;
  int n = 0;
};
// Mean and largest absolute percentage error of predicted vs measured.
LutAccuracy lut_accuracy(const std::vector<std::pair<double, double>>& predicted_measured);

}  // namespace mixnas::search
