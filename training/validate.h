#pragma once
// Validation of a model on a split: COCO mAP of its detections against the split's labels, and the
// mean detection loss (what every training epoch ends with, and `mixnas val`).
#include <vector>

#include "datasets/dataset.h"
#include "evaluators/coco_eval.h"
#include "supernet/model.h"
#include "training/options.h"

namespace mixnas::training {

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

}  // namespace mixnas::training
