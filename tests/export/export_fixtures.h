#pragma once
// Fixed architectures with trained-like weights for the export tests: random choices per site,
// random BN statistics, quantizers calibrated on a forward and then moved off their initial
// values, head biases that give a few detections.
#include <torch/torch.h>

#include <random>
#include <string>
#include <vector>

#include "supernet/model.h"

namespace mixnas::exporter::testing {

struct ArchRecipe {
  std::vector<supernet::Act> acts = {supernet::Act::kRelu, supernet::Act::kRelu6,
                                     supernet::Act::kLeakyRelu, supernet::Act::kHardswish,
                                     supernet::Act::kSilu};
  std::vector<int> w_bits = {32};
  std::vector<int> a_bits = {32};
  // Quantized sites become fp32 (both bits) with this probability.
  double fp32_fraction = 0.0;
};

// Random fixed choices for every site of `model_yaml`.
supernet::ArchChoices random_choices(const std::string& model_yaml, int nc, const ArchRecipe& r,
                                     uint32_t seed);

// Optimizer steps of a fixed model in its exported form (BN folded, frozen statistics) on
// `images` with a few synthetic boxes: weights, biases and learned quantizer steps/offsets move
// as training moves them. Leaves the model in eval mode.
void train_steps(supernet::YoloModel& model, const torch::Tensor& images, uint32_t seed, int steps);
constexpr int kTrainSteps = 3;

// The fixed model of `choices`, with trained-like state (eval mode, BN folded): random BN
// statistics, quantizers calibrated on a forward and moved off their initial values, then
// kTrainSteps optimizer steps (train_steps).
supernet::YoloModel make_trained_like(const std::string& model_yaml, int nc,
                                      const supernet::ArchChoices& choices, uint32_t seed,
                                      int imgsz);

// Image-like RGB pixels [h][w][3].
std::vector<uint8_t> make_image(int h, int w, uint32_t seed);
// [1, 3, h, w] floats pixel * (1/255), as the runtime's float input computes them.
torch::Tensor image_tensor(const std::vector<uint8_t>& rgb, int h, int w);

}  // namespace mixnas::exporter::testing
