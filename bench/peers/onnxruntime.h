#pragma once
// ONNX Runtime as a peer: its CPU library (libonnxruntime.so.1, from the npm package
// onnxruntime-node that scripts/install_onnxruntime.sh puts into .deps/) loaded at run time
// through its C API, so that mixnas builds and runs without it. Used by the ecosystem tests (the
// exported ONNX files run in ONNX Runtime) and by mixnas-bench-ort (latency against the runtime).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mixnas::peers {

// Where the library is looked for: $MIXNAS_ORT_LIBRARY, else the project-local install
// (<source>/.deps/node_modules/onnxruntime-node/bin/napi-v6/linux/<arch>/libonnxruntime.so.1).
std::string default_onnxruntime_library(const std::string& source_dir);

struct OrtTensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// One ONNX Runtime session on one model file: a float input, float outputs, CPU execution
// provider, all graph optimizations (ORT fuses QDQ into int8 kernels at that level).
class OrtModel {
 public:
  // Throws mixnas::Error naming the library or the model when either cannot be loaded.
  OrtModel(const std::string& library, const std::string& onnx_path, int threads);
  ~OrtModel();
  OrtModel(const OrtModel&) = delete;
  OrtModel& operator=(const OrtModel&) = delete;

  // Runs the model on `input` (shape `shape`, NCHW) and returns every output, in graph order.
  std::vector<OrtTensor> run(const std::vector<float>& input, const std::vector<int64_t>& shape);
  // Runs without copying outputs out (for timing).
  void run_discard(const std::vector<float>& input, const std::vector<int64_t>& shape);
  std::string version() const;
  const std::vector<std::string>& output_names() const { return output_names_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> input_names_, output_names_;
};

}  // namespace mixnas::peers
