#include "search/strategy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "core/text.h"
#include "search/cost.h"
#include "search/weight_sharing.h"

namespace mixnas::search {
namespace sn = mixnas::supernet;
using text::fmt;

namespace {

// log p of one site's choice under the supernet's probabilities (act x w_bits x a_bits); a
// dimension the site does not search adds nothing.
double choice_log_prob(const sn::SiteView& v, const sn::SiteChoice& c) {
  auto term = [](const torch::Tensor& probs, size_t i, size_t n) {
    if (n < 2) return 0.0;
    return std::log(std::max(probs[static_cast<int64_t>(i)].item<double>(), 1e-12));
  };
  auto index = [](const auto& list, const auto& x) {
    return static_cast<size_t>(std::find(list.begin(), list.end(), x) - list.begin());
  };
  double lp = term(v.w_probs, index(v.w_bits, c.w_bits), v.w_bits.size()) +
              term(v.a_probs, index(v.a_bits, c.a_bits), v.a_bits.size());
  if (c.act) lp += term(v.act_probs, index(v.acts, *c.act), v.acts.size());
  return lp;
}

// One step of repair_by_probability: the move of best `score(lp_loss, ms_saved)` among the
// candidates `allowed(trial_ms)` lets (lower is better); false when there is none.
template <class Allowed, class Score>
bool best_move(sn::ArchChoices& choices, double& ms,
               const std::map<std::string, const sn::SiteView*>& by_name, const CostModel& cost,
               Allowed allowed, Score score, std::set<std::string>& changed) {
  double best = std::numeric_limits<double>::infinity(), best_ms = ms;
  const CostModel::Site* best_site = nullptr;
  sn::SiteChoice best_choice;
  for (const CostModel::Site& site : cost.sites()) {
    const auto view = by_name.find(site.name);
    if (view == by_name.end()) continue;
    const sn::SiteChoice current = choices.at(site.name);
    const double lp_current = choice_log_prob(*view->second, current);
    sn::ArchChoices trial = choices;
    for (const sn::SiteChoice& c : site_candidates(site)) {
      trial[site.name] = c;
      const double trial_ms = cost.latency_ms(trial);
      if (!allowed(trial_ms)) continue;
      const double v = score(lp_current - choice_log_prob(*view->second, c), ms - trial_ms);
      if (v < best) best = v, best_ms = trial_ms, best_site = &site, best_choice = c;
    }
  }
  if (!best_site) return false;
  choices[best_site->name] = best_choice;
  changed.insert(best_site->name);
  ms = best_ms;
  return true;
}

}  // namespace

int repair_by_probability(sn::ArchChoices& choices, const std::vector<sn::SiteView>& views,
                          const CostModel& cost, double budget_ms) {
  std::map<std::string, const sn::SiteView*> by_name;
  for (const sn::SiteView& v : views) by_name[v.name] = &v;
  const sn::ArchChoices start = choices;
  std::set<std::string> changed;
  double ms = cost.latency_ms(choices);
  if (ms <= budget_ms) return 0;
  // Down to the budget: the move that gives up the least log-probability per millisecond saved.
  const auto faster = [&](double trial_ms) { return trial_ms < ms; };
  const auto loss_per_ms = [](double loss, double saved) { return std::max(0.0, loss) / saved; };
  while (ms > budget_ms && best_move(choices, ms, by_name, cost, faster, loss_per_ms, changed)) {
  }
  // The last move may save far more than was missing: give the slack back, each step the move to
  // a more probable candidate that stays within the budget and regains the most log-probability
  // per millisecond spent (a move that is also faster first).
  const auto within = [&](double trial_ms) { return trial_ms <= budget_ms; };
  const auto gain_per_ms = [](double loss, double saved) {
    if (!(loss < 0)) return std::numeric_limits<double>::infinity();  // not more probable
    return saved >= 0 ? -1e30 + loss : loss / -saved;                 // loss < 0: gain = -loss
  };
  if (ms <= budget_ms)
    while (best_move(choices, ms, by_name, cost, within, gain_per_ms, changed)) {
    }
  int moved = 0;
  for (const std::string& name : changed) moved += !(choices.at(name) == start.at(name));
  return moved;
}

namespace {

// Weights and architecture logits trained in alternation on the supernet; the argmax per site
// is the found architecture, finetuned from the supernet's weights.
class DnasStrategy final : public SearchStrategy {
 public:
  std::string name() const override { return "dnas"; }

