#include "training/trainer.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "datasets/image_cache.h"
#include "datasets/torch_batch.h"
#include "supernet/checkpoint.h"
#include "training/distributed.h"
#include "training/history.h"

namespace mixnas::training {
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

// The teacher of `distill`: a trained model of the student's head (classes, strides), in eval mode
// as it was validated, its weights frozen.
supernet::YoloModel load_teacher(const std::string& path, const supernet::YoloModel& student) {
  if (student->anchor_based())
    throw Error(
        "distill: distillation is for YOLOv8-style (anchor-free) heads; this model's "
        "head has anchors. Remove distill");
  supernet::YoloModel teacher = supernet::load_trained_model(path).model;
  if (teacher->anchor_based() || teacher->nc() != student->nc() ||
      teacher->strides() != student->strides())
    throw Error("distill: the teacher " + path + " has " + std::to_string(teacher->nc()) +
                " classes and " + std::to_string(teacher->strides().size()) +
                " head levels, the model " + std::to_string(student->nc()) + " and " +
                std::to_string(student->strides().size()) +
                "; give the weights of a detector trained on the same data");
  teacher->eval();
  for (torch::Tensor& p : teacher->parameters()) p.set_requires_grad(false);
  return teacher;
}

}  // namespace

struct Trainer::State {
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<supernet::DetectionLoss> loss;
  std::unique_ptr<data::BatchLoader> loader;
  std::unique_ptr<dist::GradientSum> grads;
  int micro_batch = 0;  // images per micro-batch on this rank
  supernet::YoloModel ema{nullptr};
  supernet::YoloModel teacher{nullptr};  // distill
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
  // The teacher is built (and its initial weights drawn) before the seed, so that the training's
  // random numbers are those of a training without one.
  if (!options_.distill.empty()) {
    state_->teacher = load_teacher(options_.distill, model_);
    log::info("distilling from ", options_.distill, " (gain ", options_.distill_gain, ")");
  }
  torch::manual_seed(static_cast<uint64_t>(options_.seed));
  if (static_cast<int>(train_.names().size()) != model_->nc()) {
    throw Error("the model has " + std::to_string(model_->nc()) + " classes, the dataset " +
                std::to_string(train_.names().size()) + "; set nc in the config or the model YAML");
  }
  State& s = *state_;
  s.qat = options_.qat && supernet::has_quantized_sites(model_);
  s.loss = make_detection_loss(model_, options_);
  s.micro_batch = dist::micro_batch_size(options_.batch, options_.micro_batch, "micro_batch");
  s.loader = std::make_unique<data::BatchLoader>(train_, train_loader_options(options_));
  make_optimizer_groups();
  s.grads = std::make_unique<dist::GradientSum>(model_->parameters());
  if (options_.ema) s.ema = make_ema_model(model_);
}

