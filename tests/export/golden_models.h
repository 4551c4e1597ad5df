#pragma once
// The models of tests/data/runtime_golden/: fixed yolov8-femto architectures (a half-width
// yolov8-pico, tests/data/runtime_golden/yolov8-femto.yaml) with mixed activations and bits, and
// weights that do not depend on the machine that makes them:
// - every conv weight, conv bias and BN tensor comes from a splitmix64 stream keyed by the
//   module's name (no LibTorch RNG);
// - the quantizers are calibrated by one forward (whose float sums may differ in the last bit
//   between CPUs), then every step and offset is rounded to 6 significant bits, which removes
//   those differences (a value would have to sit within ~1e-7 of a rounding midpoint to keep one).
// So the exported packages are the same bytes on every x86-64 machine with this LibTorch, and
// test_runtime_golden_export checks that they are.
#include <cstdint>
#include <string>
#include <vector>

#include "deploy/export/export.h"
#include "supernet/model.h"

namespace mixnas::exporter::testing {

constexpr int kGoldenImgsz = 64;
constexpr uint64_t kGoldenInputSeed = 1;

struct GoldenModel {
  std::string name;         // file stem in tests/data/runtime_golden/
  std::string description;  // what it covers
};
const std::vector<GoldenModel>& golden_models();

std::string golden_dir();         // tests/data/runtime_golden in the source tree
std::string golden_model_yaml();  // its yolov8-femto.yaml

// The model `name` of golden_models(): eval mode, BN folded, quantizers calibrated and rounded.
// Throws mixnas::Error for an unknown name.
supernet::YoloModel make_golden_model(const std::string& name);

ExportOptions golden_export_options();

// The golden input image as the [1, 3, H, W] float tensor pixel * (1/255).
torch::Tensor golden_input_tensor();

}  // namespace mixnas::exporter::testing
