#include "search/dnas.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/text.h"
#include "core/version.h"
#include "datasets/loader.h"
#include "datasets/rng.h"
#include "datasets/torch_batch.h"
#include "deploy/export/export.h"
#include "deploy/runtime/version.h"
#include "search/cost.h"
#include "search/lut.h"
#include "search/report.h"
#include "supernet/checkpoint.h"
#include "supernet/loss.h"
#include "training/distributed.h"
#include "training/history.h"
#include "training/optimizer.h"

namespace mixnas::search {
namespace fs = std::filesystem;
namespace sn = mixnas::supernet;
namespace dist = training::dist;
using Clock = std::chrono::steady_clock;
using text::fmt;

namespace {

// finetune.distill: one of `baselines` (as written there or by its name) or a weights file.
void set_teacher(const config::Config& cfg, SearchOptions& o) {
  const std::string value = cfg.get_string("finetune.distill");
  if (value.empty()) return;
  const int i = find_baseline(o.baselines, o.baseline_bits, value);
  if (i >= 0) {
    if (BaselineSpec::parse(o.baselines[size_t(i)], o.baseline_bits, "baselines").bits ==
        "searched")
      throw Error(cfg.where("finetune.distill").str() + ": the baseline '" + value +
                  "' takes the searched bit-widths, so it trains after the search's finetune "
                  "and cannot teach it; name an fp32 or int8 baseline");
    o.teacher_baseline = i;
    o.train.distill.clear();
    return;
  }
  if (!fs::is_regular_file(o.train.distill))
    throw Error(cfg.where("finetune.distill").str() + ": '" + value +
                "' is neither one of `baselines` nor a weights file; name a baseline (e.g. "
                "silu) or give a trained model's best.pt");
}

}  // namespace

SearchOptions SearchOptions::from_config(const config::Config& cfg) {
  SearchOptions o;
  o.strategy = cfg.get_string("search.strategy");
  o.epochs = static_cast<int>(cfg.get_int("search.epochs"));
  o.warmup_epochs = static_cast<int>(cfg.get_int("search.warmup_epochs"));
  o.batch = static_cast<int>(cfg.get_int("search.batch"));
  o.micro_batch = static_cast<int>(cfg.get_int("search.micro_batch"));
  o.lr0 = cfg.get_float("search.lr0");
  o.arch_split = cfg.get_float("search.arch_split");
  o.arch_lr = cfg.get_float("search.arch_lr");
  o.sampling = cfg.get_string("search.sampling");
  o.tau_start = cfg.get_float("search.tau_start");
  o.tau_end = cfg.get_float("search.tau_end");
  o.recompute = cfg.get_bool("search.recompute");
  o.finetune = cfg.get_bool("search.finetune");
  o.lambda_latency = cfg.get_float("cost.lambda_latency");
  o.lambda_memory = cfg.get_float("cost.lambda_memory");
  o.target_latency_ms = cfg.get_float("cost.target_latency_ms");
  o.target_memory_bytes = cfg.get_float("cost.target_memory_bytes");
  o.target_latency_ratio = cfg.get_float("cost.target_latency_ratio");
  o.target_memory_ratio = cfg.get_float("cost.target_memory_ratio");
  o.start_act = cfg.get_string("search.start_act");
  o.start_bits = static_cast<int>(cfg.get_int("search.start_bits"));
  o.start_logit = cfg.get_float("search.start_logit");
  o.shape = cfg.get_string("cost.shape");
  o.calibrate_n = static_cast<int>(cfg.get_int("cost.calibrate_n"));
  o.validate_n = static_cast<int>(cfg.get_int("cost.validate_n"));
  o.prune_margin = cfg.get_float("cost.prune_margin");
  o.lut_cache = cfg.get_string("cost.lut_cache").empty() ? "" : cfg.resolve_path("cost.lut_cache");
  o.fraction = cfg.get_float("fraction");
  o.baselines = cfg.get_string_list("baselines");
  o.baseline_bits = cfg.get_string("baseline_bits");
  o.train = training::TrainOptions::from_config(cfg, "finetune");
  set_teacher(cfg, o);
  o.budgets = cfg.get_float_list("search.budgets");
  o.budgets_ms = cfg.get_float_list("search.budgets_ms");
  o.front_points = static_cast<int>(cfg.get_int("search.front_points"));
  o.budget_fill = cfg.get_float("search.budget_fill");
  o.finetune_top = static_cast<int>(cfg.get_int("search.finetune_top"));
  o.samples = static_cast<int>(cfg.get_int("search.samples"));
  o.population = static_cast<int>(cfg.get_int("search.population"));
  o.generations = static_cast<int>(cfg.get_int("search.generations"));
  o.mutation = cfg.get_float("search.mutation");
  o.eval_images = static_cast<int>(cfg.get_int("search.eval_images"));
  o.greedy_proxy = cfg.get_string("search.greedy_proxy");
  o.greedy_tolerance = cfg.get_float("search.greedy_tolerance");
  o.sensitivity = cfg.get_bool("search.sensitivity");
  auto fail = [&](const std::string& key, const std::string& what) {
    throw Error(cfg.where(key).str() + ": '" + key + "' " + what);
  };
  if (o.epochs < 1) fail("search.epochs", "must be at least 1");
  if (o.warmup_epochs < 0 || o.warmup_epochs >= o.epochs) {
    fail("search.warmup_epochs",
         "must be at least 0 and below search.epochs (architecture steps run after the warm-up)");
  }
  if (o.batch < 1) fail("search.batch", "must be at least 1");
  if (o.micro_batch < 0) fail("search.micro_batch", "must be 0 or more");
  for (double b : o.budgets)
    if (!(b > 0)) fail("search.budgets", "must hold positive fractions of the reference latency");
  for (double b : o.budgets_ms)
    if (!(b > 0)) fail("search.budgets_ms", "must hold positive latencies in ms");
  if (o.front_points < 0) fail("search.front_points", "must not be negative");
  if (!(o.budget_fill >= 0 && o.budget_fill < 1))
    fail("search.budget_fill", "must be a fraction of the budget in [0, 1)");
  if (o.finetune_top < 1) fail("search.finetune_top", "must be at least 1");
  if (o.samples < 1) fail("search.samples", "must be at least 1");
  if (o.population < 2) fail("search.population", "must be at least 2 (crossover needs parents)");
  if (o.generations < 0) fail("search.generations", "must not be negative");
  if (!(o.mutation >= 0 && o.mutation <= 1)) fail("search.mutation", "must be in [0, 1]");
  if (o.eval_images < 1) fail("search.eval_images", "must be at least 1");
  if (o.greedy_tolerance < 0) fail("search.greedy_tolerance", "must not be negative");
  if (!(o.lr0 > 0)) fail("search.lr0", "must be positive");
  if (!(o.arch_split > 0 && o.arch_split < 1)) fail("search.arch_split", "must be in (0, 1)");
  if (!(o.arch_lr > 0)) fail("search.arch_lr", "must be positive");
  if (!(o.tau_start > 0) || !(o.tau_end > 0))
    fail("search.tau_start", "and tau_end must be positive");
  if (o.lambda_latency < 0) fail("cost.lambda_latency", "must not be negative");
  if (o.lambda_memory < 0) fail("cost.lambda_memory", "must not be negative");
  if (o.target_latency_ms < 0) fail("cost.target_latency_ms", "must not be negative");
  if (o.target_memory_bytes < 0) fail("cost.target_memory_bytes", "must not be negative");
  if (!(o.target_latency_ratio > 0)) fail("cost.target_latency_ratio", "must be positive");
  if (!(o.target_memory_ratio > 0)) fail("cost.target_memory_ratio", "must be positive");
  if (!o.start_act.empty())
    sn::parse_act(o.start_act, cfg.where("search.start_act").str() + ": search.start_act");
  if (o.start_bits < 0 || o.start_bits > 32)
    fail("search.start_bits", "must be 0 (none) or a bit-width of search_space.w_bits/a_bits");
  if (o.start_logit < 0) fail("search.start_logit", "must not be negative");
  if (o.calibrate_n < 2) fail("cost.calibrate_n", "must be at least 2 (a line needs two points)");
  if (o.validate_n < 0) fail("cost.validate_n", "must not be negative");
  if (o.prune_margin >= 1) fail("cost.prune_margin", "must be below 1 (a fraction of the time)");
  if (!(o.fraction > 0 && o.fraction <= 1)) fail("fraction", "must be in (0, 1]");
  for (const auto& b : o.baselines) {
    const BaselineSpec spec =
        BaselineSpec::parse(b, o.baseline_bits, cfg.where("baselines").str() + ": baselines");
    if (o.strategy == "uniform" && spec.bits == "searched")
      fail(spec.bits == o.baseline_bits ? "baseline_bits" : "baselines",
           "cannot ask for the searched bits with search.strategy: uniform (nothing is searched)");
  }
  return o;
}

BaselineSpec BaselineSpec::parse(const std::string& text, const std::string& default_bits,
                                 const std::string& where) {
  const size_t colon = text.find(':');
  BaselineSpec b;
  b.act = sn::parse_act(text.substr(0, colon), where);
  b.bits = colon == std::string::npos ? default_bits : text.substr(colon + 1);
  if (b.bits != "fp32" && b.bits != "int8" && b.bits != "searched")
    throw Error(where + ": '" + text + "': bits '" + b.bits +
                "' is not one of fp32, int8, searched (write act or act:bits, e.g. silu:int8)");
  b.name = sn::act_name(b.act) + (colon == std::string::npos ? "" : "_" + b.bits);
  return b;
}

int find_baseline(const std::vector<std::string>& baselines, const std::string& default_bits,
                  const std::string& value) {
  for (size_t i = 0; i < baselines.size(); ++i)
    if (value == baselines[i] ||
        value == BaselineSpec::parse(baselines[i], default_bits, "baselines").name)
      return static_cast<int>(i);
  return -1;
}

double cost_shape(const std::string& shape, double x) {
  if (shape == "linear") return x;
  if (shape == "log") return std::log(std::max(x, 1e-12));
  return std::max(0.0, x - 1.0);
}

torch::Tensor cost_shape(const std::string& shape, const torch::Tensor& x) {
  if (shape == "linear") return x;
  if (shape == "log") return torch::log(torch::clamp_min(x, 1e-12));
  return torch::relu(x - 1.0);
}

// ------------------------------------------------------------------ supernet search

struct SupernetSearch::State {
  std::unique_ptr<torch::optim::Optimizer> weight_opt;  // AdamW
  std::unique_ptr<torch::optim::Adam> arch_opt;
  std::unique_ptr<sn::DetectionLoss> loss;
  std::unique_ptr<data::BatchLoader> weight_loader, arch_loader;
  std::vector<torch::Tensor> arch, others;
  std::unique_ptr<dist::GradientSum> weight_grads, arch_grads;
  int micro_batch = 0;  // images per micro-batch on this rank
  int64_t iteration = 0;
};

namespace {

// The training loader of o.train at the search's batch; mosaic only when `mosaic`.
data::LoaderOptions search_loader_options(const SearchOptions& o, bool mosaic) {
  training::TrainOptions t = o.train;
  t.batch = o.batch;
  data::LoaderOptions lo = training::train_loader_options(t);
  lo.aug.mosaic = mosaic && lo.aug.mosaic;
  return lo;
}

// The Gumbel noise of one micro-batch's forward comes from a generator seeded by the step, the
// micro-batch's index in the global batch and the kind of step: the same draws whichever rank
// computes that micro-batch, and however many ranks there are.
constexpr uint64_t kNoiseStream = 0x474d42ULL;
enum class StepKind : uint64_t { kWeight = 1, kArch = 2 };
void seed_noise(uint64_t seed, int64_t step, int64_t micro, StepKind kind) {
  data::Rng rng = data::Rng::derive(seed ^ kNoiseStream, static_cast<uint64_t>(step),
                                    static_cast<uint64_t>(micro), static_cast<uint64_t>(kind));
  torch::manual_seed(rng.next());
}

// Images in batch `index` of an epoch over `split_size` images (the last batch may be short).
double global_batch_images(size_t split_size, int batch, int64_t index) {
  const int64_t left = static_cast<int64_t>(split_size) - index * batch;
  return static_cast<double>(std::max<int64_t>(1, std::min<int64_t>(batch, left)));
}

void set_requires_grad(const std::vector<torch::Tensor>& ts, bool value) {
  for (const auto& t : ts) const_cast<torch::Tensor&>(t).set_requires_grad(value);
}

const char* kResultsHeader =
    "epoch,tau,train/weight_loss,train/arch_loss,cost/E_latency_ms,cost/E_memory_bytes,"
    "derived/latency_ms,derived/memory_bytes,seconds\n";

std::string results_row(const SearchEpoch& r) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "%d,%.5f,%.5f,%.5f,%.5f,%.1f,%.5f,%.1f,%.2f\n", r.epoch, r.tau,
                r.weight_loss, r.arch_loss, r.expected_latency_ms, r.expected_memory_bytes,
                r.derived_latency_ms, r.derived_memory_bytes, r.seconds);
  return buf;
}

