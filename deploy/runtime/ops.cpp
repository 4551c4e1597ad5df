#include "deploy/runtime/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/letterbox.h"
#include "deploy/runtime/codes.h"
#include "deploy/runtime/kernels/activation.h"
#include "deploy/runtime/kernels/detect_rows.h"

namespace mixnas::rt {

uint8_t quantize_value(float x, const Grid& grid) {
  const float q = std::nearbyint(x / grid.scale) + static_cast<float>(grid.zero_point);
  const float hi = static_cast<float>((1 << grid.bits) - 1);
  // NaN maps to 0 (the comparison chain sends it to the lower clamp).
  return static_cast<uint8_t>(q >= hi ? hi : (q > 0.0f ? q : 0.0f));
}

void quantize(const float* x, size_t n, const Grid& grid, uint8_t* out, int threads) {
  const int64_t count = static_cast<int64_t>(n);
#pragma omp parallel for num_threads(threads) if (threads > 1 && count > 4096)
  for (int64_t i = 0; i < count; ++i) out[i] = quantize_value(x[i], grid);
}

void dequantize(const uint8_t* q, size_t n, const Grid& grid, float* out, int threads) {
  const int64_t count = static_cast<int64_t>(n);
#pragma omp parallel for num_threads(threads) if (threads > 1 && count > 4096)
  for (int64_t i = 0; i < count; ++i)
    out[i] = grid.scale * static_cast<float>(static_cast<int>(q[i]) - grid.zero_point);
}

void add_f32(const float* a, const float* b, size_t n, float* out, int threads) {
  const int64_t count = static_cast<int64_t>(n);
#pragma omp parallel for num_threads(threads) if (threads > 1 && count > 4096)
  for (int64_t i = 0; i < count; ++i) out[i] = a[i] + b[i];
}

template <typename T>
void concat_channels(const std::vector<const T*>& inputs, const std::vector<int>& channels,
                     int64_t pixels, T* out, int threads) {
  const int total = std::accumulate(channels.begin(), channels.end(), 0);
#pragma omp parallel for num_threads(threads) if (threads > 1 && pixels > 256)
  for (int64_t p = 0; p < pixels; ++p) {
    T* dst = out + p * total;
    for (size_t i = 0; i < inputs.size(); ++i) {
      std::memcpy(dst, inputs[i] + p * channels[i], sizeof(T) * channels[i]);
      dst += channels[i];
    }
  }
}

template <typename T>
void split_channels(const T* x, const std::vector<int>& channels, int64_t pixels,
                    const std::vector<T*>& outputs, int threads) {
  const int total = std::accumulate(channels.begin(), channels.end(), 0);
#pragma omp parallel for num_threads(threads) if (threads > 1 && pixels > 256)
  for (int64_t p = 0; p < pixels; ++p) {
    const T* src = x + p * total;
    for (size_t i = 0; i < outputs.size(); ++i) {
      std::memcpy(outputs[i] + p * channels[i], src, sizeof(T) * channels[i]);
      src += channels[i];
    }
  }
}

template <typename T>
void maxpool2d(const T* x, int h, int w, int c, int k, int s, int p, T* out, int threads) {
  const int oh = (h + 2 * p - k) / s + 1;
  const int ow = (w + 2 * p - k) / s + 1;
#pragma omp parallel for num_threads(threads) if (threads > 1 && oh > 1)
  for (int oy = 0; oy < oh; ++oy) {
    for (int ox = 0; ox < ow; ++ox) {
      T* dst = out + (static_cast<int64_t>(oy) * ow + ox) * c;
      const int y0 = std::max(0, oy * s - p), y1 = std::min(h, oy * s - p + k);
      const int x0 = std::max(0, ox * s - p), x1 = std::min(w, ox * s - p + k);
      // p < k guarantees at least one real cell per window.
      std::memcpy(dst, x + (static_cast<int64_t>(y0) * w + x0) * c, sizeof(T) * c);
      for (int y = y0; y < y1; ++y)
        for (int xx = x0; xx < x1; ++xx) {
          const T* src = x + (static_cast<int64_t>(y) * w + xx) * c;
          for (int ch = 0; ch < c; ++ch) dst[ch] = std::max(dst[ch], src[ch]);
        }
    }
  }
}

template <typename T>
void upsample_nearest(const T* x, int h, int w, int c, int factor, T* out, int threads) {
  const int oh = h * factor, ow = w * factor;
#pragma omp parallel for num_threads(threads) if (threads > 1 && oh > 1)
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox)
      std::memcpy(out + (static_cast<int64_t>(oy) * ow + ox) * c,
                  x + (static_cast<int64_t>(oy / factor) * w + ox / factor) * c, sizeof(T) * c);
}

