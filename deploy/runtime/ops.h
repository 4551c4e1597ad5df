#pragma once
// The runtime's non-conv ops as plain functions over NHWC buffers (batch 1), plus detection
// decode, NMS and letterbox preprocessing. The executor (session.cpp) calls them; tests check
// them against hand-worked answers. Layout ops are templates over the element type: uint8_t
// codes (exact when all tensors share one grid, docs/numerics.md) or float.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "deploy/runtime/graph.h"

namespace mixnas::rt {

// q = clamp(round_half_even(x / scale) + zero_point, 0, 2^bits - 1) (docs/numerics.md).
uint8_t quantize_value(float x, const Grid& grid);
void quantize(const float* x, size_t n, const Grid& grid, uint8_t* out, int threads);
// x = scale * (q - zero_point).
void dequantize(const uint8_t* q, size_t n, const Grid& grid, float* out, int threads);

void add_f32(const float* a, const float* b, size_t n, float* out, int threads);

// Channel concat of `inputs` ([pixels, channels[i]] each) into out [pixels, sum channels].
template <typename T>
void concat_channels(const std::vector<const T*>& inputs, const std::vector<int>& channels,
                     int64_t pixels, T* out, int threads);
// Channel split of x [pixels, sum channels] into outputs [pixels, channels[i]].
template <typename T>
void split_channels(const T* x, const std::vector<int>& channels, int64_t pixels,
                    const std::vector<T*>& outputs, int threads);
// Max over k x k windows, stride s, padding p on every side (padded cells do not take part, as
// in PyTorch's MaxPool2d). Output [(h + 2p - k)/s + 1, (w + 2p - k)/s + 1, c]; requires p < k.
template <typename T>
void maxpool2d(const T* x, int h, int w, int c, int k, int s, int p, T* out, int threads);
// Nearest-neighbour upsampling by an integer factor.
template <typename T>
void upsample_nearest(const T* x, int h, int w, int c, int factor, T* out, int threads);

// Packed code tensors (codes.h, `storage_bits` 1, 2 or 4; pixel rows start on bytes). Concat,
// split and upsample move whole bytes (the <uint8_t> forms with channels in bytes); these unpack a
// bounded piece at a time: max-pool the window rows of one output row, quantize and dequantize
// 4096 codes.
void maxpool2d_packed(const uint8_t* x, int storage_bits, int h, int w, int c, int k, int s, int p,
                      uint8_t* out, int threads);
void quantize_packed(const float* x, size_t n, const Grid& grid, int storage_bits, uint8_t* out,
                     int threads);
void dequantize_packed(const uint8_t* q, int storage_bits, size_t n, const Grid& grid, float* out,
                       int threads);
// Per-thread scratch bytes the packed ops above use for an op over [h, w, c] with window k.
size_t packed_op_scratch_bytes(int w, int c, int k);

// YOLOv8 Detect decode of one level. box [h, w, 4*reg_max] raw DFL logits (left, top, right,
// bottom, reg_max bins each), cls [h, w, nc] logits. Writes h*w rows of [x1, y1, x2, y2,
// sigmoid(cls)...] in input pixels: anchor point (x + 0.5, y + 0.5), distance per side =
// sum_i i * softmax(bins)_i, box = (anchor -+ distance) * stride. Rows in row-major cell order.
void decode_yolov8_level(const float* box, const float* cls, int h, int w, int reg_max, int nc,
                         float stride, float* out, int threads = 1);
// YOLOv5 Detect decode of one level: x [h, w, na*(5+nc)]; for anchor a, cell (y, x),
// p = sigmoid(raw): cx = (2 p0 - 0.5 + x) * stride, cy = (2 p1 - 0.5 + y) * stride,
// w = (2 p2)^2 * anchor_w, h = (2 p3)^2 * anchor_h; rows [x1, y1, x2, y2, p4 * p5.. ] ordered
// (anchor, y, x) as YOLOv5's Detect flattens them. anchors: na (w, h) pairs in input pixels.
void decode_yolov5_level(const float* x, int h, int w, int na, int nc, float stride,
                         const float* anchors, float* out, int threads = 1);

struct Detection {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  float score = 0;
  int class_id = -1;
};

float box_iou(const Detection& a, const Detection& b);

// NMS over rows [x1, y1, x2, y2, score_0 .. score_{nc-1}] (cols = 4 + nc). Each row takes its
// best class (lowest index on ties); rows with score > score_threshold are sorted by score
// (descending, stable) and greedily kept unless a kept box (of the same class when class_aware)
// has IoU > iou_threshold with it. At most max_detections results, best first.
std::vector<Detection> nms(const float* rows, int64_t count, int cols, const NmsAttrs& attrs);
// The same NMS over rows that hold each anchor's best class already: [x1, y1, x2, y2, score,
// class] (the compact table of planner.h HeadMemory::kDetections, detect_rows.h decode_v8_best).
std::vector<Detection> nms_best_rows(const float* rows, int64_t count, const NmsAttrs& attrs);

// An RGB uint8 image, row-major [height][width][3] (row_stride bytes between rows; 0 = width*3).
struct ImageView {
  const uint8_t* rgb = nullptr;
  int width = 0;
  int height = 0;
  int row_stride = 0;
};

// How an original image maps onto the network input: input = original * scale + pad.
struct LetterboxInfo {
  float scale_x = 1, scale_y = 1;
  float pad_left = 0, pad_top = 0;
  int orig_width = 0, orig_height = 0;
};

// Resizes `image` into out [spec.height][spec.width][3] (bilinear, half-pixel centres, rounded
// to uint8). With spec.letterbox the aspect ratio is kept (scale r = min(H/h, W/w), resized size
// round(w r) x round(h r)) and the rest is filled with spec.pad_value, split evenly as in
// ultralytics' LetterBox (left = round(dw - 0.1), top = round(dh - 0.1)); else the image is
// stretched. Throws mixnas::Error on an empty image.
LetterboxInfo letterbox(const ImageView& image, const InputSpec& spec, uint8_t* out);

// Maps a box from network-input pixels back to the original image and clips it to the image.
Detection map_to_original(const Detection& d, const LetterboxInfo& info);

}  // namespace mixnas::rt
