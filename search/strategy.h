#pragma once
// A search strategy: given the supernet, the data, the evaluator and the cost model of one search,
// it returns the fixed architectures it found, each with its predicted cost and the model to
// finetune. run_search (search/run_search.h) runs every strategy through the same phases around
// it, so that their results are comparable.
//
// Implementations (docs/search.md#strategies): dnas (the differentiable supernet search,
// search/dnas.h); uniform (nothing searched: the uniform baselines alone, trained from scratch for
// a whole search's budget); and the weight-sharing rivals over one supernet trained with weights
// only (search/weight_sharing.h): greedy (ActNAS-style layer-by-layer replacement,
// search/strategy_greedy.cpp), random (search/strategy_random.cpp) and evolution (a Pareto front,
// one winner per budget, search/strategy_evolution.cpp). A new strategy implements SearchStrategy
// and adds its name in make_strategy and to the schema's `search.strategy` choices
// (core/schemas.cpp).
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
  double budget_latency_ms = 0;  // the latency budget it was found for
  // Of several candidates for one budget (search.finetune_top), all finetuned and the best by
  // finetuned mAP50-95 kept: the budget's name ("searched", "budget_0.80") and this candidate's
  // rank by the strategy's proxy (1: its best; `name` is then the budget's, else
  // "<budget>-<rank>").
  std::string budget;
  int rank = 1;
};

// One sub-architecture a strategy scored: its predicted latency and proxy score.
struct ProxyPoint {
  double predicted_latency_ms = 0;
  double score = 0;  // the strategy's proxy (held-out fitness with inherited weights, or NWOT)
  bool on_front = false;
};

struct SearchResult {
  // The first is the winner at the config's budget (finetuned into finetune/); the others are
  // winners at further budgets (finetuned into found/<name>/), each budget's candidates in rank
  // order after its first.
  std::vector<FoundArchitecture> found;
  std::vector<SearchEpoch> history;  // for the report's curves; empty when nothing was trained
  std::vector<ProxyPoint> points;    // what a sampling strategy scored (summary.json, the study)
  std::string proxy;                 // what ProxyPoint::score is
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
                                             training::TrainOptions& options) const = 0;
};

// Moves sites of `choices` (DNAS' argmax) off their choice until the predicted latency meets
// `budget_ms`: each step takes the candidate that gives up the least log-probability under the
// supernet's site probabilities (`views`) per millisecond saved. Then the slack the last step
// left is given back: while a site can take a more probable candidate within the budget, the one
// that regains the most log-probability per millisecond spent does. Returns the number of sites
// that differ from `choices` as given; the result is still over the budget only when every site
// is at its fastest candidate. Nothing moves when `choices` meets the budget already.
int repair_by_probability(supernet::ArchChoices& choices,
                          const std::vector<supernet::SiteView>& views, const CostModel& cost,
                          double budget_ms);

// The strategy of `search.strategy`. Throws mixnas::Error naming the known ones.
std::unique_ptr<SearchStrategy> make_strategy(const std::string& name);

// The rivals, each in its own file.
std::unique_ptr<SearchStrategy> make_greedy_strategy();
std::unique_ptr<SearchStrategy> make_random_strategy();
std::unique_ptr<SearchStrategy> make_evolution_strategy();

}  // namespace mixnas::search