// Groups as ultralytics: 0 = norm weights (no decay), 1 = conv weights (decay), 2 = biases (no
// decay); and 3 = quantizer steps and offsets (no decay, lr x kQuantLrScale). Architecture logits
// of a fixed model are not trained.
void Trainer::make_optimizer_groups() {
  State& s = *state_;
  const std::vector<ClassifiedParam> params = classify_parameters(model_);
  for (const torch::Tensor& t : of_classes(params, {ParamClass::kArch})) {
    t.set_requires_grad(false);
  }
  s.optimizer = make_optimizer(options_.optimizer, options_.lr0, options_.momentum,
                               {{of_classes(params, {ParamClass::kNorm}), 0.0},
                                {of_classes(params, {ParamClass::kDecay}), options_.weight_decay},
                                {of_classes(params, {ParamClass::kBias}), 0.0},
                                {of_classes(params, {ParamClass::kQuant}), 0.0}});
  s.group_lr = {options_.lr0, options_.lr0, options_.lr0, options_.lr0 * kQuantLrScale};
  s.group_bias = {false, false, true, false};
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
  data::BatchLoader loader(train_, eval_loader_options(options_));
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

// Quantization-aware training's switches at `epoch`: BN folded, quantizers calibrated or weight
// steps refitted where quantization or folding starts, quantizers on or off.
void Trainer::set_quantization(int epoch) {
  State& s = *state_;
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

// Learning rate and momentum of the next step: over the first `warmup_steps` steps the rates ramp
// up from 0 (the bias group's down from 0.1) and SGD's momentum from 0.8; then the schedule.
void Trainer::set_step_lr(int epoch, double warmup_steps) {
  State& s = *state_;
  const double it = static_cast<double>(s.iteration);
  const double factor =
      schedule_factor(options_.schedule, options_.lrf, options_.epochs, static_cast<double>(epoch));
  auto& groups = s.optimizer->param_groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    double target = s.group_lr[g] * factor;
    double lr = target;
    if (it < warmup_steps) {
      double start = s.group_bias[g] ? 0.1 : 0.0;
      lr = start + (target - start) * (it / warmup_steps);
    }
    groups[g].options().set_lr(lr);
    if (options_.optimizer == "SGD") {
      auto& o = static_cast<torch::optim::SGDOptions&>(groups[g].options());
      if (it < warmup_steps)
        o.momentum(0.8 + (options_.momentum - 0.8) * (it / warmup_steps));
      else
        o.momentum(options_.momentum);
    }
  }
}

// After the backward of a step: gradients clipped, the optimizer's step, quantizer steps kept
// positive, the EMA updated.
void Trainer::optimizer_step(const std::vector<torch::Tensor>& params, const EmaPairs& ema_pairs) {
  State& s = *state_;
  clip_grad_norm(params, 10.0);
  s.optimizer->step();
  project_quantizer_steps(model_);
  ++s.iteration;
  if (s.ema) update_ema(ema_pairs, ema_decay(++s.ema_updates));
}

void Trainer::train_epoch(int epoch, EpochRecord& rec) {
  State& s = *state_;
  const int64_t nb = s.loader->batches_per_epoch();
  const double warmup_steps = std::max(1.0, options_.warmup_epochs * static_cast<double>(nb));
  s.loader->set_mosaic(options_.mosaic > 0 && epoch < options_.epochs - options_.close_mosaic);
  s.loader->start_epoch(epoch);
  if (s.qat) set_quantization(epoch);
  model_->train();

  const std::string epoch_name =
      "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options_.epochs);
  Progress progress(epoch_name, nb, "batch");
  data::Batch batch;
  StepLoss sums;
  int64_t images = 0;
  // Tensors are looked up once per epoch, not per step (hundreds of small tensors).
  const std::vector<torch::Tensor> params = model_->parameters();
  const EmaPairs ema_pairs = s.ema ? ema_pairs_of(s.ema, model_) : EmaPairs{};
  auto t0 = Clock::now();
  int64_t seen = 0;
  while (s.loader->next(&batch)) {
    set_step_lr(epoch, warmup_steps);
    s.optimizer->zero_grad();
    sums += backward_batch(
        batch, epoch_name + ", batch " + std::to_string(++seen) + "/" + std::to_string(nb));
    optimizer_step(params, ema_pairs);
    images += batch.size;
    char post[160];
    const int n = std::snprintf(post, sizeof post, "box=%.3f cls=%.3f dfl=%.3f",
                                sums.box / sums.micro_batches, sums.cls / sums.micro_batches,
                                sums.dfl / sums.micro_batches);
    if (s.teacher)
      std::snprintf(post + n, sizeof post - size_t(n), " distill=%.3f",
                    sums.distill / sums.micro_batches);
    progress.set_postfix(post);
    progress.advance();
  }
  progress.finish();
  close_record(epoch, sums, images, std::chrono::duration<double>(Clock::now() - t0).count(), rec);
}

// The epoch's record: its losses over every rank's micro-batches, its images per second, the
// groups' last learning rates.
void Trainer::close_record(int epoch, const StepLoss& sums, int64_t images, double seconds,
                           EpochRecord& rec) const {
  torch::Tensor totals =
      torch::tensor({sums.box, sums.cls, sums.dfl, sums.micro_batches, static_cast<double>(images)},
                    torch::kFloat64);
  dist::all_reduce_sum(totals, "the all-reduce of the epoch's losses");
  const double* t = totals.data_ptr<double>();
  rec.epoch = epoch + 1;
  rec.box_loss = t[3] > 0 ? t[0] / t[3] : 0;
  rec.cls_loss = t[3] > 0 ? t[1] / t[3] : 0;
  rec.dfl_loss = t[3] > 0 ? t[2] / t[3] : 0;
  const auto& groups = state_->optimizer->param_groups();
  rec.lr0 = groups[0].options().get_lr();
  rec.lr1 = groups[1].options().get_lr();
  rec.lr2 = groups[2].options().get_lr();
  rec.seconds = seconds;
  rec.images_per_s = seconds > 0 ? t[4] / seconds : 0;
}

Trainer::StepLoss& Trainer::StepLoss::operator+=(const StepLoss& o) {
  box += o.box;
  cls += o.cls;
  dfl += o.dfl;
  distill += o.distill;
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
    if (s.teacher) add_distillation(raw, tb.images, items);
    supernet::require_finite_loss(items, where);
    items.total.backward();
    s.grads->accumulate();
    loss.box += items.box.item<double>();
    loss.cls += items.cls.item<double>();
    loss.dfl += items.third.item<double>();
    if (items.distill.defined()) loss.distill += items.distill.item<double>();
    loss.micro_batches += 1;
  }
  s.grads->reduce();
  return loss;
}

// The teacher's outputs on the same images pull the student's (supernet::v8_distill_loss).
void Trainer::add_distillation(const std::vector<torch::Tensor>& raw, const torch::Tensor& images,
                               supernet::LossItems& items) {
  std::vector<torch::Tensor> taught;
  {
    torch::NoGradGuard no_grad;
    taught = state_->teacher->forward_raw(images);
  }
  const double gain = options_.distill_gain;
  supernet::DistillItems d = supernet::v8_distill_loss(raw, taught, model_->nc(),
                                                       options_.cls * gain, options_.dfl * gain);
  items.total = items.total + d.total;
  items.distill = d.cls + d.dfl;
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
      validate_epoch(epoch, rec);
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

// Validates the model that is saved (the EMA when on) into `rec`.
void Trainer::validate_epoch(int epoch, EpochRecord& rec) {
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
  write_history(archive, history_);
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
  history_ = read_history<EpochRecord>(archive);
  return epoch;
}

}  // namespace mixnas::training