namespace {
constexpr int64_t kPackedChunk = 4096;  // codes per quantize / dequantize step
}  // namespace

void maxpool2d_packed(const uint8_t* x, int sb, int h, int w, int c, int k, int s, int p,
                      uint8_t* out, int threads) {
  const int oh = (h + 2 * p - k) / s + 1;
  const int ow = (w + 2 * p - k) / s + 1;
  const int64_t row = int64_t{w} * c;
#pragma omp parallel for num_threads(threads) if (threads > 1 && oh > 1)
  for (int oy = 0; oy < oh; ++oy) {
    thread_local std::vector<uint8_t> band, dst_row;
    const int y0 = std::max(0, oy * s - p), y1 = std::min(h, oy * s - p + k);
    band.resize(static_cast<size_t>(k * row));
    dst_row.resize(static_cast<size_t>(ow) * c);
    unpack_codes(x, sb, y0 * row, (y1 - y0) * row, band.data());
    for (int ox = 0; ox < ow; ++ox) {
      uint8_t* dst = dst_row.data() + static_cast<int64_t>(ox) * c;
      const int x0 = std::max(0, ox * s - p), x1 = std::min(w, ox * s - p + k);
      std::memcpy(dst, band.data() + static_cast<int64_t>(x0) * c, c);
      for (int y = 0; y < y1 - y0; ++y)
        for (int xx = x0; xx < x1; ++xx) {
          const uint8_t* src = band.data() + y * row + static_cast<int64_t>(xx) * c;
          for (int ch = 0; ch < c; ++ch) dst[ch] = std::max(dst[ch], src[ch]);
        }
    }
    pack_codes(dst_row.data(), int64_t{ow} * c, sb, out, int64_t{oy} * ow * c);
  }
}

namespace {
// fn(codes, first, count) for the chunks [first, first + count) of n codes, kPackedChunk each
// (chunks start on bytes: kPackedChunk * storage bits is a multiple of 8), codes a chunk-sized
// buffer of the calling thread.
template <class Fn>
void over_code_chunks(size_t n, int threads, Fn fn) {
  const int64_t chunks = (static_cast<int64_t>(n) + kPackedChunk - 1) / kPackedChunk;
#pragma omp parallel for num_threads(threads) if (threads > 1 && chunks > 1)
  for (int64_t i = 0; i < chunks; ++i) {
    uint8_t codes[kPackedChunk];
    const int64_t first = i * kPackedChunk;
    fn(codes, first, std::min<int64_t>(kPackedChunk, static_cast<int64_t>(n) - first));
  }
}
}  // namespace

void quantize_packed(const float* x, size_t n, const Grid& grid, int sb, uint8_t* out,
                     int threads) {
  over_code_chunks(n, threads, [&](uint8_t* codes, int64_t first, int64_t count) {
    for (int64_t e = 0; e < count; ++e) codes[e] = quantize_value(x[first + e], grid);
    pack_codes(codes, count, sb, out, first);
  });
}

