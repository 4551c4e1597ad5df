#include "search/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "datasets/image_cache.h"
#include "datasets/loader.h"
#include "datasets/torch_batch.h"
#include "search/distributed.h"
#include "supernet/loss.h"

namespace mixnas::search {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

void set_torch_threads(int threads) {
  // threads: 0 shares the cores between the processes of this machine.
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  const int n = threads > 0 ? threads : std::max(1, cores / dist::local_world_size());
  if (n > 0 && torch::get_num_threads() != n) torch::set_num_threads(n);
}

double fitness(double map50, double map50_95) {
  return 0.1 * map50 + 0.9 * map50_95;
}

void project_quantizer_steps(supernet::YoloModel& model) {
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters(true)) {
    const std::string& name = p.key();
    if (name.size() >= 5 && name.compare(name.size() - 5, 5, ".step") == 0)
      p.value().clamp_min_(1e-8);
  }
}

TrainOptions TrainOptions::from_config(const config::Config& cfg, const std::string& s) {
  TrainOptions o;
  o.epochs = static_cast<int>(cfg.get_int(s + ".epochs"));
  o.batch = static_cast<int>(cfg.get_int(s + ".batch"));
  o.micro_batch = static_cast<int>(cfg.get_int(s + ".micro_batch"));
  o.imgsz = static_cast<int>(cfg.get_int("imgsz"));
  o.optimizer = cfg.get_string(s + ".optimizer");
  o.lr0 = cfg.get_float(s + ".lr0");
  o.lrf = cfg.get_float(s + ".lrf");
  o.schedule = cfg.get_string(s + ".schedule");
  o.momentum = cfg.get_float(s + ".momentum");
  o.weight_decay = cfg.get_float(s + ".weight_decay");
  o.warmup_epochs = cfg.get_float(s + ".warmup_epochs");
  o.ema = cfg.get_bool(s + ".ema");
  o.workers = static_cast<int>(cfg.get_int(s + ".workers"));
  o.val_every = static_cast<int>(cfg.get_int(s + ".val_every"));
  o.seed = static_cast<uint64_t>(cfg.get_int("seed"));
  o.threads = static_cast<int>(cfg.get_int("threads"));
  o.cache = cfg.get_string("cache") == "ram";
  o.mosaic = cfg.get_float("augment.mosaic");
  o.close_mosaic = static_cast<int>(cfg.get_int("augment.close_mosaic"));
  o.fliplr = cfg.get_float("augment.fliplr");
  o.scale = cfg.get_float("augment.scale");
  o.translate = cfg.get_float("augment.translate");
  o.hsv_h = cfg.get_float("augment.hsv_h");
  o.hsv_s = cfg.get_float("augment.hsv_s");
  o.hsv_v = cfg.get_float("augment.hsv_v");
  o.box = cfg.get_float("loss.box");
  o.cls = cfg.get_float("loss.cls");
  o.dfl = cfg.get_float("loss.dfl");
  o.val_conf = cfg.get_float("val.conf");
  o.val_iou = cfg.get_float("val.iou");
  o.max_det = static_cast<int>(cfg.get_int("val.max_det"));
  o.freeze_bn_epoch = static_cast<int>(cfg.get_int("quant.freeze_bn_epoch"));
  o.quant_start_epoch = static_cast<int>(cfg.get_int("quant.start_epoch"));
  if (o.quant_start_epoch < 0) {
    throw Error(cfg.where("quant.start_epoch").str() +
                ": 'quant.start_epoch' must be 0 or more (0: quantized from the first epoch)");
  }
  if (cfg.schema().find("quant.enabled")) o.qat = cfg.get_bool("quant.enabled");
  auto positive = [&](const std::string& key, double v) {
    if (!(v > 0)) throw Error(cfg.where(key).str() + ": '" + key + "' must be positive");
  };
  positive(s + ".epochs", o.epochs);
  positive(s + ".batch", o.batch);
  positive("imgsz", o.imgsz);
  positive(s + ".lr0", o.lr0);
  if (o.micro_batch < 0) throw Error(cfg.where(s + ".micro_batch").str() + ": must be 0 or more");
  if (o.imgsz % 32 != 0) {
    throw Error(cfg.where("imgsz").str() +
                ": 'imgsz' must be a multiple of 32 (the largest stride)");
  }
  return o;
}

