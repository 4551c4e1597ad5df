#pragma once
// The YOLOv8 Detect decode of a run of cells, shared by the Detect op (ops.h decode_yolov8_level)
// and the conv epilogues that decode the head's last convs straight into the decoded table
// (ConvSink::kDetectBoxes / kDetectScores): the same float operations, so the same bits.
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

}  // namespace mixnas::rt
