// The exported ONNX files in the runtimes YOLO users reach for, against mixnas' own runtime on the
// same letterboxed images (the fixture's fmnist-det val images):
// [ort]    ONNX Runtime (bench/peers/onnxruntime.h) runs the decoded QDQ ONNX of quantized models
//          (random architectures with 1-8-bit layers, a YOLOv5n, the fixture's trained mixed-bit
//          model) and the float ONNX of fp32 models; after the same NMS (score threshold 0.05;
//          0.0005 for the barely trained fixture model; no max_det cut), every detection with a
//          score min(0.02, threshold) above the threshold has a twin of the same class in the
//          .mxr's: boxes within 1 px, scores within 0.01, both ways.
// [opencv] OpenCV DNN (Debian's 4.6) runs the float ONNX of fp32 models: output0 equals the
//          runtime's decoded table within 1e-4 relative.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <opencv2/dnn.hpp>

#include "bench/peers/onnxruntime.h"
#include "core/atomic_file.h"
#include "datasets/image.h"
#include "deploy/export/export.h"
#include "tests/ecosystem/onnx_peers.h"
#include "tests/export/export_fixtures.h"

// After LibTorch: glog defines its own CHECK, Catch2 must win.
#undef CHECK
#include <catch2/catch.hpp>

using namespace mixnas;
using namespace mixnas::ecosystem;
namespace fs = std::filesystem;
namespace ex = mixnas::exporter;

