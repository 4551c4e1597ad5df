#include "training/options.h"

#include <algorithm>

#include "core/config.h"
#include "core/error.h"
#include "training/distributed.h"

namespace mixnas::training {

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
  o.distill = cfg.resolve_path(s + ".distill");
  o.distill_gain = cfg.get_float(s + ".distill_gain");
  if (!(o.distill_gain >= 0))
    throw Error(cfg.where(s + ".distill_gain").str() + ": '" + s +
                ".distill_gain' must be 0 or more");
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

// What every loader of a training takes from its options: batch, threads, seed and cache.
data::LoaderOptions common_loader_options(const TrainOptions& o) {
  data::LoaderOptions lo;
  lo.batch_size = o.batch;
  lo.workers = std::max(1, o.workers);
  lo.seed = o.seed;
  lo.cache = o.cache;
  return lo;
}

}  // namespace

data::LoaderOptions train_loader_options(const TrainOptions& o) {
  data::LoaderOptions lo = common_loader_options(o);
  lo.shuffle = true;
  lo.augment = true;
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
  return lo;
}

data::LoaderOptions eval_loader_options(const TrainOptions& o) {
  data::LoaderOptions lo = common_loader_options(o);
  lo.shuffle = false;
  lo.augment = false;
  lo.aug = data::AugmentOptions::none(o.imgsz);
  return lo;
}

std::unique_ptr<supernet::DetectionLoss> make_detection_loss(const supernet::YoloModel& model,
                                                             const TrainOptions& o) {
  if (model->anchor_based()) return supernet::make_loss(model);
  supernet::V8LossOptions lo;
  lo.box = o.box;
  lo.cls = o.cls;
  lo.dfl = o.dfl;
  return supernet::make_v8_loss(model->nc(), model->strides(), lo);
}

}  // namespace mixnas::training
