#pragma once
// The one reader and writer of mixnas checkpoints (weights/last.pt, weights/best.pt), used by
// train, val, predict, export and search.
//
// Format mixnas-checkpoint-1, a LibTorch archive holding:
//   format     "mixnas-checkpoint-1"
//   arch_yaml  the arch.yaml of the model's fixed choices (rebuilds the architecture)
//   names      the dataset's class names, one per line
//   model, ema the trained and the EMA weights (ema optional)
// plus what the trainer adds to resume (epoch, optimizer, history; search/trainer.cpp).
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "supernet/model.h"

namespace mixnas::supernet {

constexpr const char* kCheckpointFormat = "mixnas-checkpoint-1";

// True when some site of the (fixed) model has weight or activation bits below 32: it trains
// quantization-aware and runs with BN folded before its weight quantizers (val, predict, export).
bool has_quantized_sites(const YoloModel& model);

// Writes the entries every reader needs: format, arch_yaml, names, model and (when given) ema.
void write_checkpoint_model(torch::serialize::OutputArchive& archive, const YoloModel& model,
                            const YoloModel* ema, const std::vector<std::string>& class_names);

struct TrainedModel {
  YoloModel model{nullptr};
  std::vector<std::string> class_names;  // empty when the file holds none
};

// Reads a weights file into its model, in eval mode, with BN folded when the model is quantized
// (how it was validated). The architecture is the checkpoint's arch_yaml, or `arch` (an arch.yaml
// or model YAML) when given, which also reads plain model weights without a format tag. The EMA
// weights are read when present, else the trained ones; every tensor's name and shape is checked.
// Throws mixnas::Error naming the file and what to do.
TrainedModel load_trained_model(const std::string& path,
                                const std::optional<std::string>& arch = std::nullopt);

}  // namespace mixnas::supernet
