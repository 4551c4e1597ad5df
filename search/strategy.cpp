#include "search/strategy.h"

#include "core/error.h"
#include "core/log.h"
#include "search/cost.h"

namespace mixnas::search {
namespace sn = mixnas::supernet;

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
