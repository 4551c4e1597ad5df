#pragma once
// What the ONNX peer tests share: models exported to .mxr and decoded ONNX, the letterboxed input
// as the ONNX graph takes it, the decoded output0 turned into the runtime's rows, and detection
// matching.
#include <string>
#include <vector>

#include "deploy/runtime/session.h"

namespace mixnas::ecosystem {

struct Exported {
  std::string name;
  std::string mxr, onnx_qdq, onnx_float;
  bool fp32 = false;  // every layer float: the float ONNX computes what the runtime does
  bool v5 = false;
  int nc = 0;
  float conf = 0.05f;  // score threshold of the NMS both sides run
};

// Test images: the fixture's val images (fmnist-det, 64 x 64 PNG) when $MIXNAS_ECO_FIXTURE names
// the fixture folder, else none (the caller fails).
std::vector<std::string> fixture_images();
std::string fixture_dir();

// The letterboxed image as the ONNX input [1, 3, H, W] (pixel / 255), and how it maps back.
std::vector<float> onnx_input(const rt::Model& model, const rt::ImageView& image,
                              rt::LetterboxInfo* info);

// output0 of a decoded ONNX (v8 [1, 4 + nc, N] cx cy w h; v5 [1, N, 5 + nc] with objectness) as
// the runtime's decoded rows [N, 4 + nc]: x1 y1 x2 y2 then class scores (v5: objectness * class).
std::vector<float> rows_from_output0(const std::vector<float>& out,
                                     const std::vector<int64_t>& shape, bool v5, int nc);

// The runtime's decoded table [N, 4 + nc] after run_graph().
std::vector<float> runtime_rows(const rt::Session& session);

struct MatchReport {
  int compared = 0, matched = 0;
  double max_box = 0, max_score = 0;
  std::string first_miss;
};
// Every detection of `a` with score >= threshold + margin has a twin in `b` (same class, every
// coordinate within box_tol px, score within score_tol), and the same from `b` to `a`.
MatchReport match(const std::vector<rt::Detection>& a, const std::vector<rt::Detection>& b,
                  float threshold, float margin, float box_tol, float score_tol);

}  // namespace mixnas::ecosystem