// One probs.csv row per candidate of every searchable site.
std::string probability_rows(int epoch, const sn::YoloModel& model) {
  std::ostringstream out;
  torch::NoGradGuard no_grad;
  for (const auto& s : model->sites()) {
    auto emit = [&](const char* kind, const torch::Tensor& p,
                    const std::vector<std::string>& names) {
      if (names.size() < 2) return;
      auto pc = p.to(torch::kFloat64).contiguous();
      for (size_t i = 0; i < names.size(); ++i) {
        out << epoch << ',' << s.name << ',' << kind << ',' << names[i] << ','
            << fmt("%.6f", pc.data_ptr<double>()[i]) << '\n';
      }
    };
    std::vector<std::string> acts, ws, as;
    for (auto a : s.acts) acts.push_back(sn::act_name(a));
    for (int b : s.w_bits) ws.push_back(std::to_string(b));
    for (int b : s.a_bits) as.push_back(std::to_string(b));
    if (!acts.empty()) emit("act", s.act_probs, acts);
    emit("w_bits", s.w_probs, ws);
    emit("a_bits", s.a_probs, as);
  }
  return out.str();
}

}  // namespace

SupernetSearch::SupernetSearch(sn::YoloModel supernet, const data::DetectionSplit& weight_split,
                               const data::DetectionSplit& arch_split, const CostModel& cost,
                               SearchOptions options, std::string run_dir, double target_latency_ms,
                               double target_memory_bytes)
    : model_(std::move(supernet)),
      weight_split_(weight_split),
      arch_split_(arch_split),
      cost_(cost),
      options_(std::move(options)),
      run_dir_(std::move(run_dir)),
      target_latency_ms_(target_latency_ms),
      target_memory_bytes_(target_memory_bytes),
      state_(std::make_unique<State>()) {
  State& s = *state_;
  s.loss = training::make_detection_loss(model_, options_.train);
  s.weight_loader =
      std::make_unique<data::BatchLoader>(weight_split_, search_loader_options(options_, true));
  // Architecture batches without mosaic: they judge the candidates on whole images.
  s.arch_loader =
      std::make_unique<data::BatchLoader>(arch_split_, search_loader_options(options_, false));
  make_weight_optimizer();
  s.micro_batch =
      dist::micro_batch_size(options_.batch, options_.micro_batch, "search.micro_batch");
  s.weight_grads = std::make_unique<dist::GradientSum>(s.others);
  s.arch_grads = std::make_unique<dist::GradientSum>(s.arch);
  s.arch_opt = std::make_unique<torch::optim::Adam>(
      s.arch, torch::optim::AdamOptions(options_.arch_lr).betas({0.5, 0.999}).weight_decay(0.0));
}