namespace {

std::unique_ptr<supernet::DetectionLoss> make_loss_for(const supernet::YoloModel& model,
                                                       const TrainOptions& o) {
  if (model->anchor_based()) return supernet::make_loss(model);
  supernet::V8LossOptions lo;
  lo.box = o.box;
  lo.cls = o.cls;
  lo.dfl = o.dfl;
  return supernet::make_v8_loss(model->nc(), model->strides(), lo);
}

data::LoaderOptions loader_options(const TrainOptions& o, bool train) {
  data::LoaderOptions lo;
  lo.batch_size = o.batch;
  lo.workers = std::max(1, o.workers);
  lo.shuffle = train;
  lo.augment = train;
  lo.seed = o.seed;
  lo.cache = o.cache;
  if (train) {
    lo.shard = dist::rank();
    lo.shards = dist::world_size();
    lo.aug.imgsz = o.imgsz;
    lo.aug.mosaic = o.mosaic > 0;
    lo.aug.mosaic_prob = o.mosaic;
    lo.aug.flip = o.fliplr > 0;
    lo.aug.fliplr = o.fliplr;
    lo.aug.affine = o.scale > 0 || o.translate > 0;
    lo.aug.scale = o.scale;
    lo.aug.translate = o.translate;
    lo.aug.hsv = o.hsv_h > 0 || o.hsv_s > 0 || o.hsv_v > 0;
    lo.aug.hsv_h = o.hsv_h;
    lo.aug.hsv_s = o.hsv_s;
    lo.aug.hsv_v = o.hsv_v;
  } else {
    lo.aug = data::AugmentOptions::none(o.imgsz);
  }
  return lo;
}

// Copies every parameter and buffer of `from` into `to` (same architecture).
void copy_state(supernet::YoloModel& to, const supernet::YoloModel& from) {
  torch::NoGradGuard no_grad;
  auto dst_p = to->named_parameters(true);
  for (const auto& p : from->named_parameters(true)) dst_p[p.key()].copy_(p.value());
  auto dst_b = to->named_buffers(true);
  for (const auto& b : from->named_buffers(true)) dst_b[b.key()].copy_(b.value());
}

}  // namespace

// ------------------------------------------------------------------ validation

ValResult validate(supernet::YoloModel& model, const data::DetectionSplit& split,
                   const TrainOptions& options, bool with_loss) {
  auto t0 = Clock::now();
  ValResult result;
  bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  data::BatchLoader loader(split, loader_options(options, false));
  loader.start_epoch(0);
  eval::DetectionEvaluator evaluator(split.names());
  std::unique_ptr<supernet::DetectionLoss> loss;
  if (with_loss) loss = make_loss_for(model, options);
  Progress progress("val", loader.batches_per_epoch(), "batch");
  result.detections.resize(split.size());
  data::Batch batch;
  int64_t batches = 0;
  while (loader.next(&batch)) {
    data::TensorBatch tb = data::to_tensors(batch);
    supernet::DetectOutput out = model->forward(tb.images);
    if (loss) {
      supernet::LossItems items = loss->compute(out.raw, tb.targets, batch.height, batch.width);
      result.box_loss += items.box.item<double>();
      result.cls_loss += items.cls.item<double>();
      result.dfl_loss += items.third.item<double>();
    }
    std::vector<supernet::Detections> dets = supernet::non_max_suppression(
        *out.predictions, options.val_conf, options.val_iou, options.max_det);
    for (int i = 0; i < batch.size; ++i) {
      const data::Sample& sample = split.samples()[batch.sample_indices[i]];
      const data::LetterboxInfo& lb = batch.letterbox[i];
      std::vector<eval::EvalBox> gt, dt;
      for (const auto& b : sample.boxes) {
        eval::EvalBox e;
        e.cls = b.cls;
        e.x0 = (b.cx - b.w / 2) * sample.width;
        e.x1 = (b.cx + b.w / 2) * sample.width;
        e.y0 = (b.cy - b.h / 2) * sample.height;
        e.y1 = (b.cy + b.h / 2) * sample.height;
        gt.push_back(e);
      }
      auto boxes = dets[i].boxes.contiguous();
      auto scores = dets[i].scores.contiguous();
      auto classes = dets[i].classes.contiguous();
      int64_t n = boxes.size(0);
      const float* bp = boxes.data_ptr<float>();
      for (int64_t k = 0; k < n; ++k) {
        eval::EvalBox e;
        e.cls = static_cast<int>(classes[k].item<int64_t>());
        e.score = scores[k].item<float>();
        auto to_src_x = [&](float x) {
          return std::clamp((x - lb.pad_x) / lb.scale_x, 0.0f, static_cast<float>(sample.width));
        };
        auto to_src_y = [&](float y) {
          return std::clamp((y - lb.pad_y) / lb.scale_y, 0.0f, static_cast<float>(sample.height));
        };
        e.x0 = to_src_x(bp[k * 4 + 0]);
        e.y0 = to_src_y(bp[k * 4 + 1]);
        e.x1 = to_src_x(bp[k * 4 + 2]);
        e.y1 = to_src_y(bp[k * 4 + 3]);
        dt.push_back(e);
      }
      evaluator.add_image(gt, dt);
      result.detections[batch.sample_indices[i]] = std::move(dt);
    }
    ++batches;
    progress.advance();
  }
  progress.finish();
  if (batches > 0) {
    result.box_loss /= static_cast<double>(batches);
    result.cls_loss /= static_cast<double>(batches);
    result.dfl_loss /= static_cast<double>(batches);
  }
  result.coco = evaluator.evaluate();
  if (was_training) model->train();
  result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return result;
}

