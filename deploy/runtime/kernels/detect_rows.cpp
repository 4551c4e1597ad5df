#include "deploy/runtime/kernels/detect_rows.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "deploy/runtime/kernels/activation.h"

namespace mixnas::rt {

void decode_v8_boxes(const float* bins, int64_t bins_stride, int n, int reg_max, int64_t cell0,
                     int width, float stride, float* out, int64_t out_stride) {
  float e[4 * 64];
  const int per_cell = 4 * reg_max;
  for (int i = 0; i < n; ++i) {
    const float* b = bins + i * bins_stride;
    for (int g = 0; g < per_cell; g += reg_max) {
      const float mx = *std::max_element(b + g, b + g + reg_max);
      for (int k = 0; k < reg_max; ++k) e[g + k] = b[g + k] - mx;
    }
    exp_inplace(e, static_cast<size_t>(per_cell));
    float dist[4];
    for (int side = 0; side < 4; ++side) {
      const float* p = e + side * reg_max;
      float sum = 0.0f, expect = 0.0f;
      for (int k = 0; k < reg_max; ++k) {
        sum += p[k];
        expect += p[k] * static_cast<float>(k);
      }
      dist[side] = expect / sum;
    }
    const int64_t cell = cell0 + i;
    const float ax = static_cast<float>(cell % width) + 0.5f;
    const float ay = static_cast<float>(cell / width) + 0.5f;
    float* row = out + i * out_stride;
    row[0] = (ax - dist[0]) * stride;
    row[1] = (ay - dist[1]) * stride;
    row[2] = (ax + dist[2]) * stride;
    row[3] = (ay + dist[3]) * stride;
  }
}

void decode_v8_scores(const float* logits, int64_t logits_stride, int n, int nc, float* out,
                      int64_t out_stride) {
  for (int i = 0; i < n; ++i) {
    float* row = out + i * out_stride;
    std::memcpy(row, logits + i * logits_stride, static_cast<size_t>(nc) * sizeof(float));
    apply_activation({Activation::kSigmoid}, row, static_cast<size_t>(nc));
  }
}

void decode_v8_best(const float* logits, int64_t logits_stride, int n, int nc, float* out,
                    int64_t out_stride) {
  thread_local std::vector<float> scores;
  scores.resize(static_cast<size_t>(nc));
  for (int i = 0; i < n; ++i) {
    decode_v8_scores(logits + i * logits_stride, logits_stride, 1, nc, scores.data(), nc);
    const int best = best_class(scores.data(), nc);
    out[i * out_stride] = scores[static_cast<size_t>(best)];
    out[i * out_stride + 1] = static_cast<float>(best);
  }
}

}  // namespace mixnas::rt