// The weights' AdamW groups: 0 = biases and norm weights (no decay), 1 = conv weights (decay),
// 2 = quantizer steps and offsets (no decay, lr x kQuantLrScale). The architecture logits have
// their own optimizer.
void SupernetSearch::make_weight_optimizer() {
  using training::ParamClass;
  State& s = *state_;
  std::vector<training::ClassifiedParam> params = training::classify_parameters(model_);
  s.arch = training::of_classes(params, {ParamClass::kArch});
  if (s.arch.empty())
    throw Error("the search space leaves no site with two candidates: nothing to search");
  // Fixed parameters (the Detect head's DFL projection) stay out: arch_step turns requires_grad
  // back on for every tensor of s.others, which would train them.
  params.erase(std::remove_if(params.begin(), params.end(),
                              [](const training::ClassifiedParam& p) {
                                return p.cls == ParamClass::kArch || !p.tensor.requires_grad();
                              }),
               params.end());
  s.others = training::of_classes(
      params, {ParamClass::kQuant, ParamClass::kBias, ParamClass::kNorm, ParamClass::kDecay});
  s.weight_opt = training::make_optimizer(
      "AdamW", options_.lr0, options_.train.momentum,
      {{training::of_classes(params, {ParamClass::kBias, ParamClass::kNorm}), 0.0},
       {training::of_classes(params, {ParamClass::kDecay}), options_.train.weight_decay},
       {training::of_classes(params, {ParamClass::kQuant}), 0.0}});
}

