#pragma once
// Training of a fixed model (model YAML or arch.yaml): SGD or AdamW with weight-decay groups,
// linear warm-up, cosine or linear schedule, EMA, mosaic closed for the last epochs, and
// quantization-aware training with BN folded before the weight quantizer when the model has bits.
// Every epoch ends with validation (COCO mAP), a results.csv row and atomic checkpoints:
// weights/last.pt and weights/best.pt. `resume` continues from last.pt exactly where it stopped.
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "datasets/dataset.h"
#include "datasets/loader.h"
#include "supernet/model.h"
#include "training/ema.h"
#include "training/optimizer.h"
#include "training/options.h"
#include "training/validate.h"

namespace mixnas::training {

struct EpochRecord {
  int epoch = 0;  // 1-based
  double box_loss = 0, cls_loss = 0, dfl_loss = 0;
  double precision = 0, recall = 0, map50 = 0, map50_95 = 0;
  double val_box = 0, val_cls = 0, val_dfl = 0;
  double lr0 = 0, lr1 = 0, lr2 = 0;
  double seconds = 0;
  double images_per_s = 0;

  // The fields in checkpoint order (training/history.h).
  template <class Visit>
  void visit_fields(Visit&& visit) {
    visit(epoch);
    for (double* field : {&box_loss, &cls_loss, &dfl_loss, &precision, &recall, &map50, &map50_95,
                          &val_box, &val_cls, &val_dfl, &lr0, &lr1, &lr2, &seconds, &images_per_s})
      visit(*field);
  }
};

class Trainer {
 public:
  // `run_dir` receives results.csv and weights/. The splits must outlive the trainer.
  Trainer(supernet::YoloModel model, const data::DetectionSplit& train,
          const data::DetectionSplit& val, TrainOptions options, std::string run_dir);
  ~Trainer();

  // Trains to options.epochs. With `resume`, continues from run_dir/weights/last.pt.
  void fit(bool resume);
  // Called after each epoch (tests use it to stop mid-training).
  void on_epoch_end(std::function<void(const EpochRecord&)> callback);

  supernet::YoloModel& model() { return model_; }
  // The EMA model when enabled (what is validated and saved), else the trained model.
  supernet::YoloModel& eval_model();
  const std::vector<EpochRecord>& history() const { return history_; }
  double best_fitness() const { return best_fitness_; }
  // Seconds spent all-reducing gradients so far (0 in a job of one process).
  double allreduce_seconds() const;

 private:
  struct State;
  struct StepLoss {
    double box = 0, cls = 0, dfl = 0, distill = 0, micro_batches = 0;
    StepLoss& operator+=(const StepLoss& other);
  };
  void make_optimizer_groups();
  void train_epoch(int epoch, EpochRecord& rec);
  void set_quantization(int epoch);
  void set_step_lr(int epoch, double warmup_steps);
  void optimizer_step(const std::vector<torch::Tensor>& params, const EmaPairs& ema_pairs);
  void close_record(int epoch, const StepLoss& sums, int64_t images, double seconds,
                    EpochRecord& rec) const;
  void validate_epoch(int epoch, EpochRecord& rec);
  // Forward and backward of one batch; leaves the step's gradients in the parameters.
  // `where` names the step in the error a non-finite loss throws ("epoch 2/8, batch 17/125").
  StepLoss backward_batch(const data::Batch& batch, const std::string& where);
  // Adds the distillation term of the teacher (options.distill) to `items`.
  void add_distillation(const std::vector<torch::Tensor>& raw, const torch::Tensor& images,
                        supernet::LossItems& items);
  // The switch from float to quantized training: activation ranges observed on the first
  // kCalibrationImages train images (no augmentation), weight steps fitted, on the model and EMA.
  void calibrate_quantizers();
  void save_checkpoint(const std::string& path, int epoch) const;
  int load_checkpoint(const std::string& path);
  void append_csv(const EpochRecord& rec) const;

  supernet::YoloModel model_;
  const data::DetectionSplit& train_;
  const data::DetectionSplit& val_;
  TrainOptions options_;
  std::string run_dir_;
  std::unique_ptr<State> state_;
  std::vector<EpochRecord> history_;
  double best_fitness_ = -1;
  std::function<void(const EpochRecord&)> callback_;
};

// LibTorch intra-op threads: `threads`, or every core when 0 (the config's `threads: 0`).
void set_torch_threads(int threads);

// ultralytics' fitness: 0.1 * mAP50 + 0.9 * mAP50-95.
double fitness(double map50, double map50_95);

}  // namespace mixnas::training