void dequantize_packed(const uint8_t* q, int sb, size_t n, const Grid& grid, float* out,
                       int threads) {
  over_code_chunks(n, threads, [&](uint8_t* codes, int64_t first, int64_t count) {
    unpack_codes(q, sb, first, count, codes);
    dequantize(codes, static_cast<size_t>(count), grid, out + first, 1);
  });
}

size_t packed_op_scratch_bytes(int w, int c, int k) {
  const size_t row = static_cast<size_t>(w) * c;  // an output row has at most w + k - 1 pixels
  return std::max<size_t>(static_cast<size_t>(k) * row + static_cast<size_t>(w + k) * c,
                          kPackedChunk);
}

#define MIXNAS_INSTANTIATE_LAYOUT_OPS(T)                                                           \
  template void concat_channels<T>(const std::vector<const T*>&, const std::vector<int>&, int64_t, \
                                   T*, int);                                                       \
  template void split_channels<T>(const T*, const std::vector<int>&, int64_t,                      \
                                  const std::vector<T*>&, int);                                    \
  template void maxpool2d<T>(const T*, int, int, int, int, int, int, T*, int);                     \
  template void upsample_nearest<T>(const T*, int, int, int, int, T*, int);
MIXNAS_INSTANTIATE_LAYOUT_OPS(float)
MIXNAS_INSTANTIATE_LAYOUT_OPS(uint8_t)
#undef MIXNAS_INSTANTIATE_LAYOUT_OPS

namespace {
float sigmoid(float x) {
  return 1.0f / (1.0f + std::exp(-x));
}
}  // namespace

void decode_yolov8_level(const float* box, const float* cls, int h, int w, int reg_max, int nc,
                         float stride, float* out, int threads) {
  const int cols = 4 + nc;
#pragma omp parallel for num_threads(threads) if (threads > 1 && h > 1)
  for (int y = 0; y < h; ++y) {
    const int64_t cell0 = static_cast<int64_t>(y) * w;
    decode_v8_boxes(box + cell0 * 4 * reg_max, 4 * reg_max, w, reg_max, cell0, w, stride,
                    out + cell0 * cols, cols);
    decode_v8_scores(cls + cell0 * nc, nc, w, nc, out + cell0 * cols + 4, cols);
  }
}

void decode_yolov5_level(const float* x, int h, int w, int na, int nc, float stride,
                         const float* anchors, float* out, int threads) {
  const int no = 5 + nc, cols = 4 + nc;
  for (int a = 0; a < na; ++a) {
#pragma omp parallel for num_threads(threads) if (threads > 1 && h > 1)
    for (int y = 0; y < h; ++y) {
      for (int xx = 0; xx < w; ++xx) {
        const float* raw = x + (static_cast<int64_t>(y) * w + xx) * na * no + a * no;
        float* row = out + ((static_cast<int64_t>(a) * h + y) * w + xx) * cols;
        const float px = sigmoid(raw[0]), py = sigmoid(raw[1]);
        const float pw = sigmoid(raw[2]) * 2.0f, ph = sigmoid(raw[3]) * 2.0f;
        const float cx = (px * 2.0f - 0.5f + xx) * stride;
        const float cy = (py * 2.0f - 0.5f + y) * stride;
        const float bw = pw * pw * anchors[2 * a], bh = ph * ph * anchors[2 * a + 1];
        row[0] = cx - bw * 0.5f;
        row[1] = cy - bh * 0.5f;
        row[2] = cx + bw * 0.5f;
        row[3] = cy + bh * 0.5f;
        const float obj = sigmoid(raw[4]);
        for (int k = 0; k < nc; ++k) row[4 + k] = obj * sigmoid(raw[5 + k]);
      }
    }
  }
}

float box_iou(const Detection& a, const Detection& b) {
  const float iw = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
  const float ih = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
  if (iw <= 0.0f || ih <= 0.0f) return 0.0f;
  const float inter = iw * ih;
  const float area_a = std::max(0.0f, a.x2 - a.x1) * std::max(0.0f, a.y2 - a.y1);
  const float area_b = std::max(0.0f, b.x2 - b.x1) * std::max(0.0f, b.y2 - b.y1);
  const float uni = area_a + area_b - inter;
  return uni > 0.0f ? inter / uni : 0.0f;
}