SupernetSearch::~SupernetSearch() = default;

void SupernetSearch::on_epoch_end(std::function<void(const SearchEpoch&)> callback) {
  callback_ = std::move(callback);
}

std::string SupernetSearch::checkpoint_path() const {
  return (fs::path(run_dir_) / "weights" / "supernet.pt").string();
}

bool SupernetSearch::finished() const {
  return !history_.empty() && history_.back().epoch >= options_.epochs;
}

// Temperature: exponential from tau_start to tau_end over the architecture epochs. Warm-up
// trains every candidate evenly (softmax of untouched logits = uniform mixture).
double SupernetSearch::set_epoch_mode(int epoch) {
  if (epoch < options_.warmup_epochs) {
    model_->set_arch_mode(
        options_.single_path_warmup ? sn::ArchMode::kHardGumbel : sn::ArchMode::kSoftmax, 1.0);
    return 1.0;
  }
  int n = options_.epochs - options_.warmup_epochs;
  double t = n > 1 ? static_cast<double>(epoch - options_.warmup_epochs) / (n - 1) : 1.0;
  double tau = options_.tau_start * std::pow(options_.tau_end / options_.tau_start, t);
  model_->set_arch_mode(sn::parse_arch_mode(options_.sampling), tau);
  return tau;
}