// ------------------------------------------------------------------ trainer

namespace {

// Quantization-aware training quantizes from this epoch on (quant.start_epoch; the epochs before
// it train the float model) and folds BN from quant.freeze_bn_epoch on; both no later than the last
// epoch, so the last epoch always trains and validates what export computes, and folding never
// starts before quantization.
int quant_epoch(const TrainOptions& o) {
  return std::min(o.quant_start_epoch, o.epochs - 1);
}
int fold_epoch(const TrainOptions& o) {
  return std::max(quant_epoch(o), std::min(o.freeze_bn_epoch, o.epochs - 1));
}

// Images whose activations calibrate the quantizers when quantization starts after float epochs.
constexpr int64_t kCalibrationImages = 512;

// The EMA model's tensors beside the trained model's, matched by name: floating point ones are
// averaged, the others (BN's num_batches_tracked) copied.
struct EmaPairs {
  std::vector<torch::Tensor> ema_float, model_float, ema_other, model_other;
};

EmaPairs ema_pairs_of(const supernet::YoloModel& ema, const supernet::YoloModel& model) {
  EmaPairs p;
  auto add = [&](const torch::OrderedDict<std::string, torch::Tensor>& e,
                 const torch::OrderedDict<std::string, torch::Tensor>& m) {
    for (const auto& t : e) {
      const torch::Tensor& src = m[t.key()];
      if (t.value().is_floating_point()) {
        p.ema_float.push_back(t.value());
        p.model_float.push_back(src.detach());
      } else {
        p.ema_other.push_back(t.value());
        p.model_other.push_back(src);
      }
    }
  };
  add(ema->named_parameters(true), model->named_parameters(true));
  add(ema->named_buffers(true), model->named_buffers(true));
  return p;
}

// ema = d * ema + (1 - d) * model, in two multi-tensor ops.
void update_ema(const EmaPairs& p, double d) {
  torch::NoGradGuard no_grad;
  if (!p.ema_float.empty()) {
    at::_foreach_mul_(p.ema_float, d);
    at::_foreach_add_(p.ema_float, p.model_float, 1.0 - d);
  }
  for (size_t i = 0; i < p.ema_other.size(); ++i) p.ema_other[i].copy_(p.model_other[i]);
}

}  // namespace

void clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  grads.reserve(params.size());
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return;
  const double total = torch::stack(at::_foreach_norm(grads, 2)).norm(2).item<double>();
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0) at::_foreach_mul_(grads, coef);
}

