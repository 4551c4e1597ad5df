#include "search/weight_sharing.h"

#include <algorithm>
#include <numeric>
#include <sstream>

#include "core/log.h"
#include "core/text.h"
#include "datasets/loader.h"
#include "datasets/torch_batch.h"
#include "search/nwot.h"
#include "training/trainer.h"
#include "training/validate.h"

namespace mixnas::search {
namespace sn = mixnas::supernet;
using text::fmt;

SharedSplits shared_splits(const SearchContext& ctx) {
  auto [held_out, weights] = ctx.train.partition(ctx.options.arch_split, ctx.options.train.seed);
  return {weights, held_out};
}

SharedSplits train_shared_supernet(SearchContext& ctx, std::vector<SearchEpoch>& history) {
  SearchOptions o = ctx.options;
  o.warmup_epochs = o.epochs;  // weight steps only: no architecture logits are learned
  o.single_path_warmup = true;
  o.start_act.clear();
  SharedSplits splits = shared_splits(ctx);
  log::info("supernet of the weight-sharing search: ", splits.weights.size(),
            " images for weights, ", splits.held_out.size(), " held out to score architectures");
  torch::manual_seed(o.train.seed + 1);
  SupernetSearch search(ctx.supernet, splits.weights, splits.held_out, ctx.cost, o, ctx.run_dir,
                        ctx.target_latency_ms, ctx.target_memory_bytes);
  if (ctx.hooks.on_search_epoch) search.on_epoch_end(ctx.hooks.on_search_epoch);
  search.fit(ctx.resume);
  history = search.history();
  return splits;
}

double SubnetScore::value() const {
  return training::fitness(map50, map50_95) - kLossWeight * loss;
}

namespace {

// The first `n` images of `split` in batches, letterboxed (no augmentation), as float tensors.
std::vector<torch::Tensor> letterboxed_batches(const data::DetectionSplit& split, int64_t n,
                                               const training::TrainOptions& t) {
  data::BatchLoader loader(split, training::eval_loader_options(t));
  loader.start_epoch(0);
  std::vector<torch::Tensor> out;
  data::Batch batch;
  int64_t seen = 0;
  while (seen < n && loader.next(&batch)) {
    out.push_back(data::to_tensors(batch).images);
    seen += batch.size;
  }
  return out;
}

}  // namespace

SubnetEvaluator::SubnetEvaluator(sn::YoloModel supernet, const SharedSplits& splits,
                                 const SearchOptions& options)
    : supernet_(std::move(supernet)), val_options_(options.train) {
  val_options_.batch = options.batch;
  const double share =
      std::min(1.0, static_cast<double>(options.eval_images) /
                        static_cast<double>(std::max<size_t>(1, splits.held_out.size())));
  held_out_ =
      share < 1 ? splits.held_out.partition(share, options.train.seed + 11).first : splits.held_out;
  // BN statistics from as many weight-split images as are scored (at least one batch).
  calibration_ = letterboxed_batches(splits.weights, std::max(options.eval_images, options.batch),
                                     val_options_);
}

void SubnetEvaluator::recalibrate_bn(sn::YoloModel& model) const {
  torch::NoGradGuard no_grad;
  std::vector<std::pair<torch::nn::BatchNorm2dImpl*, c10::optional<double>>> bns;
  for (const auto& m : model->modules(false)) {
    if (auto* bn = dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.get())) {
      bns.push_back({bn, bn->options.momentum()});
      bn->reset_running_stats();
      bn->options.momentum(c10::nullopt);  // a cumulative average over the calibration batches
    }
  }
  model->train();
  for (const auto& images : calibration_) model->forward_raw(images);
  for (auto& [bn, momentum] : bns) bn->options.momentum(momentum);
  model->eval();
}

SubnetScore SubnetEvaluator::evaluate(const sn::ArchChoices& choices) {
  const std::string key = arch_key(choices);
  if (auto it = scores_.find(key); it != scores_.end()) return it->second;
  sn::YoloModel model = sn::derive_model(supernet_, choices);
  recalibrate_bn(model);
  training::ValResult r = training::validate(model, held_out_, val_options_, true);
  SubnetScore s;
  s.map50_95 = std::max(0.0, r.coco.map50_95());  // -1 when nothing could be measured
  s.map50 = std::max(0.0, r.coco.map50());
  s.loss = r.box_loss + r.cls_loss + r.dfl_loss;
  ++evaluations_;
  scores_[key] = s;
  return s;
}

double SubnetEvaluator::nwot(const sn::ArchChoices& choices) {
  const std::string key = arch_key(choices);
  if (auto it = nwot_.find(key); it != nwot_.end()) return it->second;
  sn::YoloModel model = sn::derive_model(supernet_, choices);
  const double score = nwot_score(model, calibration_.front());
  ++evaluations_;
  nwot_[key] = score;
  return score;
}

std::string arch_key(const sn::ArchChoices& choices) {
  std::ostringstream out;
  for (const auto& [site, c] : choices) out << site << ':' << c << ';';
  return out.str();
}

std::vector<sn::SiteChoice> site_candidates(const CostModel::Site& site) {
  std::vector<sn::SiteChoice> out;
  const size_t na = site.has_act ? site.acts.size() : 1;
  for (size_t a = 0; a < na; ++a)
    for (int w : site.w_bits)
      for (int b : site.a_bits) {
        sn::SiteChoice c;
        if (site.has_act) c.act = site.acts[a];
        c.w_bits = w;
        c.a_bits = b;
        out.push_back(c);
      }
  return out;
}

bool repair_to_budget(sn::ArchChoices& choices, const CostModel& cost, double budget_ms,
                      std::mt19937_64& rng) {
  std::vector<size_t> order(cost.sites().size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  for (size_t i : order) {
    if (cost.latency_ms(choices) <= budget_ms) return true;
    const CostModel::Site& site = cost.sites()[i];
    sn::ArchChoices trial = choices;
    sn::SiteChoice fastest = choices[site.name];
    double best = cost.latency_ms(choices);
    for (const sn::SiteChoice& c : site_candidates(site)) {
      trial[site.name] = c;
      const double ms = cost.latency_ms(trial);
      if (ms < best) {
        best = ms;
        fastest = c;
      }
    }
    choices[site.name] = fastest;
  }
  return cost.latency_ms(choices) <= budget_ms;
}

FoundArchitecture found_architecture(SearchContext& ctx, const std::string& name,
                                     const sn::ArchChoices& choices, double budget_ms) {
  FoundArchitecture f;
  f.name = name;
  f.choices = choices;
  f.predicted_latency_ms = ctx.cost.latency_ms(choices);
  f.predicted_memory_bytes = ctx.cost.memory_bytes(choices);
  f.budget_latency_ms = budget_ms;
  if (ctx.options.finetune) f.model = sn::derive_model(ctx.supernet, choices);
  log::info(name, ": predicted ", fmt("%.3f", f.predicted_latency_ms), " ms (budget ",
            fmt("%.3f", budget_ms), " ms)");
  return f;
}

sn::ArchChoices start_choices(const SearchContext& ctx) {
  if (ctx.options.start_act.empty()) return ctx.cost.reference_choices();
  const sn::Act act = sn::parse_act(ctx.options.start_act, "search.start_act");
  return ctx.cost.uniform_choices(act, "int8", {});
}

sn::YoloModel SharedSupernetStrategy::baseline_model(const SearchContext& ctx,
                                                     const sn::ArchChoices& choices,
                                                     training::TrainOptions&) const {
  sn::YoloModel supernet = ctx.supernet;
  return sn::derive_model(supernet, choices);
}

}  // namespace mixnas::search