namespace {

const std::string kPico = std::string(MIXNAS_SOURCE_DIR) + "/configs/models/yolov8-pico.yaml";
const std::string kV5 = std::string(MIXNAS_SOURCE_DIR) + "/configs/models/yolov5n.yaml";
constexpr int kNc = 3;
constexpr float kConf = 0.05f, kIou = 0.45f;

struct Recipe {
  std::string name, yaml;
  std::vector<int> w_bits, a_bits;
  double fp32_fraction;
  uint32_t seed;
  int imgsz;
  bool no_relu6 = false;  // OpenCV 4.6 rejects opset-11+ Clip (min/max as inputs): ReLU6's form
};

// A random architecture with trained-like state, exported to .mxr and decoded QDQ and float ONNX.
Exported export_random(const Recipe& r, const fs::path& dir) {
  ex::testing::ArchRecipe recipe;
  recipe.w_bits = r.w_bits;
  recipe.a_bits = r.a_bits;
  recipe.fp32_fraction = r.fp32_fraction;
  if (r.no_relu6)
    recipe.acts = {supernet::Act::kRelu, supernet::Act::kLeakyRelu, supernet::Act::kHardswish,
                   supernet::Act::kSilu};
  auto choices = ex::testing::random_choices(r.yaml, kNc, recipe, r.seed);
  auto model = ex::testing::make_trained_like(r.yaml, kNc, choices, r.seed, r.imgsz);
  ex::ExportOptions o;
  o.imgsz = r.imgsz;
  o.conf = kConf;
  o.iou = kIou;
  Exported e{r.name,
             (dir / (r.name + ".mxr")).string(),
             (dir / (r.name + ".qdq.onnx")).string(),
             (dir / (r.name + ".float.onnx")).string(),
             r.w_bits == std::vector<int>{32},
             r.yaml == kV5,
             kNc};
  write_file_atomic(e.mxr, ex::export_mxr(model, o));
  const ex::IrModel ir = ex::model_to_ir(model, o);
  ex::OnnxOptions qdq, flt;
  flt.float_weights = true;
  write_file_atomic(e.onnx_qdq, ex::onnx_bytes(ir, qdq));
  write_file_atomic(e.onnx_float, ex::onnx_bytes(ir, flt));
  return e;
}

const std::vector<Exported>& exported_models() {
  static std::vector<Exported> models = [] {
    const fs::path dir = fs::temp_directory_path() / "mixnas_test_onnx_peers";
    fs::create_directories(dir);
    std::vector<Exported> m;
    for (const Recipe& r : std::vector<Recipe>{
             {"mixed_w248_a48_a", kPico, {2, 4, 8}, {4, 8}, 0.15, 31, 64},
             {"mixed_w248_a48_b", kPico, {2, 4, 8}, {4, 8}, 0.15, 32, 64},
             {"lowbit_w12_a24", kPico, {1, 2}, {2, 4}, 0.0, 33, 64},
             {"w8a8", kPico, {8}, {8}, 0.0, 34, 64},
             {"fp32_a", kPico, {32}, {32}, 0.0, 35, 64, true},
             {"fp32_b", kPico, {32}, {32}, 0.0, 36, 64, true},
             {"yolov5n_w48_a8", kV5, {4, 8}, {8}, 0.0, 37, 128},
         })
      m.push_back(export_random(r, dir));
    const fs::path fx = fixture_dir();
    if (!fixture_dir().empty())
      m.push_back({"trained_mixed (fixture)", (fx / "model.mxr").string(),
                   (fx / "model.onnx").string(), (fx / "float" / "model.onnx").string(), false,
                   false, 10, 0.0005f});  // two short epochs: low scores
    return m;
  }();
  return models;
}

struct Image {
  data::Image pixels;
  rt::ImageView view() const {
    return {pixels.pixels.data(), pixels.width, pixels.height, pixels.width * 3};
  }
};

const std::vector<Image>& images() {
  static std::vector<Image> out = [] {
    std::vector<Image> v;
    for (const std::string& p : fixture_images()) v.push_back({data::load_image(p)});
    return v;
  }();
  if (out.empty())
    FAIL(
        "no test images: set MIXNAS_ECO_FIXTURE to the folder tests/ecosystem/make_models.sh "
        "wrote");
  return out;
}

rt::NmsAttrs nms_attrs(float conf) {
  rt::NmsAttrs a;
  a.score_threshold = conf;
  a.iou_threshold = kIou;
  // No cut at max_det: the 300th detection of one side may be the 301st of the other.
  a.max_detections = 1 << 20;
  return a;
}

std::vector<rt::Detection> to_image(const std::vector<rt::Detection>& dets,
                                    const rt::LetterboxInfo& lb) {
  std::vector<rt::Detection> out;
  for (const auto& d : dets) out.push_back(rt::map_to_original(d, lb));
  return out;
}

// The runtime's detections on one image: its decoded table through the shared NMS.
std::vector<rt::Detection> runtime_detections(rt::Session& s, const Image& img, float conf,
                                              rt::LetterboxInfo* lb) {
  *lb = s.set_input_image(img.view());
  s.run_graph();
  const std::vector<float> rows = runtime_rows(s);
  const int cols = 4 + int(s.model().graph().output.class_names.size());
  return to_image(rt::nms(rows.data(), int64_t(rows.size()) / cols, cols, nms_attrs(conf)), *lb);
}

std::string ort_library() {
  return peers::default_onnxruntime_library(MIXNAS_SOURCE_DIR);
}

// One model through ONNX Runtime (`onnx`) and the runtime on every image; returns the report.
MatchReport compare_with_ort(const Exported& e, const std::string& onnx) {
  auto model = rt::Model::load(e.mxr);
  rt::SessionOptions keep_table;  // runtime_rows reads the whole decoded table
  keep_table.head = rt::HeadMemory::kTable;
  rt::Session session(model, keep_table);
  peers::OrtModel ort(ort_library(), onnx, 1);
  MatchReport total;
  const auto& in = model->graph().input;
  for (const Image& img : images()) {
    rt::LetterboxInfo lb;
    const auto ours = runtime_detections(session, img, e.conf, &lb);
    rt::LetterboxInfo lb_onnx;
    const std::vector<float> x = onnx_input(*model, img.view(), &lb_onnx);
    const auto out = ort.run(x, {1, 3, in.height, in.width});
    REQUIRE(out.size() == 1);
    const std::vector<float> rows = rows_from_output0(out[0].values, out[0].shape, e.v5, e.nc);
    const auto theirs = to_image(
        rt::nms(rows.data(), int64_t(rows.size()) / (4 + e.nc), 4 + e.nc, nms_attrs(e.conf)),
        lb_onnx);
    const MatchReport r = match(ours, theirs, e.conf, std::min(0.02f, e.conf), 1.0f, 0.01f);
    total.compared += r.compared;
    total.matched += r.matched;
    total.max_box = std::max(total.max_box, r.max_box);
    total.max_score = std::max(total.max_score, r.max_score);
    if (total.first_miss.empty()) total.first_miss = r.first_miss;
  }
  return total;
}

}  // namespace