struct Trainer::State {
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<supernet::DetectionLoss> loss;
  std::unique_ptr<data::BatchLoader> loader;
  std::unique_ptr<dist::GradientSum> grads;
  int micro_batch = 0;  // images per micro-batch on this rank
  supernet::YoloModel ema{nullptr};
  int64_t ema_updates = 0;
  int64_t iteration = 0;  // optimizer steps so far
  bool qat = false;
  // Per group: initial lr, and whether it is the bias group (warm-up starts it high).
  std::vector<double> group_lr;
  std::vector<bool> group_bias;
};

Trainer::Trainer(supernet::YoloModel model, const data::DetectionSplit& train,
                 const data::DetectionSplit& val, TrainOptions options, std::string run_dir)
    : model_(std::move(model)),
      train_(train),
      val_(val),
      options_(std::move(options)),
      run_dir_(std::move(run_dir)),
      state_(std::make_unique<State>()) {
  set_torch_threads(options_.threads);
  torch::manual_seed(static_cast<uint64_t>(options_.seed));
  if (static_cast<int>(train_.names().size()) != model_->nc()) {
    throw Error("the model has " + std::to_string(model_->nc()) + " classes, the dataset " +
                std::to_string(train_.names().size()) + "; set nc in the config or the model YAML");
  }
  State& s = *state_;
  s.qat = options_.qat && supernet::has_quantized_sites(model_);
  s.loss = make_loss_for(model_, options_);
  s.micro_batch = dist::micro_batch_size(options_.batch, options_.micro_batch, "micro_batch");
  s.loader = std::make_unique<data::BatchLoader>(train_, loader_options(options_, true));

  // Groups as ultralytics: 0 = norm weights (no decay), 1 = conv weights (decay), 2 = biases (no
  // decay); and 3 = quantizer steps and offsets (no decay, lr x kQuantLrScale). Architecture
  // logits of a fixed model are not trained.
  std::vector<torch::Tensor> g_norm, g_decay, g_bias, g_quant;
  auto groups0 = model_->param_groups();
  auto arch = groups0.arch;
  auto contains = [](const std::vector<torch::Tensor>& v, const torch::Tensor& t) {
    return std::any_of(v.begin(), v.end(), [&](const torch::Tensor& a) { return a.is_same(t); });
  };
  for (const auto& p : model_->named_parameters(true)) {
    const torch::Tensor& t = p.value();
    if (contains(arch, t)) {
      t.set_requires_grad(false);
      continue;
    }
    if (contains(groups0.quant, t)) {
      g_quant.push_back(t);
      continue;
    }
    const std::string& name = p.key();
    if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0) {
      g_bias.push_back(t);
    } else if (t.dim() <= 1) {
      g_norm.push_back(t);
    } else {
      g_decay.push_back(t);
    }
  }
  if (options_.optimizer == "SGD") {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    auto opt = [&](double wd) {
      return std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(options_.lr0)
                                                            .momentum(options_.momentum)
                                                            .nesterov(true)
                                                            .weight_decay(wd));
    };
    groups.emplace_back(g_norm, opt(0.0));
    groups.emplace_back(g_decay, opt(options_.weight_decay));
    groups.emplace_back(g_bias, opt(0.0));
    groups.emplace_back(g_quant, opt(0.0));
    s.optimizer =
        std::make_unique<torch::optim::SGD>(groups, torch::optim::SGDOptions(options_.lr0));
  } else {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    auto opt = [&](double wd) {
      return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(options_.lr0)
                                                              .betas({options_.momentum, 0.999})
                                                              .weight_decay(wd));
    };
    groups.emplace_back(g_norm, opt(0.0));
    groups.emplace_back(g_decay, opt(options_.weight_decay));
    groups.emplace_back(g_bias, opt(0.0));
    groups.emplace_back(g_quant, opt(0.0));
    s.optimizer =
        std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(options_.lr0));
  }
  s.grads = std::make_unique<dist::GradientSum>(model_->parameters());
  s.group_lr = {options_.lr0, options_.lr0, options_.lr0, options_.lr0 * kQuantLrScale};
  s.group_bias = {false, false, true, false};

  if (options_.ema) {
    s.ema = supernet::YoloModel(model_->spec(), model_->build_options());
    copy_state(s.ema, model_);
    s.ema->eval();
    for (auto& p : s.ema->parameters()) p.set_requires_grad(false);
  }
}

