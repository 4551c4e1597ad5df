// greedy: ActNAS-style layer-by-layer replacement (docs/search.md#greedy). From the reference
// model (start_choices), the sites are visited in model order, as ActNAS replaces "the first
// activation, then the second, ...": at each, every candidate that lowers the predicted latency is
// scored with the proxy (NWOT by default, as ActNAS; or the held-out fitness with the supernet's
// weights), and the fastest whose score stays within search.greedy_tolerance of the start model's
// is kept. The walk stops once the predicted latency meets the budget.
#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>
#include <vector>

#include "core/log.h"
#include "core/text.h"
#include "search/weight_sharing.h"

namespace mixnas::search {
namespace sn = mixnas::supernet;
using text::fmt;

namespace {

class GreedyStrategy final : public SharedSupernetStrategy {
 public:
  std::string name() const override { return "greedy"; }

  SearchResult search(SearchContext& ctx) override {
    const SearchOptions& o = ctx.options;
    SearchResult result;
    const bool nwot = o.greedy_proxy == "nwot";
    result.proxy = nwot ? "NWOT log|det K|" : "held-out fitness";
    SharedSplits splits = train_shared_supernet(ctx, result.history);
    SubnetEvaluator evaluator(ctx.supernet, splits, o);
    auto score = [&](const sn::ArchChoices& c) {
      const double s = nwot ? evaluator.nwot(c) : evaluator.evaluate(c).value();
      result.points.push_back({ctx.cost.latency_ms(c), s, false});
      return s;
    };
    sn::ArchChoices choices = start_choices(ctx);
    const double start_score = score(choices);
    const double floor = start_score - o.greedy_tolerance * std::abs(start_score);
    log::info("greedy: start ", fmt("%.3f", ctx.cost.latency_ms(choices)), " ms, ", result.proxy,
              " ", fmt("%.4f", start_score), " (accepted down to ", fmt("%.4f", floor), ")");
    int replaced = 0;
    for (const CostModel::Site& site : ctx.cost.sites()) {
      if (ctx.cost.latency_ms(choices) <= ctx.target_latency_ms) break;
      if (replace_site(ctx, site, choices, score, floor)) ++replaced;
    }
    if (ctx.cost.latency_ms(choices) > ctx.target_latency_ms) {
      std::mt19937_64 rng(o.train.seed + 23);
      log::warn("greedy: ", replaced, " replacements within the tolerance leave ",
                fmt("%.3f", ctx.cost.latency_ms(choices)),
                " ms; the fastest candidates make up the rest of the budget");
      repair_to_budget(choices, ctx.cost, ctx.target_latency_ms, rng);
    }
    log::info("greedy: ", replaced, " sites replaced, ", evaluator.evaluations(),
              " architectures scored");
    result.found.push_back(found_architecture(ctx, "searched", choices, ctx.target_latency_ms));
    return result;
  }

 private:
  // The fastest candidate of `site` that lowers the latency and scores at least `floor` replaces
  // the current choice. Returns whether one did.
  template <class Score>
  static bool replace_site(const SearchContext& ctx, const CostModel::Site& site,
                           sn::ArchChoices& choices, Score& score, double floor) {
    const double current_ms = ctx.cost.latency_ms(choices);
    sn::ArchChoices trial = choices;
    std::vector<std::pair<double, sn::SiteChoice>> faster;
    for (const sn::SiteChoice& c : site_candidates(site)) {
      trial[site.name] = c;
      const double ms = ctx.cost.latency_ms(trial);
      if (ms < current_ms) faster.push_back({ms, c});
    }
    std::stable_sort(faster.begin(), faster.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::optional<sn::SiteChoice> best;
    double best_ms = current_ms;
    for (const auto& [ms, c] : faster) {
      trial[site.name] = c;
      if (score(trial) < floor) continue;
      best = c;
      best_ms = ms;
      break;
    }
    if (!best) return false;
    log::info("greedy: ", site.name, " ", choices[site.name], " -> ", *best, " (",
              fmt("%.3f", current_ms), " -> ", fmt("%.3f", best_ms), " ms)");
    choices[site.name] = *best;
    return true;
  }
};

}  // namespace

std::unique_ptr<SearchStrategy> make_greedy_strategy() {
  return std::make_unique<GreedyStrategy>();
}

}  // namespace mixnas::search