TEST_CASE("ONNX Runtime runs the decoded ONNX exports with the .mxr's detections", "[ort]") {
  if (!fs::exists(ort_library()))
    FAIL("ONNX Runtime not found at " + ort_library() + " (scripts/install_onnxruntime.sh)");
  std::printf("ONNX Runtime %s, %zu images\n",
              peers::OrtModel(ort_library(), exported_models()[0].onnx_qdq, 1).version().c_str(),
              images().size());
  int compared = 0;
  for (const Exported& e : exported_models()) {
    const std::string& onnx = e.fp32 ? e.onnx_float : e.onnx_qdq;
    const MatchReport r = compare_with_ort(e, onnx);
    std::printf("  %-24s %-5s %3d/%3d detections matched, max box diff %.3f px, score %.4f\n",
                e.name.c_str(), e.fp32 ? "float" : "QDQ", r.matched, r.compared, r.max_box,
                r.max_score);
    INFO(e.name << " (" << onnx << "): first unmatched " << r.first_miss);
    CHECK(r.matched == r.compared);
    compared += r.compared;
  }
  CHECK(compared >= 20);  // enough detections for the comparison to mean something
}

TEST_CASE("OpenCV DNN runs the decoded float ONNX as the runtime's fp32 path computes it",
          "[opencv]") {
  int models = 0;
  for (const Exported& e : exported_models()) {
    if (!e.fp32) continue;
    auto model = rt::Model::load(e.mxr);
    rt::SessionOptions keep_table;  // runtime_rows reads the whole decoded table
    keep_table.head = rt::HeadMemory::kTable;
    rt::Session session(model, keep_table);
    cv::dnn::Net net = cv::dnn::readNetFromONNX(e.onnx_float);
    const auto& in = model->graph().input;
    double max_rel = 0;
    int64_t elements = 0;
    for (const Image& img : images()) {
      rt::LetterboxInfo lb;
      session.set_input_image(img.view());
      session.run_graph();
      const std::vector<float> ours = runtime_rows(session);
      std::vector<float> x = onnx_input(*model, img.view(), &lb);
      net.setInput(cv::Mat({1, 3, in.height, in.width}, CV_32F, x.data()));
      cv::Mat out = net.forward("output0");
      REQUIRE(out.dims == 3);
      const std::vector<int64_t> shape{out.size[0], out.size[1], out.size[2]};
      const std::vector<float> values(out.ptr<float>(), out.ptr<float>() + out.total());
      // Compare in the ONNX layout's own terms: cx, cy, w, h and scores, from the runtime's rows.
      const std::vector<float> theirs = rows_from_output0(values, shape, false, e.nc);
      REQUIRE(theirs.size() == ours.size());
      for (size_t i = 0; i < ours.size(); ++i) {
        const double d = std::fabs(double(theirs[i]) - ours[i]);
        max_rel = std::max(max_rel, d / std::max(1.0, std::fabs(double(ours[i]))));
      }
      elements += int64_t(ours.size());
    }
    std::printf("  OpenCV %s %-8s %lld values, max difference %.2e relative (of max(1, |x|))\n",
                CV_VERSION, e.name.c_str(), static_cast<long long>(elements), max_rel);
    CHECK(max_rel <= 1e-4);
    ++models;
  }
  CHECK(models >= 2);
}