Trainer::~Trainer() = default;

supernet::YoloModel& Trainer::eval_model() {
  return state_->ema ? state_->ema : model_;
}

void Trainer::on_epoch_end(std::function<void(const EpochRecord&)> callback) {
  callback_ = std::move(callback);
}

void Trainer::calibrate_quantizers() {
  State& s = *state_;
  torch::NoGradGuard no_grad;
  data::BatchLoader loader(train_, loader_options(options_, false));
  loader.start_epoch(0);
  const int64_t nb = std::min(loader.batches_per_epoch(),
                              (kCalibrationImages + options_.batch - 1) / options_.batch);
  std::vector<supernet::YoloModel*> models{&model_};
  if (s.ema) models.push_back(&s.ema);
  for (auto* m : models) {
    (*m)->eval();
    (*m)->set_quant_mode(supernet::QuantMode::kObserve);
  }
  Progress progress("calibrating quantizers", nb, "batch");
  data::Batch batch;
  for (int64_t b = 0; b < nb && loader.next(&batch); ++b) {
    data::TensorBatch tb = data::to_tensors(batch);
    for (auto* m : models) (*m)->forward_raw(tb.images);
    progress.advance();
  }
  progress.finish();
  const int calibrated = model_->finish_calibration();
  if (s.ema) s.ema->finish_calibration();
  model_->train();
  log::info("quantization starts: ", calibrated, " activation quantizers calibrated on ",
            std::min<int64_t>(kCalibrationImages, nb * options_.batch),
            " train images, weight steps fitted");
}

