#include "training/validate.h"

#include <algorithm>
#include <chrono>

#include "core/progress.h"
#include "datasets/torch_batch.h"

namespace mixnas::training {
namespace {

using Clock = std::chrono::steady_clock;

// The labelled boxes of `sample` in image pixels.
std::vector<eval::EvalBox> ground_truth_boxes(const data::Sample& sample) {
  std::vector<eval::EvalBox> gt;
  for (const auto& b : sample.boxes) {
    eval::EvalBox e;
    e.cls = b.cls;
    e.x0 = (b.cx - b.w / 2) * sample.width;
    e.x1 = (b.cx + b.w / 2) * sample.width;
    e.y0 = (b.cy - b.h / 2) * sample.height;
    e.y1 = (b.cy + b.h / 2) * sample.height;
    gt.push_back(e);
  }
  return gt;
}

// The detections of one letterboxed image, mapped back to the pixels of `sample`.
std::vector<eval::EvalBox> detected_boxes(const supernet::Detections& dets,
                                          const data::Sample& sample,
                                          const data::LetterboxInfo& lb) {
  std::vector<eval::EvalBox> dt;
  auto boxes = dets.boxes.contiguous();
  auto scores = dets.scores.contiguous();
  auto classes = dets.classes.contiguous();
  int64_t n = boxes.size(0);
  const float* bp = boxes.data_ptr<float>();
  auto to_src_x = [&](float x) {
    return std::clamp((x - lb.pad_x) / lb.scale_x, 0.0f, static_cast<float>(sample.width));
  };
  auto to_src_y = [&](float y) {
    return std::clamp((y - lb.pad_y) / lb.scale_y, 0.0f, static_cast<float>(sample.height));
  };
  for (int64_t k = 0; k < n; ++k) {
    eval::EvalBox e;
    e.cls = static_cast<int>(classes[k].item<int64_t>());
    e.score = scores[k].item<float>();
    e.x0 = to_src_x(bp[k * 4 + 0]);
    e.y0 = to_src_y(bp[k * 4 + 1]);
    e.x1 = to_src_x(bp[k * 4 + 2]);
    e.y1 = to_src_y(bp[k * 4 + 3]);
    dt.push_back(e);
  }
  return dt;
}

}  // namespace

ValResult validate(supernet::YoloModel& model, const data::DetectionSplit& split,
                   const TrainOptions& options, bool with_loss) {
  auto t0 = Clock::now();
  ValResult result;
  bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  data::BatchLoader loader(split, eval_loader_options(options));
  loader.start_epoch(0);
  eval::DetectionEvaluator evaluator(split.names());
  std::unique_ptr<supernet::DetectionLoss> loss;
  if (with_loss) loss = make_detection_loss(model, options);
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
      std::vector<eval::EvalBox> dt = detected_boxes(dets[i], sample, batch.letterbox[i]);
      evaluator.add_image(ground_truth_boxes(sample), dt);
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

}  // namespace mixnas::training
