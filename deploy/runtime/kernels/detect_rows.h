#pragma once
// The YOLOv8 Detect decode of a run of cells, shared by the Detect op (ops.h decode_yolov8_level)
// and the conv epilogues that decode the head's last convs straight into the decoded table
// (ConvSink::kDetectBoxes / kDetectScores / kDetectBest): the same float operations, so the same
// bits.
#include <cstdint>

namespace mixnas::rt {

// Cells [cell0, cell0 + n) of a level `width` cells wide; bins of cell i at bins + i * bins_stride
// (4 sides x reg_max DFL logits, reg_max <= 64). Writes per cell [x1, y1, x2, y2] in input pixels
// at out + i * out_stride: anchor point (x + 0.5, y + 0.5), distance per side
// sum_k k * softmax(bins)_k, box = (anchor -+ distance) * stride.
void decode_v8_boxes(const float* bins, int64_t bins_stride, int n, int reg_max, int64_t cell0,
                     int width, float stride, float* out, int64_t out_stride);

// sigmoid of nc logits per cell: cell i's at logits + i * logits_stride, out + i * out_stride.
void decode_v8_scores(const float* logits, int64_t logits_stride, int n, int nc, float* out,
                      int64_t out_stride);

// The index of the largest of nc scores, the lowest on ties (NMS's choice of class per anchor).
inline int best_class(const float* scores, int nc) {
  int best = 0;
  for (int k = 1; k < nc; ++k)
    if (scores[k] > scores[best]) best = k;
  return best;
}

// Per cell only the best class of decode_v8_scores' sigmoids: [score, class] at
// out + i * out_stride (the compact table NMS reads, ops.h nms_best_rows).
void decode_v8_best(const float* logits, int64_t logits_stride, int n, int nc, float* out,
                    int64_t out_stride);

}  // namespace mixnas::rt