void Trainer::train_epoch(int epoch, EpochRecord& rec) {
  State& s = *state_;
  const int64_t nb = s.loader->batches_per_epoch();
  const double nw = std::max(1.0, options_.warmup_epochs * static_cast<double>(nb));
  auto lf = [&](double e) {
    double x = e / options_.epochs;
    if (options_.schedule == "linear") return (1.0 - x) * (1.0 - options_.lrf) + options_.lrf;
    return ((1.0 - std::cos(x * M_PI)) / 2.0) * (options_.lrf - 1.0) + 1.0;
  };
  bool mosaic = options_.mosaic > 0 && epoch < options_.epochs - options_.close_mosaic;
  s.loader->set_mosaic(mosaic);
  s.loader->start_epoch(epoch);
  if (s.qat) {
    const bool folded = epoch >= fold_epoch(options_);
    model_->set_fold_bn(folded);
    if (s.ema) s.ema->set_fold_bn(folded);
    // The switches below also run on a resume at their epoch: last.pt holds the state before them.
    if (epoch == quant_epoch(options_) && options_.quant_start_epoch > 0) {
      calibrate_quantizers();  // fits the weight steps too, to the folded weights when folded
    } else if (epoch == fold_epoch(options_)) {
      model_->fit_weight_steps_to_folded();
      if (s.ema) s.ema->fit_weight_steps_to_folded();
    }
    const auto mode =
        epoch >= quant_epoch(options_) ? supernet::QuantMode::kOn : supernet::QuantMode::kOff;
    model_->set_quant_mode(mode);
    if (s.ema) s.ema->set_quant_mode(mode);
  }
  model_->train();

  Progress progress("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options_.epochs),
                    nb, "batch");
  data::Batch batch;
  StepLoss sums;
  int64_t images = 0;
  // Tensors are looked up once per epoch, not per step (hundreds of small tensors).
  const std::vector<torch::Tensor> params = model_->parameters();
  const EmaPairs ema_pairs = s.ema ? ema_pairs_of(s.ema, model_) : EmaPairs{};
  auto t0 = Clock::now();
  int64_t seen = 0;
  while (s.loader->next(&batch)) {
    // Learning rate and momentum: warm-up ramps, then the schedule (per epoch).
    double it = static_cast<double>(s.iteration);
    auto& groups = s.optimizer->param_groups();
    for (size_t g = 0; g < groups.size(); ++g) {
      double target = s.group_lr[g] * lf(epoch);
      double lr = target;
      if (it < nw) {
        double start = s.group_bias[g] ? 0.1 : 0.0;
        lr = start + (target - start) * (it / nw);
      }
      if (options_.optimizer == "SGD") {
        auto& o = static_cast<torch::optim::SGDOptions&>(groups[g].options());
        o.lr(lr);
        if (it < nw)
          o.momentum(0.8 + (options_.momentum - 0.8) * (it / nw));
        else
          o.momentum(options_.momentum);
      } else {
        static_cast<torch::optim::AdamWOptions&>(groups[g].options()).lr(lr);
      }
    }
    s.optimizer->zero_grad();
    const StepLoss step = backward_batch(
        batch, "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options_.epochs) +
                   ", batch " + std::to_string(++seen) + "/" + std::to_string(nb));
    clip_grad_norm(params, 10.0);
    s.optimizer->step();
    project_quantizer_steps(model_);
    ++s.iteration;
    if (s.ema) {
      ++s.ema_updates;
      double d = 0.9999 * (1.0 - std::exp(-static_cast<double>(s.ema_updates) / 2000.0));
      update_ema(ema_pairs, d);
    }
    sums += step;
    images += batch.size;
    char post[128];
    std::snprintf(post, sizeof post, "box=%.3f cls=%.3f dfl=%.3f", sums.box / sums.micro_batches,
                  sums.cls / sums.micro_batches, sums.dfl / sums.micro_batches);
    progress.set_postfix(post);
    progress.advance();
  }
  progress.finish();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  // The epoch's losses over every rank's micro-batches, and its images.
  torch::Tensor totals =
      torch::tensor({sums.box, sums.cls, sums.dfl, sums.micro_batches, static_cast<double>(images)},
                    torch::kFloat64);
  dist::all_reduce_sum(totals, "the all-reduce of the epoch's losses");
  const double* t = totals.data_ptr<double>();
  rec.epoch = epoch + 1;
  rec.box_loss = t[3] > 0 ? t[0] / t[3] : 0;
  rec.cls_loss = t[3] > 0 ? t[1] / t[3] : 0;
  rec.dfl_loss = t[3] > 0 ? t[2] / t[3] : 0;
  images = static_cast<int64_t>(t[4]);
  auto& groups = s.optimizer->param_groups();
  auto lr_of = [&](size_t g) {
    if (options_.optimizer == "SGD")
      return static_cast<torch::optim::SGDOptions&>(groups[g].options()).lr();
    return static_cast<torch::optim::AdamWOptions&>(groups[g].options()).lr();
  };
  rec.lr0 = lr_of(0);
  rec.lr1 = lr_of(1);
  rec.lr2 = lr_of(2);
  rec.seconds = secs;
  rec.images_per_s = secs > 0 ? static_cast<double>(images) / secs : 0;
}

Trainer::StepLoss& Trainer::StepLoss::operator+=(const StepLoss& o) {
  box += o.box;
  cls += o.cls;
  dfl += o.dfl;
  micro_batches += o.micro_batches;
  return *this;
}

// This rank's share of the global batch, micro-batch by micro-batch; the gradients summed over
// every rank's micro-batches (docs/distributed.md). With one process and no micro_batch, one
// forward and backward of the whole batch, as ever.
Trainer::StepLoss Trainer::backward_batch(const data::Batch& batch, const std::string& where) {
  State& s = *state_;
  StepLoss loss;
  const std::vector<data::Batch> micro_batches = data::split_batch(batch, s.micro_batch);
  if (s.iteration == 0) {
    dist::initialise_like_one_process(
        *model_, [&] { model_->forward_raw(data::to_tensors(micro_batches.at(0)).images); });
  }
  for (const data::Batch& micro : micro_batches) {
    data::TensorBatch tb = data::to_tensors(micro);
    std::vector<torch::Tensor> raw = model_->forward_raw(tb.images);
    supernet::LossItems items = s.loss->compute(raw, tb.targets, micro.height, micro.width);
    supernet::require_finite_loss(items, where);
    items.total.backward();
    s.grads->accumulate();
    loss.box += items.box.item<double>();
    loss.cls += items.cls.item<double>();
    loss.dfl += items.third.item<double>();
    loss.micro_batches += 1;
  }
  s.grads->reduce();
  return loss;
}

