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
#include "datasets/torch_batch.h"
#include "deploy/export/export.h"
#include "deploy/runtime/version.h"
#include "search/cost.h"
#include "search/lut.h"
#include "search/report.h"
#include "supernet/loss.h"

namespace mixnas::search {
namespace fs = std::filesystem;
namespace sn = mixnas::supernet;
using Clock = std::chrono::steady_clock;
using text::fmt;

SearchOptions SearchOptions::from_config(const config::Config& cfg) {
  SearchOptions o;
  o.strategy = cfg.get_string("search.strategy");
  o.epochs = static_cast<int>(cfg.get_int("search.epochs"));
  o.warmup_epochs = static_cast<int>(cfg.get_int("search.warmup_epochs"));
  o.batch = static_cast<int>(cfg.get_int("search.batch"));
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
  o.start_logit = cfg.get_float("search.start_logit");
  o.shape = cfg.get_string("cost.shape");
  o.calibrate_n = static_cast<int>(cfg.get_int("cost.calibrate_n"));
  o.validate_n = static_cast<int>(cfg.get_int("cost.validate_n"));
  o.prune_margin = cfg.get_float("cost.prune_margin");
  o.lut_cache = cfg.get_string("cost.lut_cache").empty() ? "" : cfg.resolve_path("cost.lut_cache");
  o.fraction = cfg.get_float("fraction");
  o.baselines = cfg.get_string_list("baselines");
  o.baseline_bits = cfg.get_string("baseline_bits");
  o.train = TrainOptions::from_config(cfg, "finetune");
  auto fail = [&](const std::string& key, const std::string& what) {
    throw Error(cfg.where(key).str() + ": '" + key + "' " + what);
  };
  if (o.epochs < 1) fail("search.epochs", "must be at least 1");
  if (o.warmup_epochs < 0 || o.warmup_epochs >= o.epochs) {
    fail("search.warmup_epochs",
         "must be at least 0 and below search.epochs (architecture steps run after the warm-up)");
  }
  if (o.batch < 1) fail("search.batch", "must be at least 1");
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
  if (!o.start_act.empty()) {
    sn::parse_act(o.start_act, cfg.where("search.start_act").str() + ": search.start_act");
    if (o.start_logit < 0) fail("search.start_logit", "must not be negative");
  }
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
  std::unique_ptr<torch::optim::AdamW> weight_opt;
  std::unique_ptr<torch::optim::Adam> arch_opt;
  std::unique_ptr<sn::DetectionLoss> loss;
  std::unique_ptr<data::BatchLoader> weight_loader, arch_loader;
  std::vector<torch::Tensor> arch, others;
  int64_t iteration = 0;
};

namespace {

data::LoaderOptions search_loader_options(const SearchOptions& o, bool mosaic) {
  data::LoaderOptions lo;
  lo.batch_size = o.batch;
  lo.workers = std::max(1, o.train.workers);
  lo.shuffle = true;
  lo.augment = true;
  lo.seed = o.train.seed;
  lo.cache = o.train.cache;
  lo.aug.imgsz = o.train.imgsz;
  lo.aug.mosaic = mosaic && o.train.mosaic > 0;
  lo.aug.mosaic_prob = o.train.mosaic;
  lo.aug.flip = o.train.fliplr > 0;
  lo.aug.fliplr = o.train.fliplr;
  lo.aug.affine = o.train.scale > 0 || o.train.translate > 0;
  lo.aug.scale = o.train.scale;
  lo.aug.translate = o.train.translate;
  lo.aug.hsv = o.train.hsv_h > 0 || o.train.hsv_s > 0 || o.train.hsv_v > 0;
  lo.aug.hsv_h = o.train.hsv_h;
  lo.aug.hsv_s = o.train.hsv_s;
  lo.aug.hsv_v = o.train.hsv_v;
  return lo;
}

std::unique_ptr<sn::DetectionLoss> loss_for(const sn::YoloModel& model, const TrainOptions& o) {
  if (model->anchor_based()) return sn::make_loss(model);
  sn::V8LossOptions lo;
  lo.box = o.box;
  lo.cls = o.cls;
  lo.dfl = o.dfl;
  return sn::make_v8_loss(model->nc(), model->strides(), lo);
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
  s.loss = loss_for(model_, options_.train);
  s.weight_loader =
      std::make_unique<data::BatchLoader>(weight_split_, search_loader_options(options_, true));
  // Architecture batches without mosaic: they judge the candidates on whole images.
  s.arch_loader =
      std::make_unique<data::BatchLoader>(arch_split_, search_loader_options(options_, false));
  sn::ParamGroups groups = model_->param_groups();
  s.arch = groups.arch;
  if (s.arch.empty())
    throw Error("the search space leaves no site with two candidates: nothing to search");
  std::vector<torch::Tensor> decay, no_decay, quant;
  auto contains = [](const std::vector<torch::Tensor>& v, const torch::Tensor& t) {
    return std::any_of(v.begin(), v.end(), [&](const torch::Tensor& a) { return a.is_same(t); });
  };
  for (const auto& p : model_->named_parameters(true)) {
    const torch::Tensor& t = p.value();
    if (contains(s.arch, t)) continue;
    s.others.push_back(t);
    if (contains(groups.quant, t)) {
      quant.push_back(t);
      continue;
    }
    const std::string& name = p.key();
    bool bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
    (t.dim() > 1 && !bias ? decay : no_decay).push_back(t);
  }
  std::vector<torch::optim::OptimizerParamGroup> wg;
  auto wopt = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(options_.lr0)
                                                            .betas({options_.train.momentum, 0.999})
                                                            .weight_decay(wd));
  };
  wg.emplace_back(no_decay, wopt(0.0));
  wg.emplace_back(decay, wopt(options_.train.weight_decay));
  wg.emplace_back(quant, wopt(0.0));
  s.weight_opt =
      std::make_unique<torch::optim::AdamW>(wg, torch::optim::AdamWOptions(options_.lr0));
  s.arch_opt = std::make_unique<torch::optim::Adam>(
      s.arch, torch::optim::AdamOptions(options_.arch_lr).betas({0.5, 0.999}).weight_decay(0.0));
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
    model_->set_arch_mode(sn::ArchMode::kSoftmax, 1.0);
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
  for (size_t g = 0; g < wgroups.size(); ++g) {
    static_cast<torch::optim::AdamWOptions&>(wgroups[g].options())
        .lr(g == 2 ? lr * kQuantLrScale : lr);
  }
  set_requires_grad(s.arch, false);
  data::TensorBatch tb = data::to_tensors(batch);
  auto raw = model_->forward_raw(tb.images);
  auto items = s.loss->compute(raw, tb.targets, batch.height, batch.width);
  sn::require_finite_loss(items, "supernet weight step " + std::to_string(s.iteration + 1));
  s.weight_opt->zero_grad();
  items.total.backward();
  clip_grad_norm(s.others, 10.0);
  s.weight_opt->step();
  project_quantizer_steps(model_);
  set_requires_grad(s.arch, true);
  ++s.iteration;
  return items.total.item<double>();
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
  data::TensorBatch atb = data::to_tensors(ab);
  auto araw = model_->forward_raw(atb.images);
  auto aitems = s.loss->compute(araw, atb.targets, ab.height, ab.width);
  sn::require_finite_loss(aitems,
                          "supernet architecture step (epoch " + std::to_string(epoch + 1) + ")");
  torch::Tensor lat = cost_.expected_latency_ms(model_);
  torch::Tensor mem = cost_.expected_memory_bytes(model_);
  // The detection loss per image (the loss functions scale by the batch size, as ultralytics'
  // do), so that the lambdas weigh the cost terms the same for any search.batch.
  torch::Tensor total = aitems.total.to(torch::kFloat64) /
                        static_cast<double>(std::max<int64_t>(1, atb.images.size(0)));
  if (options_.lambda_latency > 0) {
    total = total + options_.lambda_latency * cost_shape(options_.shape, lat / target_latency_ms_);
  }
  if (options_.lambda_memory > 0) {
    total = total + options_.lambda_memory * cost_shape(options_.shape, mem / target_memory_bytes_);
  }
  s.arch_opt->zero_grad();
  total.backward();
  s.arch_opt->step();
  set_requires_grad(s.others, true);
  return {total.item<double>(), lat.item<double>(), mem.item<double>()};
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
  const double x = static_cast<double>(epoch) / options_.epochs;
  const double lf = ((1.0 - std::cos(x * M_PI)) / 2.0) * (options_.train.lrf - 1.0) + 1.0;