namespace {

// Candidates (score > threshold, which also drops NaN) sorted best first, then greedy suppression.
std::vector<Detection> suppress(std::vector<Detection> cand, const NmsAttrs& attrs) {
  std::stable_sort(cand.begin(), cand.end(),
                   [](const Detection& a, const Detection& b) { return a.score > b.score; });
  std::vector<Detection> kept;
  for (const Detection& d : cand) {
    if (static_cast<int>(kept.size()) >= attrs.max_detections) break;
    bool suppressed = false;
    for (const Detection& k : kept) {
      if (attrs.class_aware && k.class_id != d.class_id) continue;
      if (box_iou(k, d) > attrs.iou_threshold) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) kept.push_back(d);
  }
  return kept;
}

}  // namespace

std::vector<Detection> nms(const float* rows, int64_t count, int cols, const NmsAttrs& attrs) {
  std::vector<Detection> cand;
  const int nc = cols - 4;
  for (int64_t r = 0; r < count; ++r) {
    const float* row = rows + r * cols;
    const int best = best_class(row + 4, nc);
    const float score = row[4 + best];
    if (!(score > attrs.score_threshold)) continue;
    cand.push_back({row[0], row[1], row[2], row[3], score, best});
  }
  return suppress(std::move(cand), attrs);
}

std::vector<Detection> nms_best_rows(const float* rows, int64_t count, const NmsAttrs& attrs) {
  std::vector<Detection> cand;
  for (int64_t r = 0; r < count; ++r) {
    const float* row = rows + r * 6;
    if (!(row[4] > attrs.score_threshold)) continue;
    cand.push_back({row[0], row[1], row[2], row[3], row[4], static_cast<int>(row[5])});
  }
  return suppress(std::move(cand), attrs);
}

LetterboxInfo letterbox(const ImageView& image, const InputSpec& spec, uint8_t* out) {
  if (image.rgb == nullptr || image.width < 1 || image.height < 1)
    throw Error("letterbox: empty image (" + std::to_string(image.width) + "x" +
                std::to_string(image.height) + ")");
  const int stride = image.row_stride ? image.row_stride : image.width * 3;
  if (stride < image.width * 3) throw Error("letterbox: image row stride smaller than width * 3");
  const int H = spec.height, W = spec.width;
  const LetterboxGeometry g = letterbox_geometry(image.width, image.height, W, H, spec.letterbox);
  LetterboxInfo info;
  info.orig_width = image.width;
  info.orig_height = image.height;
  info.scale_x = g.scale_x;
  info.scale_y = g.scale_y;
  info.pad_left = static_cast<float>(g.pad_left);
  info.pad_top = static_cast<float>(g.pad_top);
  std::memset(out, spec.pad_value, static_cast<size_t>(H) * W * 3);
  resize_bilinear(image.rgb, image.width, image.height, static_cast<size_t>(stride), 3,
                  out + (static_cast<size_t>(g.pad_top) * W + g.pad_left) * 3, g.resized_width,
                  g.resized_height, static_cast<size_t>(W) * 3);
  return info;
}

Detection map_to_original(const Detection& d, const LetterboxInfo& info) {
  Detection o = d;
  const float w = static_cast<float>(info.orig_width), h = static_cast<float>(info.orig_height);
  o.x1 = std::min(std::max((d.x1 - info.pad_left) / info.scale_x, 0.0f), w);
  o.x2 = std::min(std::max((d.x2 - info.pad_left) / info.scale_x, 0.0f), w);
  o.y1 = std::min(std::max((d.y1 - info.pad_top) / info.scale_y, 0.0f), h);
  o.y2 = std::min(std::max((d.y2 - info.pad_top) / info.scale_y, 0.0f), h);
  return o;
}

}  // namespace mixnas::rt