// Weight step: architecture logits frozen. Returns the detection loss.
double SupernetSearch::weight_step(const data::Batch& batch, double lr) {
  State& s = *state_;
  auto& wgroups = s.weight_opt->param_groups();
  for (size_t g = 0; g < wgroups.size(); ++g)
    wgroups[g].options().set_lr(g == 2 ? lr * training::kQuantLrScale : lr);
  set_requires_grad(s.arch, false);
  s.weight_opt->zero_grad();
  double loss = 0;
  int64_t local = 0;
  const std::vector<data::Batch> micro_batches = data::split_batch(batch, s.micro_batch);
  if (s.iteration == 0) {
    dist::initialise_like_one_process(*model_, [&] {
      seed_noise(options_.train.seed, 0, 0, StepKind::kWeight);
      model_->forward_raw(data::to_tensors(micro_batches.at(0)).images);
    });
  }
  for (const data::Batch& micro : micro_batches) {
    seed_noise(options_.train.seed, s.iteration,
               dist::global_micro_index(options_.batch, s.micro_batch, local++), StepKind::kWeight);
    data::TensorBatch tb = data::to_tensors(micro);
    auto raw = model_->forward_raw(tb.images);
    auto items = s.loss->compute(raw, tb.targets, micro.height, micro.width);
    sn::require_finite_loss(items, "supernet weight step " + std::to_string(s.iteration + 1));
    items.total.backward();
    s.weight_grads->accumulate();
    loss += items.total.item<double>();
  }
  s.weight_grads->reduce();
  training::clip_grad_norm(s.others, 10.0);
  s.weight_opt->step();
  training::project_quantizer_steps(model_);
  set_requires_grad(s.arch, true);
  ++s.iteration;
  return loss;
}

