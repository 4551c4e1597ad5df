// evolution: an evolutionary search over the sub-architectures of one trained supernet
// (docs/search.md#evolution). Fitness is the held-out fitness with the supernet's weights (BN
// recalibrated), cost the latency table's prediction; every architecture ever scored stays in an
// archive, whose Pareto front gives one winner per budget: the config's budget first ("searched"),
// then search.budgets (fractions of the reference latency) and search.budgets_ms.
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "core/text.h"
#include "search/pareto.h"
#include "search/weight_sharing.h"

namespace mixnas::search {
namespace sn = mixnas::supernet;
using text::fmt;

namespace {

struct Budget {
  std::string name;
  double ms = 0;
};

// The config's budget, then the further ones (duplicates dropped).
std::vector<Budget> evolution_budgets(const SearchContext& ctx) {
  std::vector<Budget> out{{"searched", ctx.target_latency_ms}};
  const double reference_ms = ctx.cost.latency_ms(ctx.cost.reference_choices());
  auto add = [&](const std::string& name, double ms) {
    for (const Budget& b : out)
      if (std::abs(b.ms - ms) < 1e-9) return;
    out.push_back({name, ms});
  };
  for (double r : ctx.options.budgets) add("budget_" + fmt("%.2f", r), r * reference_ms);
  for (double ms : ctx.options.budgets_ms) add("budget_" + fmt("%.3f", ms) + "ms", ms);
  return out;
}

class EvolutionStrategy final : public SharedSupernetStrategy {
 public:
  std::string name() const override { return "evolution"; }

  SearchResult search(SearchContext& ctx) override {
    SearchResult result;
    result.proxy = "held-out fitness";
    SharedSplits splits = train_shared_supernet(ctx, result.history);
    SubnetEvaluator evaluator(ctx.supernet, splits, ctx.options);
    budgets_ = evolution_budgets(ctx);
    rng_.seed(ctx.options.train.seed + 29);
    evolve(ctx, evaluator);
    std::vector<CostValue> points;
    for (const Member& m : archive_) points.push_back({m.latency_ms, m.value});
    for (const Member& m : archive_) result.points.push_back({m.latency_ms, m.value, false});
    for (size_t i : pareto_front(points)) result.points[i].on_front = true;
    result.found = winners(ctx, points);
    return result;
  }

 private:
  struct Member {
    sn::ArchChoices choices;
    double latency_ms = 0, value = 0;
  };

  void evolve(SearchContext& ctx, SubnetEvaluator& evaluator) {
    const SearchOptions& o = ctx.options;
    // The start model (the richest, all start_act at start_bits) moved under the loosest budget:
    // random members lie mostly far below it, so without it the loosest budget's band is empty.
    sn::ArchChoices start = start_choices(ctx);
    if (repair(ctx, start, loosest_budget())) add(ctx, evaluator, start);
    for (int k = 0; static_cast<int>(archive_.size()) < o.population && k < 20 * o.population;
         ++k) {
      sn::ArchChoices c = ctx.cost.random_choices(rng_());
      if (repair(ctx, c, k)) add(ctx, evaluator, c);
    }
    if (archive_.size() < 2) {
      throw Error(
          "search.strategy evolution: fewer than 2 architectures of the space meet the "
          "latency budgets (cost.target_latency_ratio, search.budgets)");
    }
    for (int g = 0; g < o.generations; ++g) {
      const std::vector<size_t> parents = select_parents(o.population);
      for (int k = 0; k < o.population; ++k) {
        const Member& a = archive_[parents[rng_() % parents.size()]];
        const Member& b = archive_[parents[rng_() % parents.size()]];
        sn::ArchChoices child = crossover_mutate(ctx, a.choices, b.choices);
        if (repair(ctx, child, k)) add(ctx, evaluator, child);
      }
      log::info("evolution generation ", g + 1, "/", o.generations, ": ", archive_.size(),
                " architectures scored, best ", fmt("%.4f", best_value()));
    }
  }

  int loosest_budget() const {
    int k = 0;
    for (size_t i = 1; i < budgets_.size(); ++i)
      if (budgets_[i].ms > budgets_[size_t(k)].ms) k = static_cast<int>(i);
    return k;
  }

  // Repairs `c` to the k-th budget (cycling), so that every budget gets members.
  bool repair(const SearchContext& ctx, sn::ArchChoices& c, int k) {
    return repair_to_budget(c, ctx.cost, budgets_[size_t(k) % budgets_.size()].ms, rng_);
  }

  void add(const SearchContext& ctx, SubnetEvaluator& evaluator, const sn::ArchChoices& c) {
    if (!seen_.insert(arch_key(c)).second) return;
    archive_.push_back({c, ctx.cost.latency_ms(c), evaluator.evaluate(c).value()});
  }

