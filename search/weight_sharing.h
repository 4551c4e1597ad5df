#pragma once
// What the weight-sharing strategies (greedy, random, evolution) and the sensitivity analysis
// share: one supernet trained with weight steps only, sub-architectures scored with its weights
// (BN recalibrated, held-out images), and moves in the space of per-site choices under a latency
// budget predicted by the latency table.
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "search/cost.h"
#include "search/strategy.h"
#include "supernet/model.h"

namespace mixnas::search {

// The train split as the weight-sharing strategies use it: `weights` trains the supernet,
// `held_out` (search.arch_split of it) scores sub-architectures.
struct SharedSplits {
  data::DetectionSplit weights, held_out;
};

// The partition of ctx.train that the supernet phase uses (the DNAS one too: same fraction, same
// seed), so that sub-architectures are scored on images the weights were not trained on.
SharedSplits shared_splits(const SearchContext& ctx);

// Trains ctx.supernet for search.epochs with weight steps only, one uniformly sampled candidate
// per site per batch (SearchOptions::single_path_warmup; no architecture logits are learned),
// checkpointed and resumable as the DNAS supernet phase is. Returns the splits it used.
SharedSplits train_shared_supernet(SearchContext& ctx, std::vector<SearchEpoch>& history);

// How good a sub-architecture is with the supernet's weights.
struct SubnetScore {
  double map50_95 = 0, map50 = 0;
  double loss = 0;  // mean detection loss (box + cls + dfl) per held-out batch
  // fitness(map50, map50_95) - kLossWeight * loss: the held-out fitness, and with equal mAP
  // (0 early in training) the lower loss first.
  double value() const;
  static constexpr double kLossWeight = 1e-3;
};

// Scores fixed sub-architectures of a trained supernet: each is derived with the supernet's
// weights (derive_model), its BN statistics recomputed on a few weight-split batches, and
// validated on search.eval_images held-out images. Scores are cached per architecture.
class SubnetEvaluator {
 public:
  SubnetEvaluator(supernet::YoloModel supernet, const SharedSplits& splits,
                  const SearchOptions& options);
  SubnetScore evaluate(const supernet::ArchChoices& choices);
  // The NWOT score (search/nwot.h) of the sub-architecture on one weight-split batch.
  double nwot(const supernet::ArchChoices& choices);
  int evaluations() const { return evaluations_; }

 private:
  void recalibrate_bn(supernet::YoloModel& model) const;

  supernet::YoloModel supernet_;
  data::DetectionSplit held_out_;
  training::TrainOptions val_options_;
  std::vector<torch::Tensor> calibration_;  // letterboxed weight-split batches
  std::map<std::string, SubnetScore> scores_;
  std::map<std::string, double> nwot_;
  int evaluations_ = 0;
};

// A canonical text of per-site choices (cache and duplicate key).
std::string arch_key(const supernet::ArchChoices& choices);

// Every candidate (activation, w_bits, a_bits) of one site.
std::vector<supernet::SiteChoice> site_candidates(const CostModel::Site& site);

// Visits the sites in a random order, giving each its fastest candidate in the table, until the
// predicted latency is at most `budget_ms`. Returns false when even then it is over the budget.
bool repair_to_budget(supernet::ArchChoices& choices, const CostModel& cost, double budget_ms,
                      std::mt19937_64& rng);

// The found architecture of `choices`, its model derived from the supernet when finetuning.
FoundArchitecture found_architecture(SearchContext& ctx, const std::string& name,
                                     const supernet::ArchChoices& choices, double budget_ms);

// The reference the greedy search and the sensitivity analysis start from: every site at
// search.start_act (the reference model's slowest activation when empty) and int8 where 8 bits
// are candidates.
supernet::ArchChoices start_choices(const SearchContext& ctx);

// The weight-sharing strategies' common part: baselines derived from the trained supernet.
class SharedSupernetStrategy : public SearchStrategy {
 public:
  supernet::YoloModel baseline_model(const SearchContext& ctx, const supernet::ArchChoices& choices,
                                     training::TrainOptions& options) const override;
};

}  // namespace mixnas::search
