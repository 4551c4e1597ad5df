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
#include "evaluators/coco_eval.h"
#include "supernet/checkpoint.h"
#include "supernet/model.h"

namespace mixnas::config {
class Config;
}

namespace mixnas::search {

struct TrainOptions {
  int epochs = 30;
  int batch = 16;       // the global batch, over all processes
  int micro_batch = 0;  // 0: each process's whole share (docs/distributed.md)
  int imgsz = 160;
  std::string optimizer = "AdamW";
  double lr0 = 0.002, lrf = 0.01;
  std::string schedule = "cosine";
  double momentum = 0.937;
  double weight_decay = 0.0005;
  double warmup_epochs = 1.0;
  bool ema = true;
  int workers = 2;
  int val_every = 1;
  uint64_t seed = 0;
  int threads = 0;    // LibTorch intra-op threads; 0 = all cores
  bool cache = true;  // decoded images kept in RAM (config key `cache`)
  // Augmentation.
  double mosaic = 1.0;
  int close_mosaic = 5;
  double fliplr = 0.5, scale = 0.5, translate = 0.1;
  double hsv_h = 0.015, hsv_s = 0.7, hsv_v = 0.4;
  // Loss gains.
  double box = 7.5, cls = 0.5, dfl = 1.5;
  // Validation.
  double val_conf = 0.001, val_iou = 0.7;
  int max_det = 300;
  // Quantization-aware training.
  bool qat = true;
  int quant_start_epoch = 0;  // epochs before it train the float model (quant.start_epoch)
  int freeze_bn_epoch = 2;

  // From a train config (section "train") or a search config's finetune section ("finetune").
  static TrainOptions from_config(const config::Config& cfg, const std::string& section);
};

struct ValResult {
  eval::CocoEvalResult coco;
  double box_loss = 0, cls_loss = 0, dfl_loss = 0;  // mean per batch on the val split
  double seconds = 0;
  // Per image of the split (its order), the detections in image pixels (mixnas val --save-json).
  std::vector<std::vector<eval::EvalBox>> detections;
};

// Validates `model` on `split` at imgsz (letterbox only), COCO mAP against the split's labels.
ValResult validate(supernet::YoloModel& model, const data::DetectionSplit& split,
                   const TrainOptions& options, bool with_loss = true);

struct EpochRecord {
  int epoch = 0;  // 1-based
  double box_loss = 0, cls_loss = 0, dfl_loss = 0;
  double precision = 0, recall = 0, map50 = 0, map50_95 = 0;
  double val_box = 0, val_cls = 0, val_dfl = 0;
  double lr0 = 0, lr1 = 0, lr2 = 0;
  double seconds = 0;
  double images_per_s = 0;
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
    double box = 0, cls = 0, dfl = 0, micro_batches = 0;
    StepLoss& operator+=(const StepLoss& other);
  };
  void train_epoch(int epoch, EpochRecord& rec);
  // Forward and backward of one batch; leaves the step's gradients in the parameters.
  // `where` names the step in the error a non-finite loss throws ("epoch 2/8, batch 17/125").
  StepLoss backward_batch(const data::Batch& batch, const std::string& where);
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

// Quantizer steps and offsets train in their own optimizer group: no weight decay and a learning
// rate of lr x kQuantLrScale. Adam moves a parameter by about its learning rate per step whatever
// the gradient's size, and a weight step is ~1e-4..1e-2: at the weights' rate it would overshoot
// and turn negative within a few steps.
constexpr double kQuantLrScale = 0.02;
// Keeps every learned step positive after an optimizer step (a projection; LSQ needs s > 0).
void project_quantizer_steps(supernet::YoloModel& model);

// Scales the gradients of `params` so their global L2 norm is at most max_norm, as
// torch::nn::utils::clip_grad_norm_ does, with multi-tensor ops (one call instead of a few per
// tensor: hundreds of small tensors per step).
void clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

// LibTorch intra-op threads: `threads`, or every core when 0 (the config's `threads: 0`).
void set_torch_threads(int threads);

// ultralytics' fitness: 0.1 * mAP50 + 0.9 * mAP50-95.
double fitness(double map50, double map50_95);

}  // namespace mixnas::search
