#pragma once
// The differentiable search of activations and bit-widths (DNAS): the search options of
// `mixnas search`, and the supernet phase, weights and architecture logits trained in alternation
// against the cost model. The whole job around it is search/run_search.h.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "datasets/loader.h"
#include "evaluators/evaluator.h"
#include "evaluators/latency_table.h"
#include "supernet/model.h"
#include "training/options.h"

namespace mixnas::config {
class Config;
}

namespace mixnas::search {

class CostModel;

struct SearchOptions {
  std::string strategy = "dnas";  // dnas | greedy | random | evolution | uniform
  int epochs = 10;
  int warmup_epochs = 3;
  int batch = 16;       // the global batch, over all processes
  int micro_batch = 0;  // 0: each process's whole share (docs/distributed.md)
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
  int start_bits = 0;  // likewise for w_bits and a_bits (0: none)
  double start_logit = 1.0;
  std::string shape = "relu";
  double fraction = 1.0;  // of the train split, for quick runs
  bool finetune = true;   // derive -> finetune -> export -> measure -> baselines -> report
  // Baselines as "act" (at baseline_bits) or "act:bits" (bits: fp32, int8 or searched); named
  // "act" or "act_bits" in the run (baselines/<name>/) and in summary.json (vs_<name>).
  std::vector<std::string> baselines;
  std::string baseline_bits = "fp32";
  int calibrate_n = 6, validate_n = 6;
  double prune_margin = 0.05;    // < 0: no pruning of dominated bit-widths
  std::string lut_cache;         // folder of cached tables; empty: none
  training::TrainOptions train;  // finetune (and loader, augmentation, loss, val) settings
  // finetune.distill naming one of `baselines`: that baseline's index (trained first, it teaches
  // the found models and the other baselines); -1: train.distill is a weights file or empty.
  int teacher_baseline = -1;
  // The rival strategies (search/strategy.h; docs/search.md#strategies).
  std::vector<double> budgets, budgets_ms;  // evolution: further budgets (ratios, ms)
  int front_points = 0;                     // evolution: proxy-front points finetuned besides
  double budget_fill = 0;                   // evolution: winners from [fill x budget, budget]
  int finetune_top = 1;                     // evolution: candidates finetuned per budget
  int samples = 16;                         // random
  int population = 16, generations = 6;     // evolution
  double mutation = 0.1;
  int eval_images = 128;  // held-out images per sub-architecture evaluation
  std::string greedy_proxy = "nwot";
  double greedy_tolerance = 0.02;
  bool sensitivity = false;
  // Not a config key: the weight-sharing strategies train their supernet with warm-up epochs only
  // and set this, so that the warm-up samples one candidate per site per batch (hard Gumbel on
  // equal logits: uniform single-path sampling, as in SPOS) and every sub-architecture is trained
  // as it is later evaluated, alone.
  bool single_path_warmup = false;

  static SearchOptions from_config(const config::Config& cfg);
};

// One baseline of SearchOptions::baselines: its activation, bits policy and name. Throws
// mixnas::Error naming `where` on an unknown activation or bits policy.
struct BaselineSpec {
  supernet::Act act;
  std::string bits;
  std::string name;
  static BaselineSpec parse(const std::string& text, const std::string& default_bits,
                            const std::string& where);
};

// The index in `baselines` of the one that `value` names, as written there or by its name (e.g.
// "silu:int8" or "silu_int8"); -1 when none does.
int find_baseline(const std::vector<std::string>& baselines, const std::string& default_bits,
                  const std::string& value);

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

  // The fields in checkpoint order (training/history.h).
  template <class Visit>
  void visit_fields(Visit&& visit) {
    visit(epoch);
    for (double* field :
         {&tau, &weight_loss, &arch_loss, &expected_latency_ms, &expected_memory_bytes,
          &derived_latency_ms, &derived_memory_bytes, &seconds})
      visit(*field);
  }
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
  void make_weight_optimizer();
  void run_epoch(int epoch, SearchEpoch& rec);
  // The arch mode and temperature of an epoch; returns tau (1 in the warm-up).
  double set_epoch_mode(int epoch);
  double weight_step(const data::Batch& batch, double lr);
  struct ArchStep {
    double detection_loss = 0;  // this rank's share
    double cost = 0, latency_ms = 0, memory_bytes = 0;
  };
  ArchStep arch_step(int epoch, int& arch_round);
  void close_record(SearchEpoch& rec) const;
  // The prior of search.start_act / start_bits: their logits raised by start_logit wherever they
  // are candidates (given once, when the warm-up ends); check_start throws when one is nowhere.
  bool has_start() const { return !options_.start_act.empty() || options_.start_bits > 0; }
  void start_from();
  void check_start();
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

}  // namespace mixnas::search