// Architecture step: weights frozen; detection loss on held-out images plus the cost.
SupernetSearch::ArchStep SupernetSearch::arch_step(int epoch, int& arch_round) {
  State& s = *state_;
  data::Batch ab;
  if (!s.arch_loader->next(&ab)) {
    s.arch_loader->start_epoch(epoch * 1000 + (++arch_round));
    s.arch_loader->next(&ab);
  }
  set_requires_grad(s.others, false);
  s.arch_opt->zero_grad();
  ArchStep out;
  // The detection loss per image of the global batch (the loss functions scale by the batch size,
  // as ultralytics' do), so that the lambdas weigh the cost terms the same for any search.batch.
  const double images = global_batch_images(arch_split_.size(), options_.batch, ab.index);
  int64_t local = 0;
  for (const data::Batch& micro : data::split_batch(ab, s.micro_batch)) {
    seed_noise(options_.train.seed, s.iteration,
               dist::global_micro_index(options_.batch, s.micro_batch, local++), StepKind::kArch);
    data::TensorBatch tb = data::to_tensors(micro);
    auto raw = model_->forward_raw(tb.images);
    auto items = s.loss->compute(raw, tb.targets, micro.height, micro.width);
    sn::require_finite_loss(items,
                            "supernet architecture step (epoch " + std::to_string(epoch + 1) + ")");
    torch::Tensor detection = items.total.to(torch::kFloat64) / images;
    detection.backward();
    s.arch_grads->accumulate();
    out.detection_loss += detection.item<double>();
  }
  s.arch_grads->reduce();
  // The cost terms depend on the logits alone: every rank adds the same gradient after the sum.
  torch::Tensor lat = cost_.expected_latency_ms(model_);
  torch::Tensor mem = cost_.expected_memory_bytes(model_);
  torch::Tensor cost = torch::zeros({}, torch::kFloat64);
  if (options_.lambda_latency > 0) {
    cost = cost + options_.lambda_latency * cost_shape(options_.shape, lat / target_latency_ms_);
  }
  if (options_.lambda_memory > 0) {
    cost = cost + options_.lambda_memory * cost_shape(options_.shape, mem / target_memory_bytes_);
  }
  if (cost.requires_grad()) cost.backward();
  s.arch_opt->step();
  set_requires_grad(s.others, true);
  out.cost = cost.item<double>();
  out.latency_ms = lat.item<double>();
  out.memory_bytes = mem.item<double>();
  return out;
}

// The record's costs after the epoch: expected under the probabilities, and of the argmax.
void SupernetSearch::close_record(SearchEpoch& rec) const {
  {
    torch::NoGradGuard no_grad;
    rec.expected_latency_ms = cost_.expected_latency_ms(model_).item<double>();
    rec.expected_memory_bytes = cost_.expected_memory_bytes(model_).item<double>();
  }
  sn::ArchChoices derived = model_->argmax_choices();
  rec.derived_latency_ms = cost_.latency_ms(derived);
  rec.derived_memory_bytes = cost_.memory_bytes(derived);
  log::info("search epoch ", rec.epoch, "/", options_.epochs, ": loss ",
            fmt("%.4f", rec.weight_loss), ", E[latency] ", fmt("%.3f", rec.expected_latency_ms),
            " ms (target ", fmt("%.3f", target_latency_ms_), "), E[memory] ",
            fmt("%.0f", rec.expected_memory_bytes / 1024), " KiB (target ",
            fmt("%.0f", target_memory_bytes_ / 1024), "), argmax ",
            fmt("%.3f", rec.derived_latency_ms), " ms");
}

void SupernetSearch::run_epoch(int epoch, SearchEpoch& rec) {
  State& s = *state_;
  const bool arch_phase = epoch >= options_.warmup_epochs;
  rec.tau = set_epoch_mode(epoch);

  s.weight_loader->start_epoch(epoch);
  const int64_t nb = s.weight_loader->batches_per_epoch();
  const int64_t nb_arch = s.arch_loader->batches_per_epoch();
  // Every architecture batch is seen once per epoch: one architecture step every `every` weight
  // steps.
  const int64_t every = std::max<int64_t>(1, nb / std::max<int64_t>(1, nb_arch));
  int arch_round = 0;
  s.arch_loader->start_epoch(epoch * 1000 + arch_round);
  const double warm_iters = std::max(1.0, std::min(300.0, static_cast<double>(nb)));
  const double lf = training::schedule_factor("cosine", options_.train.lrf, options_.epochs, epoch);

  model_->train();
  Progress progress(std::string(arch_phase ? "search " : "warm-up ") + std::to_string(epoch + 1) +
                        "/" + std::to_string(options_.epochs),
                    nb, "batch");
  data::Batch batch;
  double sum_w = 0, sum_a_detection = 0, sum_a_cost = 0;
  int64_t nw = 0, na = 0;
  ArchStep last;
  auto t0 = Clock::now();
  while (s.weight_loader->next(&batch)) {
    double lr = options_.lr0 * lf;
    if (static_cast<double>(s.iteration) < warm_iters)
      lr *= static_cast<double>(s.iteration + 1) / warm_iters;
    sum_w += weight_step(batch, lr);
    ++nw;
    if (arch_phase && nw % every == 0) {
      last = arch_step(epoch, arch_round);
      sum_a_detection += last.detection_loss;
      sum_a_cost += last.cost;
      ++na;
    }
    std::string post = "loss=" + fmt("%.3f", sum_w / static_cast<double>(nw));
    if (na > 0)
      post += " E[lat]=" + fmt("%.2f", last.latency_ms) +
              "ms E[mem]=" + fmt("%.0f", last.memory_bytes / 1024) + "KiB";
    progress.set_postfix(post);
    progress.advance();
  }
  progress.finish();
  // The losses over every rank's micro-batches (the cost terms are the same on every rank).
  torch::Tensor sums = torch::tensor({sum_w, sum_a_detection}, torch::kFloat64);
  dist::all_reduce_sum(sums, "the all-reduce of the epoch's losses");
  rec.epoch = epoch + 1;
  rec.weight_loss = nw ? sums[0].item<double>() / static_cast<double>(nw) : 0;
  rec.arch_loss = na ? (sums[1].item<double>() + sum_a_cost) / static_cast<double>(na) : 0;
  close_record(rec);
  rec.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
}

