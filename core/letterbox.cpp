#include "core/letterbox.h"

#include <algorithm>
#include <cmath>

namespace mixnas {

LetterboxGeometry letterbox_geometry(int src_width, int src_height, int out_width, int out_height,
                                     bool keep_aspect) {
  LetterboxGeometry g;
  if (!keep_aspect) {
    g.resized_width = out_width;
    g.resized_height = out_height;
    g.scale_x = static_cast<float>(out_width) / src_width;
    g.scale_y = static_cast<float>(out_height) / src_height;
    return g;
  }
  const float r = std::min(static_cast<float>(out_height) / src_height,
                           static_cast<float>(out_width) / src_width);
  g.resized_width =
      std::max(1, std::min(out_width, static_cast<int>(std::nearbyint(src_width * r))));
  g.resized_height =
      std::max(1, std::min(out_height, static_cast<int>(std::nearbyint(src_height * r))));
  const int left = static_cast<int>(std::nearbyint((out_width - g.resized_width) / 2.0f - 0.1f));
  const int top = static_cast<int>(std::nearbyint((out_height - g.resized_height) / 2.0f - 0.1f));
  g.pad_left = std::max(0, std::min(left, out_width - g.resized_width));
  g.pad_top = std::max(0, std::min(top, out_height - g.resized_height));
  g.scale_x = g.scale_y = r;
  return g;
}

void resize_bilinear(const uint8_t* src, int src_width, int src_height, size_t src_stride,
                     int channels, uint8_t* dst, int dst_width, int dst_height, size_t dst_stride) {
  const float sx = static_cast<float>(src_width) / dst_width;
  const float sy = static_cast<float>(src_height) / dst_height;
  const int C = channels;
  for (int y = 0; y < dst_height; ++y) {
    const float fy = std::min(std::max((y + 0.5f) * sy - 0.5f, 0.0f), src_height - 1.0f);
    const int y0 = static_cast<int>(fy), y1 = std::min(y0 + 1, src_height - 1);
    const float wy = fy - y0;
    const uint8_t* r0 = src + static_cast<size_t>(y0) * src_stride;
    const uint8_t* r1 = src + static_cast<size_t>(y1) * src_stride;
    uint8_t* out = dst + static_cast<size_t>(y) * dst_stride;
    for (int x = 0; x < dst_width; ++x) {
      const float fx = std::min(std::max((x + 0.5f) * sx - 0.5f, 0.0f), src_width - 1.0f);
      const int x0 = static_cast<int>(fx), x1 = std::min(x0 + 1, src_width - 1);
      const float wx = fx - x0;
      for (int ch = 0; ch < C; ++ch) {
        const float top_v = r0[x0 * C + ch] * (1 - wx) + r0[x1 * C + ch] * wx;
        const float bot_v = r1[x0 * C + ch] * (1 - wx) + r1[x1 * C + ch] * wx;
        const float v = top_v * (1 - wy) + bot_v * wy;
        out[x * C + ch] = static_cast<uint8_t>(std::min(255.0f, std::max(0.0f, std::nearbyint(v))));
      }
    }
  }
}

}  // namespace mixnas
