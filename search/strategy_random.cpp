// random: search.samples architectures drawn uniformly per site, each moved under the budget
// (repair_to_budget), scored with the supernet's weights on held-out images; the best wins.
#include "core/error.h"
#include "core/log.h"
#include "core/text.h"
#include "search/weight_sharing.h"

namespace mixnas::search {
namespace sn = mixnas::supernet;
using text::fmt;

namespace {

class RandomStrategy final : public SharedSupernetStrategy {
 public:
  std::string name() const override { return "random"; }

  SearchResult search(SearchContext& ctx) override {
    SearchResult result;
    result.proxy = "held-out fitness";
    SharedSplits splits = train_shared_supernet(ctx, result.history);
    SubnetEvaluator evaluator(ctx.supernet, splits, ctx.options);
    std::mt19937_64 rng(ctx.options.train.seed + 17);
    sn::ArchChoices best;
    double best_value = -1e300;
    for (int i = 0; i < ctx.options.samples; ++i) {
      sn::ArchChoices choices = ctx.cost.random_choices(rng());
      if (!repair_to_budget(choices, ctx.cost, ctx.target_latency_ms, rng)) {
        throw Error(
            "search.strategy random: no architecture of the space meets the latency "
            "budget of " +
            fmt("%.3f", ctx.target_latency_ms) +
            " ms (cost.target_latency_ratio / cost.target_latency_ms)");
      }
      const double value = evaluator.evaluate(choices).value();
      result.points.push_back({ctx.cost.latency_ms(choices), value, false});
      log::info("random ", i + 1, "/", ctx.options.samples, ": predicted ",
                fmt("%.3f", result.points.back().predicted_latency_ms), " ms, score ",
                fmt("%.4f", value));
      if (value > best_value) {
        best_value = value;
        best = choices;
      }
    }
    result.found.push_back(found_architecture(ctx, "searched", best, ctx.target_latency_ms));
    return result;
  }
};

}  // namespace

std::unique_ptr<SearchStrategy> make_random_strategy() {
  return std::make_unique<RandomStrategy>();
}

}  // namespace mixnas::search
