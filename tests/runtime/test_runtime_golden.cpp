// The exported models of tests/data/runtime_golden/ (1-bit weights, 2-bit activations, fp32 layers
// among quantized ones, every activation) compute on this build what the golden runs recorded on
// x86-64: every activation tensor up to the head outputs bit for bit (integer codes and floats,
// fp32 convs included), the class scores bit for bit, the same detections. The same files are
// checked on x86-64 (widest ISA, and again with AVX-512 masked) and on aarch64 under qemu (NEON,
// with and without the dot-product extension), so host and device runtimes agree.
//
// Why bits agree across ISAs: integer kernels are exact; epilogues and activations use only
// correctly rounded IEEE operations in a fixed order (kernels/conv.h, kernels/activation.h); the
// fp32 GEMM kernels of AVX-512, AVX2+FMA and NEON accumulate each output along the reduction in
// the same order with fused multiply-adds. Not covered: x86-64 without FMA (SSE2 rows), whose fp32
// convs round every product and so differ in the last bits (measured: codes downstream of them
// then move by one step).
//
// Box decoding (ops.cpp, decode_yolov8_level) is compiled with -ffp-contract=off: GCC would
// otherwise contract the DFL expectation `expect += p[i] * i` into fused multiply-adds on aarch64
// but not on baseline x86-64 (measured before the flag: 76-80 of 588 box values differed, by at
// most 6.1e-5 px). With it, boxes agree bit for bit as well.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "deploy/runtime/kernels/activation.h"
#include "tests/runtime/golden.h"

using namespace mixnas::rt;
namespace fs = std::filesystem;

namespace {

const fs::path kDir = fs::path(MIXNAS_TEST_DATA_DIR) / "runtime_golden";

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

constexpr double kBoxTolerance = 0.0;  // input pixels; see the top of the file
const golden::Tolerance kTolerance{kBoxTolerance, /*score=*/0.0};

int test_threads() {
  const char* env = std::getenv("MIXNAS_TEST_THREADS");
  return env && std::atoi(env) > 0 ? std::atoi(env) : 2;
}

std::vector<std::string> golden_models() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(kDir))
    if (e.path().extension() == ".golden") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("runtime golden: exported models compute the recorded bits", "[runtime][golden]") {
  const std::vector<std::string> names = golden_models();
  // The generator writes two models; fewer means a file went missing.
  REQUIRE(names.size() >= 2);
  INFO("activations: " << activation_isa_name());
  for (const std::string& name : names) {
    for (int threads : {1, test_threads()}) {
      INFO(name << ", " << threads << " thread(s)");
      const fs::path base = kDir / name;
      const golden::Record expected =
          golden::parse(read_all(base.string() + ".golden"), base.string() + ".golden");
      auto model = Model::load(base.string() + ".mxr");
      SessionOptions options;
      options.threads = threads;
      const golden::Record actual = golden::record_run(model, expected.input_seed, options);
      REQUIRE(actual.tensors.size() > 10);
      CHECK(golden::compare(model->graph(), expected, actual, kTolerance) == "");
    }
  }
}