double Trainer::allreduce_seconds() const {
  return state_->grads->reduce_seconds();
}

void Trainer::fit(bool resume) {
  const bool main = dist::is_main();  // the rank that validates and writes (docs/distributed.md)
  if (main) fs::create_directories(fs::path(run_dir_) / "weights");
  std::string last = (fs::path(run_dir_) / "weights" / "last.pt").string();
  std::string best = (fs::path(run_dir_) / "weights" / "best.pt").string();
  remove_stale_temporaries(run_dir_);
  remove_stale_temporaries((fs::path(run_dir_) / "weights").string());
  int start = 0;
  if (resume) {
    if (!fs::exists(last)) {
      throw Error(last + " not found: nothing to resume (start without --resume)");
    }
    start = load_checkpoint(last);
    log::info("resuming from ", last, " after epoch ", start, " of ", options_.epochs);
    // results.csv holds exactly the finished epochs.
    if (main) {
      std::string csv = (fs::path(run_dir_) / "results.csv").string();
      fs::remove(csv);
      for (const auto& r : history_) append_csv(r);
    }
  } else if (main) {
    fs::remove(fs::path(run_dir_) / "results.csv");
  }
  dist::broadcast_module(*model_);
  if (state_->ema) dist::broadcast_module(*state_->ema);
  if (start >= options_.epochs) {
    log::info("training already finished (", start, " epochs)");
    return;
  }
  if (options_.cache) {
    log::info("cache: ram, decoded images kept as they are first read (budget ",
              data::ImageCache::process().max_bytes() >> 20, " MiB; `cache: none` turns it off)");
  }
  for (int epoch = start; epoch < options_.epochs; ++epoch) {
    EpochRecord rec;
    train_epoch(epoch, rec);
    dist::average_buffers(*model_);
    if (state_->ema) dist::average_buffers(*state_->ema);
    bool last_epoch = epoch + 1 == options_.epochs;
    bool validate_now =
        last_epoch || (options_.val_every > 0 && (epoch + 1) % options_.val_every == 0);
    if (main && validate_now) {
      if (state_->ema && state_->qat) state_->ema->set_fold_bn(epoch >= fold_epoch(options_));
      ValResult v = validate(eval_model(), val_, options_);
      rec.precision = v.coco.precision;
      rec.recall = v.coco.recall;
      rec.map50 = std::max(0.0, v.coco.map50());
      rec.map50_95 = std::max(0.0, v.coco.map50_95());
      rec.val_box = v.box_loss;
      rec.val_cls = v.cls_loss;
      rec.val_dfl = v.dfl_loss;
      log::info("epoch ", epoch + 1, "/", options_.epochs, ": mAP50=", rec.map50,
                " mAP50-95=", rec.map50_95, " P=", rec.precision, " R=", rec.recall, " (",
                static_cast<int>(rec.images_per_s), " img/s)");
    } else if (!history_.empty()) {
      rec.precision = history_.back().precision;
      rec.recall = history_.back().recall;
      rec.map50 = history_.back().map50;
      rec.map50_95 = history_.back().map50_95;
    }
    history_.push_back(rec);
    double fit = fitness(rec.map50, rec.map50_95);
    // Quantization-aware epochs before BN folding starts validate a model that val and export
    // never see (both fold): such an epoch cannot be best.pt.
    const bool deployable = !state_->qat || epoch >= fold_epoch(options_);
    bool is_best = deployable && fit > best_fitness_;
    if (is_best) best_fitness_ = fit;
    // Checkpoints first: results.csv never lists an epoch that last.pt does not hold.
    if (main) {
      save_checkpoint(last, epoch + 1);
      if (is_best) save_checkpoint(best, epoch + 1);
      append_csv(rec);
    }
    if (callback_) callback_(rec);
  }
}

