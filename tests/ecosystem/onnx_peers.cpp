#include "tests/ecosystem/onnx_peers.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace mixnas::ecosystem {
namespace fs = std::filesystem;

std::string fixture_dir() {
  const char* d = std::getenv("MIXNAS_ECO_FIXTURE");
  return d ? d : "";
}

std::vector<std::string> fixture_images() {
  std::vector<std::string> out;
  const fs::path val = fs::path(fixture_dir()) / "ds" / "images" / "val";
  if (fixture_dir().empty() || !fs::is_directory(val)) return out;
  for (const auto& e : fs::directory_iterator(val))
    if (e.path().extension() == ".png") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<float> onnx_input(const rt::Model& model, const rt::ImageView& image,
                              rt::LetterboxInfo* info) {
  const rt::InputSpec& spec = model.graph().input;
  std::vector<uint8_t> hwc(size_t(spec.height) * spec.width * 3);
  *info = rt::letterbox(image, spec, hwc.data());
  const size_t plane = size_t(spec.height) * spec.width;
  std::vector<float> chw(3 * plane);
  for (size_t p = 0; p < plane; ++p)
    for (size_t c = 0; c < 3; ++c) chw[c * plane + p] = float(hwc[p * 3 + c]) * spec.pixel_scale;
  return chw;
}

std::vector<float> rows_from_output0(const std::vector<float>& out,
                                     const std::vector<int64_t>& shape, bool v5, int nc) {
  const int cols = 4 + nc;
  if (shape.size() != 3 || shape[0] != 1 || (v5 ? shape[2] != 5 + nc : shape[1] != cols))
    throw Error("output0 has an unexpected shape for nc=" + std::to_string(nc));
  const int64_t n = v5 ? shape[1] : shape[2];
  std::vector<float> rows(size_t(n) * cols);
  for (int64_t i = 0; i < n; ++i) {
    float* r = &rows[size_t(i) * cols];
    // v8: channel-major [4 + nc, N]; v5: row-major [N, 5 + nc].
    auto at = [&](int k) { return v5 ? out[size_t(i * (5 + nc) + k)] : out[size_t(k * n + i)]; };
    const float cx = at(0), cy = at(1), w = at(2), h = at(3);
    r[0] = cx - w / 2;
    r[1] = cy - h / 2;
    r[2] = cx + w / 2;
    r[3] = cy + h / 2;
    for (int k = 0; k < nc; ++k) r[4 + k] = v5 ? at(4) * at(5 + k) : at(4 + k);
  }
  return rows;
}

std::vector<float> runtime_rows(const rt::Session& session) {
  const rt::Graph& g = session.model().graph();
  const int table = g.output.tensors.at(size_t(g.output.detections - 1));
  const std::vector<uint8_t> bytes = session.tensor_bytes(table);
  std::vector<float> rows(bytes.size() / sizeof(float));
  std::memcpy(rows.data(), bytes.data(), rows.size() * sizeof(float));
  return rows;
}

namespace {
bool twin(const rt::Detection& d, const std::vector<rt::Detection>& others, float box_tol,
          float score_tol, MatchReport& r) {
  // The nearest detection of the same class (overlapping boxes of one class may sit within the
  // tolerance of each other).
  const rt::Detection* best = nullptr;
  float best_box = 0;
  for (const rt::Detection& o : others) {
    if (o.class_id != d.class_id || std::fabs(o.score - d.score) > score_tol) continue;
    const float box = std::max({std::fabs(o.x1 - d.x1), std::fabs(o.y1 - d.y1),
                                std::fabs(o.x2 - d.x2), std::fabs(o.y2 - d.y2)});
    if (box <= box_tol && (!best || box < best_box)) {
      best = &o;
      best_box = box;
    }
  }
  if (!best) return false;
  r.max_box = std::max(r.max_box, double(best_box));
  r.max_score = std::max(r.max_score, double(std::fabs(best->score - d.score)));
  return true;
}
}  // namespace

MatchReport match(const std::vector<rt::Detection>& a, const std::vector<rt::Detection>& b,
                  float threshold, float margin, float box_tol, float score_tol) {
  MatchReport r;
  for (int side = 0; side < 2; ++side) {
    const auto& from = side ? b : a;
    const auto& to = side ? a : b;
    for (const rt::Detection& d : from) {
      if (d.score < threshold + margin) continue;
      ++r.compared;
      if (twin(d, to, box_tol, score_tol, r)) {
        ++r.matched;
      } else if (r.first_miss.empty()) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "%s: class %d score %.4f box [%.1f %.1f %.1f %.1f]",
                      side ? "ONNX" : "mxr", d.class_id, d.score, d.x1, d.y1, d.x2, d.y2);
        r.first_miss = buf;
      }
    }
  }
  return r;
}

}  // namespace mixnas::ecosystem
