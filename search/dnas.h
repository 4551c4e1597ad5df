#pragma once
// `mixnas search`: the differentiable search of activations and bit-widths, then derive, finetune
// (quantization-aware, from the inherited weights), validate, export, measure on the device, the
// uniform baselines with the same budget, and the report (docs/search.md).
//
// Run folder runs/search/<name>/:
//   args.yaml          the resolved config
//   lut.json           the latency table used (device id, runtime version, calibration)
//   results.csv        one row per search epoch (losses, expected latency and memory, tau)
//   probs.csv          site probabilities per epoch
//   weights/supernet.pt  search checkpoint (every epoch, atomically); weights/best.pt the winner
//   arch.yaml          the derived architecture
//   finetune/          the winner's finetune run (results.csv, weights/)
//   baselines/<act>/   each baseline's run and model.mxr
//   model.mxr, model.onnx, summary.json, report.html
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "evaluators/agent/measure.h"
#include "evaluators/latency_table.h"
#include "search/trainer.h"
#include "supernet/model.h"

namespace mixnas::config {
class Config;
}

namespace mixnas::search {

class CostModel;

// Where latency is measured: in this process, or through mixnas-agent on a device.
struct Measurer {
  std::string device_id;
  std::string runtime_version;
  agent::MeasureOptions options;  // runs, warm-up and threads of every measurement
  eval::LayerMeasurer layers;     // one-layer graphs for the table
  std::function<agent::MeasureResult(const std::string& package)> model;  // whole packages
};
// In-process measurement through the runtime (the agent's own measuring code).
Measurer local_measurer(const agent::MeasureOptions& options);

struct SearchOptions {
  std::string strategy = "dnas";  // dnas | uniform
  int epochs = 10;
  int warmup_epochs = 3;
  int batch = 16;
  double lr0 = 0.002;
  double arch_split = 0.2;
  double arch_lr = 0.01;
  std::string sampling = "gumbel";
  double tau_start = 5.0, tau_end = 0.5;
  bool recompute = false;
  double lambda_latency = 0.1, lambda_memory = 0.05;
  double target_latency_ms = 0, target_memory_bytes = 0;
  // Targets when the absolute ones are 0: these fractions of the reference (all-8-bit) model.
  double target_latency_ratio = 0.7, target_memory_ratio = 0.4;
  // The activation the search starts from: its logit starts start_logit above the others at every
  // site that has it (empty: every candidate starts equal).
  std::string start_act;
  double start_logit = 1.0;
  std::string shape = "relu";
  double fraction = 1.0;  // of the train split, for quick runs
  bool finetune = true;   // derive -> finetune -> export -> measure -> baselines -> report
  std::vector<std::string> baselines;
  std::string baseline_bits = "fp32";
  int calibrate_n = 6, validate_n = 6;
  double prune_margin = 0.05;  // < 0: no pruning of dominated bit-widths
  std::string lut_cache;       // folder of cached tables; empty: none
  TrainOptions train;          // finetune (and loader, augmentation, loss, val) settings

  static SearchOptions from_config(const config::Config& cfg);
};

// The cost function g(x) of x = cost / target.
double cost_shape(const std::string& shape, double x);
torch::Tensor cost_shape(const std::string& shape, const torch::Tensor& x);

// One search epoch's record (results.csv row).
struct SearchEpoch {
  int epoch = 0;  // 1-based
  double tau = 1;
  double weight_loss = 0, arch_loss = 0;
  double expected_latency_ms = 0, expected_memory_bytes = 0;
  double derived_latency_ms = 0, derived_memory_bytes = 0;
  double seconds = 0;
};

// The supernet phase alone: weight-only warm-up, then alternating weight and architecture steps.
// Checkpoints every epoch into run_dir/weights/supernet.pt; `fit(true)` continues exactly.
class SupernetSearch {
 public:
  SupernetSearch(supernet::YoloModel supernet, const data::DetectionSplit& weight_split,
                 const data::DetectionSplit& arch_split, const CostModel& cost,
                 SearchOptions options, std::string run_dir, double target_latency_ms,
                 double target_memory_bytes);
  ~SupernetSearch();
  void fit(bool resume);
  // Called after each epoch's checkpoint (tests stop a run with it).
  void on_epoch_end(std::function<void(const SearchEpoch&)> callback);
  const std::vector<SearchEpoch>& history() const { return history_; }
  supernet::YoloModel& model() { return model_; }
  bool finished() const;

 private:
  struct State;
  void run_epoch(int epoch, SearchEpoch& rec);
  // The prior of search.start_act: `act`'s logit raised by start_logit wherever it is a
  // candidate (given once, when the warm-up ends); check_start throws when it is nowhere one.
  void start_from(supernet::Act act);
  void check_start(supernet::Act act);
  void save_checkpoint(int epoch) const;
  int load_checkpoint();
  std::string checkpoint_path() const;

  supernet::YoloModel model_;
  const data::DetectionSplit& weight_split_;
  const data::DetectionSplit& arch_split_;
  const CostModel& cost_;
  SearchOptions options_;
  std::string run_dir_;
  double target_latency_ms_, target_memory_bytes_;
  std::unique_ptr<State> state_;
  std::vector<SearchEpoch> history_;
  std::string probs_csv_;
  std::function<void(const SearchEpoch&)> callback_;
};

struct SearchHooks {
  std::function<void(const SearchEpoch&)> on_search_epoch;
};

// The whole job of `mixnas search CONFIG`. Returns summary.json's content.
nlohmann::json run_search(const config::Config& cfg, const Measurer& measurer,
                          const std::string& run_dir, bool resume, const SearchHooks& hooks = {});

}  // namespace mixnas::search