  // The archive's Pareto front, then the best of the rest by score, up to n.
  std::vector<size_t> select_parents(int n) const {
    std::vector<CostValue> points;
    for (const Member& m : archive_) points.push_back({m.latency_ms, m.value});
    std::vector<size_t> parents = pareto_front(points);
    std::vector<size_t> rest(archive_.size());
    for (size_t i = 0; i < rest.size(); ++i) rest[i] = i;
    std::stable_sort(rest.begin(), rest.end(),
                     [&](size_t a, size_t b) { return archive_[a].value > archive_[b].value; });
    for (size_t i : rest) {
      if (static_cast<int>(parents.size()) >= n) break;
      if (std::find(parents.begin(), parents.end(), i) == parents.end()) parents.push_back(i);
    }
    return parents;
  }

  // Uniform crossover of two parents' per-site choices, then each site mutated to a random
  // candidate with probability search.mutation.
  sn::ArchChoices crossover_mutate(const SearchContext& ctx, const sn::ArchChoices& a,
                                   const sn::ArchChoices& b) {
    std::uniform_real_distribution<double> u(0, 1);
    sn::ArchChoices child;
    for (const CostModel::Site& site : ctx.cost.sites()) {
      child[site.name] = (u(rng_) < 0.5 ? a : b).at(site.name);
      if (u(rng_) < ctx.options.mutation) {
        const auto candidates = site_candidates(site);
        child[site.name] = candidates[rng_() % candidates.size()];
      }
    }
    return child;
  }

  double best_value() const {
    double best = -1e300;
    for (const Member& m : archive_) best = std::max(best, m.value);
    return best;
  }

  // One winner per budget: the best score under it, so that the tighter the budget, the lower or
  // equal the score and the winners lie on the front in order; with search.budget_fill, the best
  // score among the architectures that spend at least that fraction of the budget (the best
  // under it when none does). A budget whose winner is another budget's is finetuned once. With
  // search.finetune_top k, the next k - 1 by score in the same band follow as its candidates.
  std::vector<FoundArchitecture> winners(SearchContext& ctx, const std::vector<CostValue>& points) {
    std::vector<FoundArchitecture> found;
    std::set<size_t> taken;
    for (const Budget& b : budgets_) {
      std::vector<size_t> ranked = ranked_between(points, ctx.options.budget_fill * b.ms, b.ms);
      if (ranked.empty())
        ranked = ranked_between(points, -std::numeric_limits<double>::infinity(), b.ms);
      if (ranked.empty()) {
        log::warn("evolution: no scored architecture meets the budget ", b.name, " (",
                  fmt("%.3f", b.ms), " ms)");
        continue;
      }
      if (taken.count(ranked.front())) {
        log::info("evolution: budget ", b.name, " has the winner of an earlier budget");
        continue;
      }
      int rank = 0;
      for (size_t i : ranked) {
        if (rank == ctx.options.finetune_top) break;
        if (!taken.insert(i).second) continue;
        ++rank;
        const std::string name = rank == 1 ? b.name : b.name + "-" + std::to_string(rank);
        found.push_back(found_architecture(ctx, name, archive_[i].choices, b.ms));
        found.back().budget = b.name;
        found.back().rank = rank;
      }
    }
    if (found.empty() || found.front().name != "searched")
      throw Error("search.strategy evolution: no architecture meets the config's latency budget");
    for (size_t i : front_picks(points, ctx.target_latency_ms, ctx.options.front_points)) {
      if (!taken.insert(i).second) continue;
      const std::string name = "front_" + fmt("%.3f", archive_[i].latency_ms) + "ms";
      found.push_back(found_architecture(ctx, name, archive_[i].choices, ctx.target_latency_ms));
    }
    return found;
  }

  // Up to n points of the proxy front at or under budget_ms, evenly spread in predicted latency
  // from its fastest point to its best one (both included).
  static std::vector<size_t> front_picks(const std::vector<CostValue>& points, double budget_ms,
                                         int n) {
    std::vector<size_t> front;
    for (size_t i : pareto_front(points))
      if (points[i].first <= budget_ms) front.push_back(i);
    std::sort(front.begin(), front.end(),
              [&](size_t a, size_t b) { return points[a].first < points[b].first; });
    if (n <= 0 || front.empty()) return {};
    if (static_cast<int>(front.size()) <= n) return front;
    const double lo = points[front.front()].first, hi = points[front.back()].first;
    std::vector<size_t> picks;
    for (int k = 0; k < n; ++k) {
      const double at = n == 1 ? hi : lo + (hi - lo) * k / (n - 1);
      size_t nearest = front.front();
      for (size_t i : front)
        if (std::abs(points[i].first - at) < std::abs(points[nearest].first - at)) nearest = i;
      if (std::find(picks.begin(), picks.end(), nearest) == picks.end()) picks.push_back(nearest);
    }
    return picks;
  }

  std::vector<Budget> budgets_;
  std::mt19937_64 rng_;
  std::vector<Member> archive_;
  std::set<std::string> seen_;
};

}  // namespace

std::unique_ptr<SearchStrategy> make_evolution_strategy() {
  return std::make_unique<EvolutionStrategy>();
}

}  // namespace mixnas::search