  SearchResult search(SearchContext& ctx) override {
    const SearchOptions& o = ctx.options;
    auto [arch_part, weight_part] = ctx.train.partition(o.arch_split, o.train.seed);
    log::info("search: ", weight_part.size(), " images for weights, ", arch_part.size(),
              " for the architecture");
    // Seeded here, so the table's calibration (measured or cached) does not change the search.
    torch::manual_seed(o.train.seed + 1);
    SupernetSearch search(ctx.supernet, weight_part, arch_part, ctx.cost, o, ctx.run_dir,
                          ctx.target_latency_ms, ctx.target_memory_bytes);
    if (ctx.hooks.on_search_epoch) search.on_epoch_end(ctx.hooks.on_search_epoch);
    search.fit(ctx.resume);

    FoundArchitecture found;
    found.name = "searched";
    found.choices = ctx.supernet->argmax_choices();
    // The budget holds where the latency term is on (lambda_latency 0: latency does not matter).
    if (o.lambda_latency > 0 && ctx.target_latency_ms > 0 &&
        ctx.cost.latency_ms(found.choices) > ctx.target_latency_ms)
      repair_argmax(ctx, found.choices);
    found.predicted_latency_ms = ctx.cost.latency_ms(found.choices);
    found.predicted_memory_bytes = ctx.cost.memory_bytes(found.choices);
    found.budget_latency_ms = ctx.target_latency_ms;
    if (o.finetune) found.model = sn::derive_model(ctx.supernet, found.choices);
    SearchResult result;
    result.found = {found};
    result.history = search.history();
    return result;
  }

  sn::YoloModel baseline_model(const SearchContext& ctx, const sn::ArchChoices& choices,
                               training::TrainOptions&) const override {
    sn::YoloModel supernet = ctx.supernet;  // derive_model reads it through a non-const holder
    return sn::derive_model(supernet, choices);
  }

 private:
  // The expected latency met the target while the argmax does not: the budget is kept by the
  // moves that cost the least probability (repair_by_probability).
  static void repair_argmax(SearchContext& ctx, sn::ArchChoices& choices) {
    torch::NoGradGuard no_grad;
    const double before = ctx.cost.latency_ms(choices);
    const int changed =
        repair_by_probability(choices, ctx.supernet->sites(), ctx.cost, ctx.target_latency_ms);
    const double after = ctx.cost.latency_ms(choices);
    log::info("dnas: the argmax is predicted ", fmt("%.3f", before), " ms, over the budget ",
              fmt("%.3f", ctx.target_latency_ms), " ms; ", changed,
              " sites moved (least probability given up per ms, slack given back): ",
              fmt("%.3f", after), " ms");
    if (after > ctx.target_latency_ms)
      log::warn("dnas: even every site at its fastest candidate is over the latency budget");
  }
};

// Nothing is searched: the baselines alone, each trained from scratch for the budget of a whole
// search (its epochs plus the finetune's), the reference a search must beat.
class UniformStrategy final : public SearchStrategy {
 public:
  std::string name() const override { return "uniform"; }

  SearchResult search(SearchContext&) override { return {}; }

  sn::YoloModel baseline_model(const SearchContext& ctx, const sn::ArchChoices& choices,
                               training::TrainOptions& options) const override {
    torch::manual_seed(ctx.options.train.seed);
    sn::BuildOptions fb;
    fb.nc = static_cast<int>(ctx.supernet->nc());
    fb.choices = choices;
    options.epochs = ctx.options.epochs + ctx.options.train.epochs;
    return sn::YoloModel(ctx.supernet->spec(), fb);
  }
};

}  // namespace

std::unique_ptr<SearchStrategy> make_strategy(const std::string& name) {
  if (name == "dnas") return std::make_unique<DnasStrategy>();
  if (name == "uniform") return std::make_unique<UniformStrategy>();
  if (name == "greedy") return make_greedy_strategy();
  if (name == "random") return make_random_strategy();
  if (name == "evolution") return make_evolution_strategy();
  throw Error("search.strategy: unknown strategy '" + name +
              "' (known: dnas, greedy, random, evolution, uniform)");
}

}  // namespace mixnas::search