void SupernetSearch::save_checkpoint(int epoch) const {
  const State& s = *state_;
  torch::serialize::OutputArchive archive;
  archive.write("format", c10::IValue(std::string("mixnas-search-checkpoint-1")));
  archive.write("epoch", c10::IValue(static_cast<int64_t>(epoch)));
  archive.write("iteration", c10::IValue(s.iteration));
  std::string results = kResultsHeader;
  for (const auto& r : history_) results += results_row(r);
  archive.write("results_csv", c10::IValue(results));
  archive.write("probs_csv", c10::IValue(probs_csv_));
  training::write_history(archive, history_);
  torch::serialize::OutputArchive model_archive, wopt, aopt;
  model_->save(model_archive);
  archive.write("model", model_archive);
  s.weight_opt->save(wopt);
  archive.write("weight_optimizer", wopt);
  s.arch_opt->save(aopt);
  archive.write("arch_optimizer", aopt);
  // The random stream (Gumbel noise) continues exactly after a resume.
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  torch::Tensor rng;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    rng = gen.get_state();
  }
  archive.write("rng", rng, /*is_buffer=*/true);
  sn::save_archive(archive, checkpoint_path());
}

int SupernetSearch::load_checkpoint() {
  const std::string path = checkpoint_path();
  torch::serialize::InputArchive archive;
  sn::open_archive(archive, path, "search checkpoint");
  c10::IValue v;
  if (!archive.try_read("format", v) || !v.isString() ||
      v.toStringRef() != "mixnas-search-checkpoint-1") {
    throw Error(path + ": not a mixnas search checkpoint");
  }
  State& s = *state_;
  archive.read("epoch", v);
  int epoch = static_cast<int>(v.toInt());
  archive.read("iteration", v);
  s.iteration = v.toInt();
  archive.read("probs_csv", v);
  probs_csv_ = v.toStringRef();
  torch::serialize::InputArchive wopt, aopt;
  sn::load_weights(archive, "model", model_, path,
                   "resume with the model and search_space the search was started with, or "
                   "start a new run without --resume");
  archive.read("weight_optimizer", wopt);
  s.weight_opt->load(wopt);
  archive.read("arch_optimizer", aopt);
  s.arch_opt->load(aopt);
  torch::Tensor rng;
  archive.read("rng", rng, /*is_buffer=*/true);
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(rng);
  }
  history_ = training::read_history<SearchEpoch>(archive);
  return epoch;
}

namespace {
// Searchable activation sites with `act` among their candidates, and its index there.
std::vector<std::pair<sn::MixedActivationImpl*, int64_t>> start_sites(sn::YoloModel& model,
                                                                      sn::Act act) {
  std::vector<std::pair<sn::MixedActivationImpl*, int64_t>> out;
  for (const auto& s : model->site_refs()) {
    if (!s.act || !s.act->searchable()) continue;
    const auto& c = s.act->candidates();
    auto it = std::find(c.begin(), c.end(), act);
    if (it != c.end()) out.push_back({s.act, it - c.begin()});
  }
  return out;
}

// The bit-width logits (alpha_w, alpha_a) of searchable convs where `bits` is a candidate, and its
// index there.
std::vector<std::pair<torch::Tensor, int64_t>> start_bit_logits(sn::YoloModel& model, int bits) {
  std::vector<std::pair<torch::Tensor, int64_t>> out;
  const auto add = [&](const torch::Tensor& alpha, const std::vector<int>& candidates) {
    auto it = std::find(candidates.begin(), candidates.end(), bits);
    if (alpha.defined() && it != candidates.end()) out.push_back({alpha, it - candidates.begin()});
  };
  for (const auto& s : model->site_refs()) {
    if (!s.conv) continue;
    add(s.conv->alpha_w, s.conv->w_bits());
    add(s.conv->alpha_a, s.conv->a_bits());
  }
  return out;
}
}  // namespace

