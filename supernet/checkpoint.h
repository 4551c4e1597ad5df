#pragma once
// The one reader and writer of mixnas checkpoints (weights/last.pt, weights/best.pt), used by
// train, val, predict, export and search.
//
// Format mixnas-checkpoint-1, a LibTorch archive holding:
//   format     "mixnas-checkpoint-1"
//   arch_yaml  the arch.yaml of the model's fixed choices (rebuilds the architecture)
//   names      the dataset's class names, one per line
//   model, ema the trained and the EMA weights (ema optional)
// plus what the trainer adds to resume (epoch, optimizer, history; training/trainer.cpp).
//
// Every archive (these and the search's supernet checkpoints) is written by save_archive and read
// by open_archive: serialized in memory, written atomically with its failures reported (a full
// disk never reaches LibTorch's writer, which aborts on one), and on reading checked whole against
// the CRC-32 of every record (LibTorch's reader does not check them), so a truncated or corrupted
// file is refused, never loaded. Weights, the search's supernet too, are read by load_weights,
// every tensor's name and shape checked.
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

// Writes `archive` to `path` atomically. Throws mixnas::Error naming the file and the cause (disk
// full, file size limit); the previous file is then kept and no temporary is left.
void save_archive(torch::serialize::OutputArchive& archive, const std::string& path);

// Reads `path` into `archive` after checking every record's CRC-32. `what` names the kind of file
// in errors ("checkpoint"). Throws mixnas::Error naming the file when it is missing, truncated,
// corrupted or not a LibTorch archive.
void open_archive(torch::serialize::InputArchive& archive, const std::string& path,
                  const std::string& what = "checkpoint");

// Writes the entries every reader needs: format, arch_yaml, names, model and (when given) ema.
// Throws mixnas::Error, writing nothing, when a weight of either model is NaN or infinite.
void write_checkpoint_model(torch::serialize::OutputArchive& archive, const YoloModel& model,
                            const YoloModel* ema, const std::vector<std::string>& class_names);

// For --resume: throws mixnas::Error naming both sides unless the checkpoint at `path` has this
// build's format, the class count of `model` and `class_names`, and the same model (the model
// YAML's text, its scale and every site's choice, compared by hash).
void check_resumable(torch::serialize::InputArchive& archive, const std::string& path,
                     const YoloModel& model, const std::vector<std::string>& class_names);

// Copies the weights stored under `key` into `model`, every tensor's name and shape checked.
// Throws mixnas::Error naming the file, the first misfit and `remedy` (what to do; empty: give the
// matching arch.yaml with --arch).
void load_weights(torch::serialize::InputArchive& archive, const std::string& key, YoloModel& model,
                  const std::string& path, const std::string& remedy = "");

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