  model_->train();
  Progress progress(std::string(arch_phase ? "search " : "warm-up ") + std::to_string(epoch + 1) +
                        "/" + std::to_string(options_.epochs),
                    nb, "batch");
  data::Batch batch;
  double sum_w = 0, sum_a = 0;
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
      sum_a += last.loss;
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
  rec.epoch = epoch + 1;
  rec.weight_loss = nw ? sum_w / static_cast<double>(nw) : 0;
  rec.arch_loss = na ? sum_a / static_cast<double>(na) : 0;
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
  std::vector<double> hist;
  for (const auto& r : history_) {
    hist.insert(hist.end(),
                {double(r.epoch), r.tau, r.weight_loss, r.arch_loss, r.expected_latency_ms,
                 r.expected_memory_bytes, r.derived_latency_ms, r.derived_memory_bytes, r.seconds});
  }
  archive.write("history", torch::tensor(hist, torch::kFloat64), /*is_buffer=*/true);
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
  torch::serialize::InputArchive model_archive, wopt, aopt;
  archive.read("model", model_archive);
  try {
    model_->load(model_archive);
  } catch (const c10::Error& e) {
    throw Error(path +
                ": the checkpoint does not fit this search's supernet (another model or "
                "search space?): " +
                std::string(e.what_without_backtrace()));
  }
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
  torch::Tensor hist;
  archive.read("history", hist, /*is_buffer=*/true);
  history_.clear();
  auto h = hist.contiguous();
  const double* d = h.data_ptr<double>();
  for (int64_t i = 0; i + 9 <= h.numel(); i += 9) {
    SearchEpoch r;
    r.epoch = static_cast<int>(d[i]);
    r.tau = d[i + 1];
    r.weight_loss = d[i + 2];
    r.arch_loss = d[i + 3];
    r.expected_latency_ms = d[i + 4];
    r.expected_memory_bytes = d[i + 5];
    r.derived_latency_ms = d[i + 6];
    r.derived_memory_bytes = d[i + 7];
    r.seconds = d[i + 8];
    history_.push_back(r);
  }
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
}  // namespace