void Trainer::append_csv(const EpochRecord& r) const {
  std::string path = (fs::path(run_dir_) / "results.csv").string();
  bool fresh = !fs::exists(path);
  std::ostringstream line;
  if (fresh) {
    line << "epoch,train/box_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),"
            "metrics/recall(B),metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss,val/cls_loss,"
            "val/dfl_loss,lr/pg0,lr/pg1,lr/pg2\n";
  }
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "%d,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%.5f,%.6g,%.6g,%.6g\n", r.epoch,
                r.box_loss, r.cls_loss, r.dfl_loss, r.precision, r.recall, r.map50, r.map50_95,
                r.val_box, r.val_cls, r.val_dfl, r.lr0, r.lr1, r.lr2);
  line << buf;
  // Rewritten whole and atomically: a crash leaves the previous complete file.
  std::string old = fresh ? std::string() : read_file(path);
  write_file_atomic(path, old + line.str());
}

void Trainer::save_checkpoint(const std::string& path, int epoch) const {
  torch::serialize::OutputArchive archive;
  supernet::write_checkpoint_model(archive, model_, state_->ema ? &state_->ema : nullptr,
                                   train_.names());
  archive.write("epoch", c10::IValue(static_cast<int64_t>(epoch)));
  archive.write("best_fitness", c10::IValue(best_fitness_));
  archive.write("iteration", c10::IValue(state_->iteration));
  archive.write("ema_updates", c10::IValue(state_->ema_updates));
  torch::serialize::OutputArchive opt_archive;
  state_->optimizer->save(opt_archive);
  archive.write("optimizer", opt_archive);
  std::vector<double> hist;
  for (const auto& r : history_) {
    hist.insert(hist.end(), {double(r.epoch), r.box_loss, r.cls_loss, r.dfl_loss, r.precision,
                             r.recall, r.map50, r.map50_95, r.val_box, r.val_cls, r.val_dfl, r.lr0,
                             r.lr1, r.lr2, r.seconds, r.images_per_s});
  }
  archive.write("history", torch::tensor(hist, torch::kFloat64), /*is_buffer=*/true);
  supernet::save_archive(archive, path);
}

int Trainer::load_checkpoint(const std::string& path) {
  torch::serialize::InputArchive archive;
  supernet::open_archive(archive, path);
  supernet::check_resumable(archive, path, model_, train_.names());
  c10::IValue v;
  archive.read("epoch", v);
  int epoch = static_cast<int>(v.toInt());
  archive.read("best_fitness", v);
  best_fitness_ = v.toDouble();
  archive.read("iteration", v);
  state_->iteration = v.toInt();
  archive.read("ema_updates", v);
  state_->ema_updates = v.toInt();
  supernet::load_weights(archive, "model", model_, path);
  if (state_->ema) supernet::load_weights(archive, "ema", state_->ema, path);
  torch::serialize::InputArchive opt_archive;
  archive.read("optimizer", opt_archive);
  try {
    state_->optimizer->load(opt_archive);
  } catch (const c10::Error& e) {
    throw Error(path + ": its optimizer state does not fit (train.optimizer changed?): " +
                e.what_without_backtrace());
  }
  torch::Tensor hist;
  archive.read("history", hist, /*is_buffer=*/true);
  history_.clear();
  auto h = hist.contiguous();
  const double* d = h.data_ptr<double>();
  for (int64_t i = 0; i + 16 <= h.numel(); i += 16) {
    EpochRecord r;
    r.epoch = static_cast<int>(d[i]);
    r.box_loss = d[i + 1];
    r.cls_loss = d[i + 2];
    r.dfl_loss = d[i + 3];
    r.precision = d[i + 4];
    r.recall = d[i + 5];
    r.map50 = d[i + 6];
    r.map50_95 = d[i + 7];
    r.val_box = d[i + 8];
    r.val_cls = d[i + 9];
    r.val_dfl = d[i + 10];
    r.lr0 = d[i + 11];
    r.lr1 = d[i + 12];
    r.lr2 = d[i + 13];
    r.seconds = d[i + 14];
    r.images_per_s = d[i + 15];
    history_.push_back(r);
  }
  return epoch;
}

}  // namespace mixnas::search
