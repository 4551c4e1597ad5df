#include "datasets/augment.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/letterbox.h"

namespace mixnas::data {
namespace {

// Boxes in pixels while transforming.
struct PixelBox {
  int cls;
  double x0, y0, x1, y1;
};

std::vector<PixelBox> to_pixels(const std::vector<Box>& boxes, int w, int h) {
  std::vector<PixelBox> out;
  for (const Box& b : boxes) {
    out.push_back({b.cls, (b.cx - b.w / 2.0) * w, (b.cy - b.h / 2.0) * h, (b.cx + b.w / 2.0) * w,
                   (b.cy + b.h / 2.0) * h});
  }
  return out;
}

Box to_normalised(const PixelBox& p, int w, int h) {
  return {p.cls, static_cast<float>((p.x0 + p.x1) / 2 / w),
          static_cast<float>((p.y0 + p.y1) / 2 / h), static_cast<float>((p.x1 - p.x0) / w),
          static_cast<float>((p.y1 - p.y0) / h)};
}

Annotated resize_long_side(const Annotated& a, int size) {
  int w = a.image.width, h = a.image.height;
  double r = static_cast<double>(size) / std::max(w, h);
  if (r == 1.0) return a;
  int nw = std::max(1, static_cast<int>(std::lround(w * r)));
  int nh = std::max(1, static_cast<int>(std::lround(h * r)));
  return {resize_bilinear(a.image, nw, nh), a.boxes};
}

// Bilinear weights in fixed point: 11 fraction bits per axis, so one output value is
// (sum of four taps x weights, at most 255 * 2^22) >> 22, which fits 32 bits.
constexpr int kWarpBits = 11;
constexpr uint32_t kWarpOne = 1u << kWarpBits;

// One output coordinate's source taps along one axis: the first tap's source index (the second
// is index + 1; either may lie outside the image) and the second tap's weight in [0, kWarpOne].
struct AxisTap {
  int index = 0;
  uint32_t weight = 0;
};

// Output coordinates in [*begin, *end) have a source position (o + 0.5 - t) / s + c - 0.5 in
// (-1, in_size), i.e. at least one tap inside the image; the others keep the pad value. Those in
// [*inner_begin, *inner_end) have both taps inside. The position is monotonic in o, so both sets
// are ranges.
std::vector<AxisTap> axis_taps(int out_size, double t, double s, double c, int in_size, int* begin,
                               int* end, int* inner_begin, int* inner_end) {
  std::vector<AxisTap> taps(static_cast<size_t>(out_size));
  *begin = *inner_begin = out_size;
  *end = *inner_end = 0;
  for (int o = 0; o < out_size; ++o) {
    const double v = (o + 0.5 - t) / s + c - 0.5;
    if (!(v > -1 && v < in_size)) continue;
    const int i = static_cast<int>(std::floor(v));
    taps[o] = {i, static_cast<uint32_t>(std::lround((v - i) * kWarpOne))};
    *begin = std::min(*begin, o);
    *end = o + 1;
    if (i >= 0 && i + 1 < in_size) {
      *inner_begin = std::min(*inner_begin, o);
      *inner_end = o + 1;
    }
  }
  if (*inner_begin >= *inner_end) *inner_begin = *inner_end = *begin;
  return taps;
}

}  // namespace

// x' = s * (x - cx) + tx, sampled back with bilinear interpolation (fixed-point weights: within
// one code of the exact value, test_augment checks it); boxes mapped, clipped and filtered. The
// loader's hottest step, hence the separable tap tables and the branch-free inner range.
Annotated scale_translate(const Annotated& src, int out_size, double s, double tx, double ty,
                          const AugmentOptions& o) {
  const Image& in = src.image;
  const double cx = in.width / 2.0, cy = in.height / 2.0;
  Annotated out;
  out.image = Image(out_size, out_size, in.channels, o.pad_value);
  const int C = in.channels;
  int xb, xe, xib, xie, yb, ye, yib, yie;
  const std::vector<AxisTap> xs = axis_taps(out_size, tx, s, cx, in.width, &xb, &xe, &xib, &xie);
  const std::vector<AxisTap> ys = axis_taps(out_size, ty, s, cy, in.height, &yb, &ye, &yib, &yie);
  constexpr uint32_t kHalf = 1u << (2 * kWarpBits - 1);
  // Any pixel, taps outside the image reading the pad value.
  auto edge_pixel = [&](int x, int y) {
    const AxisTap tx_ = xs[x], ty_ = ys[y];
    uint8_t* dst = out.image.at(x, y);
    for (int c = 0; c < C; ++c) {
      auto px = [&](int xx, int yy) -> uint32_t {
        if (xx < 0 || yy < 0 || xx >= in.width || yy >= in.height) return o.pad_value;
        return in.at(xx, yy)[c];
      };
      const uint32_t vx = kWarpOne - tx_.weight, vy = kWarpOne - ty_.weight;
      const uint32_t top =
          px(tx_.index, ty_.index) * vx + px(tx_.index + 1, ty_.index) * tx_.weight;
      const uint32_t bottom =
          px(tx_.index, ty_.index + 1) * vx + px(tx_.index + 1, ty_.index + 1) * tx_.weight;
      dst[c] = static_cast<uint8_t>((top * vy + bottom * ty_.weight + kHalf) >> (2 * kWarpBits));
    }
  };
  for (int y = yb; y < ye; ++y) {
    if (y < yib || y >= yie) {
      for (int x = xb; x < xe; ++x) edge_pixel(x, y);
      continue;
    }
    for (int x = xb; x < xib; ++x) edge_pixel(x, y);
    for (int x = xie; x < xe; ++x) edge_pixel(x, y);
    // Both rows and both columns inside the image.
    const uint8_t* r0 = in.at(0, ys[y].index);
    const uint8_t* r1 = in.at(0, ys[y].index + 1);
    const uint32_t wy = ys[y].weight, vy = kWarpOne - wy;
    uint8_t* dst = out.image.at(xib, y);
    for (int x = xib; x < xie; ++x, dst += C) {
      const size_t p = static_cast<size_t>(xs[x].index) * C;
      const uint32_t wx = xs[x].weight, vx = kWarpOne - wx;
      for (int c = 0; c < C; ++c) {
        const uint32_t top = r0[p + c] * vx + r0[p + C + c] * wx;
        const uint32_t bottom = r1[p + c] * vx + r1[p + C + c] * wx;
        dst[c] = static_cast<uint8_t>((top * vy + bottom * wy + kHalf) >> (2 * kWarpBits));
      }
    }
  }
  for (const PixelBox& b : to_pixels(src.boxes, in.width, in.height)) {
    PixelBox m{b.cls, s * (b.x0 - cx) + tx, s * (b.y0 - cy) + ty, s * (b.x1 - cx) + tx,
               s * (b.y1 - cy) + ty};
    double area_before = (m.x1 - m.x0) * (m.y1 - m.y0);
    m.x0 = std::clamp(m.x0, 0.0, double(out_size));
    m.x1 = std::clamp(m.x1, 0.0, double(out_size));
    m.y0 = std::clamp(m.y0, 0.0, double(out_size));
    m.y1 = std::clamp(m.y1, 0.0, double(out_size));
    double w = m.x1 - m.x0, h = m.y1 - m.y0;
    if (w < o.min_box_px || h < o.min_box_px) continue;
    if (area_before <= 0 || w * h / area_before <= o.min_area_ratio) continue;
    out.boxes.push_back(to_normalised(m, out_size, out_size));
  }
  return out;
}

Image resize_bilinear(const Image& src, int width, int height) {
  if (width <= 0 || height <= 0) throw Error("resize: the target size must be positive");
  if (width == src.width && height == src.height) return src;
  Image out(width, height, src.channels);
  const size_t px = static_cast<size_t>(src.channels);  // bytes per pixel
  mixnas::resize_bilinear(src.at(0, 0), src.width, src.height, px * src.width, src.channels,
                          out.at(0, 0), width, height, px * width);
  return out;
}

Annotated letterbox(const Annotated& src, int size, LetterboxInfo* info, uint8_t pad) {
  const int w = src.image.width, h = src.image.height;
  if (w <= 0 || h <= 0) throw Error("letterbox: empty image");
  const LetterboxGeometry g = letterbox_geometry(w, h, size, size, true);
  LetterboxInfo li;
  li.src_width = w;
  li.src_height = h;
  li.out_size = size;
  li.scale_x = g.scale_x;
  li.scale_y = g.scale_y;
  li.pad_x = g.pad_left;
  li.pad_y = g.pad_top;
  Annotated out;
  out.image = Image(size, size, src.image.channels, pad);
  const size_t px = static_cast<size_t>(src.image.channels);  // bytes per pixel
  mixnas::resize_bilinear(src.image.at(0, 0), w, h, px * w, src.image.channels,
                          out.image.at(g.pad_left, g.pad_top), g.resized_width, g.resized_height,
                          px * size);
  for (const Box& b : src.boxes) out.boxes.push_back(source_to_letterbox(b, li));
  if (info) *info = li;
  return out;
}

Box source_to_letterbox(const Box& b, const LetterboxInfo& li) {
  const double n = li.out_size;
  return {b.cls, static_cast<float>((b.cx * li.src_width * li.scale_x + li.pad_x) / n),
          static_cast<float>((b.cy * li.src_height * li.scale_y + li.pad_y) / n),
          static_cast<float>(b.w * li.src_width * li.scale_x / n),
          static_cast<float>(b.h * li.src_height * li.scale_y / n)};
}

Box letterbox_to_source(const Box& b, const LetterboxInfo& li) {
  const double n = li.out_size;
  return {b.cls, static_cast<float>((b.cx * n - li.pad_x) / li.scale_x / li.src_width),
          static_cast<float>((b.cy * n - li.pad_y) / li.scale_y / li.src_height),
          static_cast<float>(b.w * n / li.scale_x / li.src_width),
          static_cast<float>(b.h * n / li.scale_y / li.src_height)};
}

void flip_horizontal(Annotated* a) {
  Image& im = a->image;
  const int C = im.channels;
  for (int y = 0; y < im.height; ++y) {
    for (int x = 0; x < im.width / 2; ++x) {
      std::swap_ranges(im.at(x, y), im.at(x, y) + C, im.at(im.width - 1 - x, y));
    }
  }
  for (Box& b : a->boxes) b.cx = 1.0f - b.cx;
}

void hsv_jitter(Image* image, Rng& rng, double h_gain, double s_gain, double v_gain) {
  // OpenCV's 8-bit HSV: H in [0, 180), S and V in [0, 255]; gains applied through tables.
  double rh = rng.uniform(-1, 1) * h_gain + 1, rs = rng.uniform(-1, 1) * s_gain + 1,
         rv = rng.uniform(-1, 1) * v_gain + 1;
  uint8_t lut_h[256], lut_s[256], lut_v[256];
  for (int i = 0; i < 256; ++i) {
    lut_h[i] = static_cast<uint8_t>(static_cast<int>(i * rh) % 180);
    lut_s[i] = static_cast<uint8_t>(std::clamp(i * rs, 0.0, 255.0));
    lut_v[i] = static_cast<uint8_t>(std::clamp(i * rv, 0.0, 255.0));
  }
  if (image->channels < 3) return;
  // Per pixel in float with reciprocal tables (the loader's hottest step: about half of its time
  // in double precision).
  static const struct Reciprocals {
    float hue[256], sat[256];  // 30 / d and 255 / max
    Reciprocals() {
      hue[0] = sat[0] = 0.0f;
      for (int i = 1; i < 256; ++i) {
        hue[i] = 30.0f / static_cast<float>(i);
        sat[i] = 255.0f / static_cast<float>(i);
      }
    }
  } recip;
  const size_t n = static_cast<size_t>(image->width) * image->height;
  const int channels = image->channels;
  uint8_t* p = image->pixels.data();
  for (size_t i = 0; i < n; ++i, p += channels) {
    const int r = p[0], g = p[1], b = p[2];
    const int mx = std::max(r, std::max(g, b)), mn = std::min(r, std::min(g, b)), d = mx - mn;
    int H = 0;
    if (d > 0) {
      // Hue in OpenCV's half degrees [0, 180).
      float h;
      if (mx == r)
        h = static_cast<float>(g - b) * recip.hue[d];
      else if (mx == g)
        h = 60.0f + static_cast<float>(b - r) * recip.hue[d];
      else
        h = 120.0f + static_cast<float>(r - g) * recip.hue[d];
      if (h < 0) h += 180.0f;
      H = static_cast<int>(h + 0.5f);
      if (H >= 180) H -= 180;
    }
    const int S = static_cast<int>(static_cast<float>(d) * recip.sat[mx] + 0.5f);
    // The jittered colour back to RGB: hue sector and position in it.
    const float vv = lut_v[mx], c = vv * (lut_s[S] * (1.0f / 255.0f));
    const float hp = static_cast<float>(lut_h[H]) * (1.0f / 30.0f);  // [0, 6)
    const int sector = static_cast<int>(hp);
    const float f = hp - static_cast<float>(sector);
    const float x = c * (1.0f - std::fabs(static_cast<float>(sector & 1) + f - 1.0f)), m = vv - c;
    float r1 = 0, g1 = 0, b1 = 0;
    switch (sector) {
      case 0:
        r1 = c, g1 = x;
        break;
      case 1:
        r1 = x, g1 = c;
        break;
      case 2:
        g1 = c, b1 = x;
        break;
      case 3:
        g1 = x, b1 = c;
        break;
      case 4:
        r1 = x, b1 = c;
        break;
      default:
        r1 = c, b1 = x;
        break;
    }
    auto to_u8 = [](float v) {
      return static_cast<uint8_t>(std::min(255.0f, std::max(0.0f, v)) + 0.5f);
    };
    p[0] = to_u8(r1 + m);
    p[1] = to_u8(g1 + m);
    p[2] = to_u8(b1 + m);
  }
}

Annotated random_affine(const Annotated& src, Rng& rng, int out_size, double scale,
                        double translate, const AugmentOptions& o) {
  double s = rng.uniform(1 - scale, 1 + scale);
  double tx = rng.uniform(0.5 - translate, 0.5 + translate) * out_size;
  double ty = rng.uniform(0.5 - translate, 0.5 + translate) * out_size;
  return scale_translate(src, out_size, s, tx, ty, o);
}

Annotated mosaic4(const std::array<Annotated, 4>& parts, Rng& rng, const AugmentOptions& o) {
  const int S = o.imgsz, S2 = 2 * S;
  int xc = rng.range(S / 2, S + S / 2), yc = rng.range(S / 2, S + S / 2);
  Annotated canvas;
  canvas.image = Image(S2, S2, 3, o.pad_value);
  for (int i = 0; i < 4; ++i) {
    const Image& im = parts[i].image;
    if (im.channels != 3) throw Error("mosaic: images must be RGB");
    const int w = im.width, h = im.height;
    int x1a, y1a, x2a, y2a, x1b, y1b, x2b, y2b;
    if (i == 0) {
      x1a = std::max(xc - w, 0), y1a = std::max(yc - h, 0), x2a = xc, y2a = yc;
      x1b = w - (x2a - x1a), y1b = h - (y2a - y1a), x2b = w, y2b = h;
    } else if (i == 1) {
      x1a = xc, y1a = std::max(yc - h, 0), x2a = std::min(xc + w, S2), y2a = yc;
      x1b = 0, y1b = h - (y2a - y1a), x2b = std::min(w, x2a - x1a), y2b = h;
    } else if (i == 2) {
      x1a = std::max(xc - w, 0), y1a = yc, x2a = xc, y2a = std::min(S2, yc + h);
      x1b = w - (x2a - x1a), y1b = 0, x2b = w, y2b = std::min(y2a - y1a, h);
    } else {
      x1a = xc, y1a = yc, x2a = std::min(xc + w, S2), y2a = std::min(S2, yc + h);
      x1b = 0, y1b = 0, x2b = std::min(w, x2a - x1a), y2b = std::min(y2a - y1a, h);
    }
    for (int y = 0; y < y2b - y1b; ++y) {
      std::copy(im.at(x1b, y1b + y), im.at(x1b, y1b + y) + (x2b - x1b) * 3,
                canvas.image.at(x1a, y1a + y));
    }
    const int padw = x1a - x1b, padh = y1a - y1b;
    for (PixelBox b : to_pixels(parts[i].boxes, w, h)) {
      // Keep only what lies in the pasted region.
      b.x0 = std::clamp(b.x0 + padw, double(x1a), double(x2a));
      b.x1 = std::clamp(b.x1 + padw, double(x1a), double(x2a));
      b.y0 = std::clamp(b.y0 + padh, double(y1a), double(y2a));
      b.y1 = std::clamp(b.y1 + padh, double(y1a), double(y2a));
      if (b.x1 - b.x0 <= 0 || b.y1 - b.y0 <= 0) continue;
      canvas.boxes.push_back(to_normalised(b, S2, S2));
    }
  }
  double scale = o.affine ? o.scale : 0.0, translate = o.affine ? o.translate : 0.0;
  return random_affine(canvas, rng, S, scale, translate, o);
}

Annotated augment_sample(size_t index, size_t count, const std::function<Annotated(size_t)>& load,
                         Rng& rng, const AugmentOptions& o, bool mosaic) {
  Annotated out;
  if (mosaic && rng.chance(o.mosaic_prob)) {
    std::array<Annotated, 4> parts;
    parts[0] = resize_long_side(load(index), o.imgsz);
    for (int k = 1; k < 4; ++k) parts[k] = resize_long_side(load(rng.next() % count), o.imgsz);
    out = mosaic4(parts, rng, o);
  } else {
    Annotated a = load(index);
    if (o.letterbox) {
      out = letterbox(a, o.imgsz, nullptr, o.pad_value);
    } else {
      out = {resize_bilinear(a.image, o.imgsz, o.imgsz), a.boxes};
    }
    if (o.affine) out = random_affine(out, rng, o.imgsz, o.scale, o.translate, o);
  }
  if (o.flip && rng.chance(o.fliplr)) flip_horizontal(&out);
  if (o.hsv) hsv_jitter(&out.image, rng, o.hsv_h, o.hsv_s, o.hsv_v);
  return out;
}

}  // namespace mixnas::data