void SupernetSearch::check_start() {
  if (!options_.start_act.empty() &&
      start_sites(model_, sn::parse_act(options_.start_act, "search.start_act")).empty()) {
    throw Error("search.start_act: '" + options_.start_act +
                "' is a candidate at no searchable site; name one of search_space.activations");
  }
  if (options_.start_bits > 0 && start_bit_logits(model_, options_.start_bits).empty()) {
    throw Error("search.start_bits: " + std::to_string(options_.start_bits) +
                " is a candidate at no searchable site; name one of search_space.w_bits/a_bits");
  }
}

void SupernetSearch::start_from() {
  torch::NoGradGuard no_grad;
  const double up = options_.start_logit;
  if (!options_.start_act.empty()) {
    auto sites = start_sites(model_, sn::parse_act(options_.start_act, "search.start_act"));
    for (auto& [mixed, index] : sites) mixed->alpha[index] += up;
    log::info("architecture epochs start from ", options_.start_act, " at ", sites.size(),
              " sites (logit +", fmt("%.2f", up), ")");
  }
  if (options_.start_bits > 0) {
    auto logits = start_bit_logits(model_, options_.start_bits);
    for (auto& [alpha, index] : logits) alpha[index] += up;
    log::info("architecture epochs start from ", options_.start_bits, " bits at ", logits.size(),
              " searchable bit-width choices (logit +", fmt("%.2f", up), ")");
  }
}

void SupernetSearch::fit(bool resume) {
  const bool main = dist::is_main();  // the rank that writes (docs/distributed.md)
  if (main) fs::create_directories(fs::path(run_dir_) / "weights");
  if (main) {
    remove_stale_temporaries(run_dir_);
    remove_stale_temporaries((fs::path(run_dir_) / "weights").string());
  }
  const std::string results = (fs::path(run_dir_) / "results.csv").string();
  const std::string probs = (fs::path(run_dir_) / "probs.csv").string();
  int start = 0;
  if (resume && fs::exists(checkpoint_path())) {
    start = load_checkpoint();
    log::info("resuming the search from ", checkpoint_path(), " after epoch ", start, " of ",
              options_.epochs);
  }
  // The start activation's head start is given once, when the warm-up ends (before the first
  // architecture epoch): the warm-up trains every candidate evenly, and the checkpoint written then
  // holds the raised logits, so a resume never gives it twice.
  if (has_start() && start == 0) check_start();
  auto start_if_due = [&](int finished_epochs) {
    if (has_start() && finished_epochs == options_.warmup_epochs) start_from();
  };
  if (start == 0) {
    start_if_due(0);
    probs_csv_ = "epoch,site,kind,candidate,probability\n" + probability_rows(0, model_);
  }
  dist::broadcast_module(*model_);
  auto write_logs = [&] {
    if (!main) return;
    std::string r = kResultsHeader;
    for (const auto& e : history_) r += results_row(e);
    write_file_atomic(results, r);
    write_file_atomic(probs, probs_csv_);
  };
  write_logs();
  for (int epoch = start; epoch < options_.epochs; ++epoch) {
    SearchEpoch rec;
    run_epoch(epoch, rec);
    dist::average_buffers(*model_);
    history_.push_back(rec);
    start_if_due(epoch + 1);
    probs_csv_ += probability_rows(epoch + 1, model_);
    // Checkpoint first: the logs never list an epoch the checkpoint does not hold.
    if (main) save_checkpoint(epoch + 1);
    write_logs();
    if (callback_) callback_(rec);
  }
  model_->set_arch_mode(sn::ArchMode::kFixed);
}

}  // namespace mixnas::search
