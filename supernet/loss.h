#pragma once
// Detection losses of the two head families:
// - YOLOv8 (anchor-free): task-aligned assigner (top-k 10, alpha 0.5, beta 6), BCE on classes,
//   CIoU on boxes, distribution focal loss (reg_max 16); gains box 7.5, cls 0.5, dfl 1.5.
// - YOLOv5 (anchors): shape matching with anchor_t 4, the two neighbour cells, CIoU, objectness
//   with level balance [4, 1, 0.4] and iou targets, BCE classes; gains box 0.05, obj 1.0, cls 0.5
//   scaled as the v5 trainer does (3 / nl, nc / 80, (imgsz / 640)^2).
// Targets: [M, 6] rows (image index, class, cx, cy, w, h) with box coordinates normalised to 0..1.
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "supernet/model.h"

namespace mixnas::supernet {

struct LossItems {
  torch::Tensor total;            // what to backpropagate: (sum of the gained parts) * batch size
  torch::Tensor box, cls, third;  // third: dfl (v8) or obj (v5); gained, detached
  torch::Tensor distill;  // the distillation term when a teacher adds one (gained, detached)
};

// Throws mixnas::Error when the loss is NaN or infinite, so that training stops before its
// gradients reach the weights (and so a checkpoint). `where` ("epoch 3/30, batch 5/12") names the
// step in the message.
void require_finite_loss(const LossItems& items, const std::string& where);

class DetectionLoss {
 public:
  virtual ~DetectionLoss() = default;
  // raw: the model's training outputs; image_h/w: input size in pixels.
  virtual LossItems compute(const std::vector<torch::Tensor>& raw, const torch::Tensor& targets,
                            int64_t image_h, int64_t image_w) const = 0;
};

struct V8LossOptions {
  double box = 7.5, cls = 0.5, dfl = 1.5;
  int64_t topk = 10;
  double alpha = 0.5, beta = 6.0;
};
struct V5LossOptions {
  double box = 0.05, obj = 1.0, cls = 0.5, anchor_t = 4.0;
  std::vector<double> balance = {4.0, 1.0, 0.4};
};

std::unique_ptr<DetectionLoss> make_v8_loss(int64_t nc, std::vector<double> strides,
                                            V8LossOptions options = {});
std::unique_ptr<DetectionLoss> make_v5_loss(int64_t nc, std::vector<double> strides,
                                            torch::Tensor anchors_px, V5LossOptions options = {});
// The loss matching the model's head.
std::unique_ptr<DetectionLoss> make_loss(const YoloModel& model);

// Distillation of a YOLOv8 head (a teacher's raw outputs pulling the student's, anchor by anchor;
// docs/training.md "mixnas train", distillation). With p = sigmoid(teacher class logits) and w =
// max over classes of p per anchor:
// - classes: binary cross-entropy of the student's logits against p, less p's own entropy (so 0
//   where the two agree), summed over anchors and classes;
// - boxes: per side, KL(softmax(teacher bins) || softmax(student bins)) over the reg_max bins,
//   averaged over the four sides, times w, summed over anchors;
// each normalised by max(sum of w, 1), gained by `cls_gain` and `dfl_gain`, and the sum times the
// batch size (as the detection loss). Both lists: one [B, 4 * reg_max + nc, H, W] tensor per level,
// the teacher's detached. Throws mixnas::Error when the two heads' outputs differ in shape.
struct DistillItems {
  torch::Tensor total;     // to backpropagate
  torch::Tensor cls, dfl;  // gained, detached, before the batch-size factor
};
DistillItems v8_distill_loss(const std::vector<torch::Tensor>& student,
                             const std::vector<torch::Tensor>& teacher, int64_t nc, double cls_gain,
                             double dfl_gain);

// CIoU of boxes (xyxy, broadcasting over leading dimensions); returns [..].
torch::Tensor bbox_ciou(const torch::Tensor& box1, const torch::Tensor& box2);
torch::Tensor xywh_to_xyxy(const torch::Tensor& xywh);

// The YOLOv8 task-aligned assignment, exposed for tests.
struct Assignment {
  torch::Tensor target_bboxes;  // [B, A, 4] xyxy, pixels
  torch::Tensor target_scores;  // [B, A, nc]
  torch::Tensor fg_mask;        // [B, A] bool
};
Assignment task_aligned_assign(const torch::Tensor& pd_scores, const torch::Tensor& pd_bboxes,
                               const torch::Tensor& anchor_points, const torch::Tensor& gt_labels,
                               const torch::Tensor& gt_bboxes, const torch::Tensor& mask_gt,
                               int64_t nc, int64_t topk, double alpha, double beta);

// Per-image detections after decoding and NMS.
struct Detections {
  torch::Tensor boxes;    // [N, 4] xyxy pixels
  torch::Tensor scores;   // [N]
  torch::Tensor classes;  // [N] int64
};
// Greedy class-aware NMS (agnostic = one class) over decoded predictions; best class per box.
std::vector<Detections> non_max_suppression(const Predictions& predictions,
                                            double conf_threshold = 0.25,
                                            double iou_threshold = 0.45, int64_t max_det = 300,
                                            bool agnostic = false);

}  // namespace mixnas::supernet
