// mixnas' runtime against ONNX Runtime on the same models, 1 thread: the int8 model (.mxr vs its
// QDQ ONNX) and the fp32 model (.mxr vs its float ONNX), YOLOv8n at 320 and yolov8-pico at 160
// (SiLU, trained-like weights; w8a8 and fp32 versions of one architecture), plus any search run
// given (its model.mxr and model.onnx: int8 ratio only). Median latency of the graph on one input,
// the two runtimes' runs interleaved.
// Last line: ORT mixnas_int8/ort_qdq=<r> mixnas_fp32/ort_fp32=<r> (geometric means over models;
// below 1 = mixnas faster).
//   mixnas-bench-ort [--runs N] [RUN_DIR...]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "bench/peers/onnxruntime.h"
#include "core/atomic_file.h"
#include "deploy/export/export.h"
#include "deploy/runtime/session.h"
#include "tests/export/export_fixtures.h"

namespace fs = std::filesystem;
using namespace mixnas;

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Median latencies (ms) of one graph run in each runtime on the same grey letterboxed input,
// runs interleaved (one of ours, one of theirs) so that both see the same machine load.
std::pair<double, double> median_ms(const std::string& mxr, const std::string& onnx, int runs) {
  auto model = rt::Model::load(mxr);
  rt::Session s(model, rt::SessionOptions{});
  const auto& in = model->graph().input;
  std::vector<uint8_t> grey(size_t(in.height) * in.width * 3, 114);
  peers::OrtModel ort(peers::default_onnxruntime_library(MIXNAS_SOURCE_DIR), onnx, 1);
  std::vector<float> x(size_t(3) * in.height * in.width, 114.0f / 255.0f);
  const std::vector<int64_t> shape{1, 3, in.height, in.width};
  std::vector<double> ours, theirs;
  for (int i = 0; i < runs + 5; ++i) {
    // The arena reuses the input's memory: set it before every run, outside the timing.
    s.set_input_image({grey.data(), in.width, in.height, in.width * 3});
    auto t0 = std::chrono::steady_clock::now();
    s.run_graph();
    const double a = ms_since(t0);
    t0 = std::chrono::steady_clock::now();
    ort.run_discard(x, shape);
    const double b = ms_since(t0);
    if (i >= 5) {  // warm-up runs first
      ours.push_back(a);
      theirs.push_back(b);
    }
  }
  return {rt::latency_stats(ours).median_ms, rt::latency_stats(theirs).median_ms};
}

// The w8a8 or fp32 SiLU version of a model YAML, exported to DIR/<tag>.mxr and .onnx.
void export_version(const std::string& yaml, int imgsz, int bits, const fs::path& dir,
                    const std::string& tag) {
  exporter::testing::ArchRecipe r;
  r.acts = {supernet::Act::kSilu};
  r.w_bits = {bits};
  r.a_bits = {bits};
  auto choices = exporter::testing::random_choices(yaml, 80, r, 1);
  auto model = exporter::testing::make_trained_like(yaml, 80, choices, 1, imgsz);
  exporter::ExportOptions o;
  o.imgsz = imgsz;
  write_file_atomic((dir / (tag + ".mxr")).string(), exporter::export_mxr(model, o));
  exporter::OnnxOptions oo;
  oo.float_weights = bits == 32;
  write_file_atomic((dir / (tag + ".onnx")).string(),
                    exporter::onnx_bytes(exporter::model_to_ir(model, o), oo));
}

struct Ratios {
  double log_int8 = 0, log_fp32 = 0;
  int n_int8 = 0, n_fp32 = 0;
};

void bench_pair(const std::string& name, const std::string& mxr, const std::string& onnx, bool int8,
                int runs, Ratios& r) {
  const auto [ours, theirs] = median_ms(mxr, onnx, runs);
  std::printf("%-28s %-5s mixnas %8.3f ms  onnxruntime %8.3f ms  ratio %.3f\n", name.c_str(),
              int8 ? "int8" : "fp32", ours, theirs, ours / theirs);
  std::fflush(stdout);
  (int8 ? r.log_int8 : r.log_fp32) += std::log(ours / theirs);
  ++(int8 ? r.n_int8 : r.n_fp32);
}

}  // namespace

static int run(int argc, char** argv) {
  int runs = 30;
  std::vector<std::string> run_dirs;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (fs::is_directory(a) && fs::exists(fs::path(a) / "model.mxr")) {
      run_dirs.push_back(a);
    } else {
      std::fprintf(stderr,
                   "usage: mixnas-bench-ort [--runs N] [RUN_DIR with model.mxr, model.onnx]...\n"
                   "'%s' is neither\n",
                   a.c_str());
      return 2;
    }
  }
  if (!fs::exists(peers::default_onnxruntime_library(MIXNAS_SOURCE_DIR))) {
    std::fprintf(stderr,
                 "mixnas-bench-ort: no ONNX Runtime at %s (scripts/install_onnxruntime.sh)\n",
                 peers::default_onnxruntime_library(MIXNAS_SOURCE_DIR).c_str());
    return 1;
  }
  const fs::path dir = fs::temp_directory_path() / "mixnas_bench_ort";
  fs::create_directories(dir);
  Ratios r;
  // yolov8n.yaml: the builder reads configs/models/yolov8.yaml at scale n.
  const std::string models = std::string(MIXNAS_SOURCE_DIR) + "/configs/models/";
  for (const auto& [yaml, imgsz] : std::vector<std::pair<std::string, int>>{
           {models + "yolov8n.yaml", 320}, {models + "yolov8-pico.yaml", 160}}) {
    const std::string tag = fs::path(yaml).stem().string() + "@" + std::to_string(imgsz);
    for (int bits : {8, 32}) {
      const std::string name = tag + (bits == 8 ? "_w8a8" : "_fp32");
      export_version(yaml, imgsz, bits, dir, name);
      bench_pair(tag + " silu", (dir / (name + ".mxr")).string(), (dir / (name + ".onnx")).string(),
                 bits == 8, runs, r);
    }
  }
  for (const std::string& d : run_dirs) {
    bench_pair(d, (fs::path(d) / "model.mxr").string(), (fs::path(d) / "model.onnx").string(), true,
               runs, r);
  }
  std::printf("ORT mixnas_int8/ort_qdq=%.3f mixnas_fp32/ort_fp32=%.3f\n",
              std::exp(r.log_int8 / std::max(1, r.n_int8)),
              std::exp(r.log_fp32 / std::max(1, r.n_fp32)));
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mixnas-bench-ort: %s\n", e.what());
    return 1;
  }
}