void SupernetSearch::check_start(sn::Act act) {
  if (start_sites(model_, act).empty()) {
    throw Error("search.start_act: '" + options_.start_act +
                "' is a candidate at no searchable site; name one of search_space.activations");
  }
}

void SupernetSearch::start_from(sn::Act act) {
  torch::NoGradGuard no_grad;
  auto sites = start_sites(model_, act);
  for (auto& [mixed, index] : sites) mixed->alpha[index] += options_.start_logit;
  log::info("architecture epochs start from ", options_.start_act, " at ", sites.size(),
            " sites (logit +", fmt("%.2f", options_.start_logit), ")");
}

void SupernetSearch::fit(bool resume) {
  fs::create_directories(fs::path(run_dir_) / "weights");
  remove_stale_temporaries(run_dir_);
  remove_stale_temporaries((fs::path(run_dir_) / "weights").string());
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
  const bool has_start = !options_.start_act.empty();
  const sn::Act start_act = has_start ? sn::parse_act(options_.start_act, "start_act") : sn::Act{};
  if (has_start && start == 0) check_start(start_act);
  auto start_if_due = [&](int finished_epochs) {
    if (has_start && finished_epochs == options_.warmup_epochs) start_from(start_act);
  };
  if (start == 0) {
    start_if_due(0);
    probs_csv_ = "epoch,site,kind,candidate,probability\n" + probability_rows(0, model_);
  }
  auto write_logs = [&] {
    std::string r = kResultsHeader;
    for (const auto& e : history_) r += results_row(e);
    write_file_atomic(results, r);
    write_file_atomic(probs, probs_csv_);
  };
  write_logs();
  for (int epoch = start; epoch < options_.epochs; ++epoch) {
    SearchEpoch rec;
    run_epoch(epoch, rec);
    history_.push_back(rec);
    start_if_due(epoch + 1);
    probs_csv_ += probability_rows(epoch + 1, model_);
    // Checkpoint first: the logs never list an epoch the checkpoint does not hold.
    save_checkpoint(epoch + 1);
    write_logs();
    if (callback_) callback_(rec);
  }
  model_->set_arch_mode(sn::ArchMode::kFixed);
}

}  // namespace mixnas::search
