#pragma once
// The one letterbox of mixnas: how an image of any size becomes a model input, the same for the
// runtime's preprocessing (deploy/runtime/ops.h), validation and the training loader
// (datasets/augment.h). The geometry follows ultralytics' LetterBox (docs/numerics.md,
// "Preprocessing"); the resize is bilinear with half-pixel centres in float arithmetic, compiled
// without FMA contraction so that x86-64 and aarch64 give the same bytes.
#include <cstddef>
#include <cstdint>

namespace mixnas {

// Where a source image lands in an out_width x out_height input: x_out = x_src * scale_x +
// pad_left.
struct LetterboxGeometry {
  int resized_width = 0, resized_height = 0;  // the resized image inside the output
  int pad_left = 0, pad_top = 0;              // its top-left corner in the output
  float scale_x = 1, scale_y = 1;             // output pixels per source pixel
};

// keep_aspect: r = min(out_h / h, out_w / w) in float, resized size round(w r) x round(h r) (half
// to even, at least 1, at most the output), the padding split as ultralytics splits it (left =
// round(dw - 0.1), top = round(dh - 0.1) with dw, dh half the slack), scale_x = scale_y = r.
// Otherwise the image is stretched to the whole output (no padding). Sizes must be positive.
LetterboxGeometry letterbox_geometry(int src_width, int src_height, int out_width, int out_height,
                                     bool keep_aspect);

// Resizes `src` (src_height rows of src_width pixels of `channels` bytes, rows src_stride bytes
// apart) into `dst` (dst_height rows of dst_width pixels, rows dst_stride bytes apart): bilinear,
// half-pixel centres, taps clamped to the image, rounded half to even and saturated to 0..255.
void resize_bilinear(const uint8_t* src, int src_width, int src_height, size_t src_stride,
                     int channels, uint8_t* dst, int dst_width, int dst_height, size_t dst_stride);

}  // namespace mixnas
