#pragma once
// The settings of one training (`mixnas train`, the search's finetune) and what the trainer and
// the supernet search both make of them: the data loaders' options and the detection loss.
#include <cstdint>
#include <memory>
#include <string>

#include "datasets/loader.h"
#include "supernet/loss.h"
#include "supernet/model.h"

namespace mixnas::config {
class Config;
}

namespace mixnas::training {

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
  // Distillation (docs/training.md): the teacher's weights file (empty: none) and the gain of the
  // distillation term (its class and box parts gained by cls and dfl too).
  std::string distill;
  double distill_gain = 1.0;
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

// The training loader: batches of o.batch images (this rank's shard of each), shuffled and
// augmented as `o` says (mosaic while o.mosaic > 0; the loader can close it per epoch).
data::LoaderOptions train_loader_options(const TrainOptions& o);
// An evaluation loader (validation, quantizer calibration, BN statistics): batches of o.batch
// images in the split's order, letterboxed, not augmented.
data::LoaderOptions eval_loader_options(const TrainOptions& o);

// The detection loss of `model`: v8's with the gains of `o`, or the anchor-based model's own.
std::unique_ptr<supernet::DetectionLoss> make_detection_loss(const supernet::YoloModel& model,
                                                             const TrainOptions& o);

}  // namespace mixnas::training
