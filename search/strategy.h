#pragma once
// A search strategy: given the supernet, the data, the evaluator and the cost model of one search,
// it returns the fixed architectures it found, each with its predicted cost and the model to
// finetune. run_search (search/run_search.h) runs every strategy through the same phases around
// it, so that their results are comparable.
//
// Implementations: dnas (the differentiable supernet search, search/dnas.h) and uniform (nothing
// searched: the uniform baselines alone, trained from scratch for a whole search's budget). A new
// strategy implements SearchStrategy and adds its name in make_strategy and to the schema's
// `search.strategy` choices (core/schemas.cpp).
#include <memory>
#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "evaluators/evaluator.h"
#include "search/dnas.h"
#include "supernet/model.h"

namespace mixnas::search {

class CostModel;

// Everything a strategy may read. The supernet and cost model are the pruned ones.
struct SearchContext {
  const SearchOptions& options;
  supernet::YoloModel supernet;
  const data::DetectionSplit& train;  // the train split (or its configured fraction)
  const data::DetectionSplit& val;
  const CostModel& cost;
  eval::Evaluator& evaluator;
  std::string run_dir;
  bool resume = false;
  double target_latency_ms = 0, target_memory_bytes = 0;
  const SearchHooks& hooks;
};

// One fixed architecture a strategy found.
struct FoundArchitecture {
  std::string name;  // "searched", or the strategy's own name for several
  supernet::ArchChoices choices;
  supernet::YoloModel model{nullptr};  // the fixed model to finetune (inherited weights)
  double predicted_latency_ms = 0, predicted_memory_bytes = 0;
};

struct SearchResult {
  std::vector<FoundArchitecture> found;
  std::vector<SearchEpoch> history;  // for the report's curves; empty when nothing was trained
};

class SearchStrategy {
 public:
  virtual ~SearchStrategy() = default;
  virtual std::string name() const = 0;
  // Runs the search (resuming a started one when ctx.resume) and returns what it found.
  virtual SearchResult search(SearchContext& ctx) = 0;
  // The model a baseline of `choices` trains, and its training options: a strategy with trained
  // supernet weights hands them on; one without trains from scratch for its whole budget.
  virtual supernet::YoloModel baseline_model(const SearchContext& ctx,
                                             const supernet::ArchChoices& choices,
                                             TrainOptions& options) const = 0;
};

// The strategy of `search.strategy`. Throws mixnas::Error naming the known ones.
std::unique_ptr<SearchStrategy> make_strategy(const std::string& name);

}  // namespace mixnas::search
