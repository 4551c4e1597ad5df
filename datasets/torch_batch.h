#pragma once
// LibTorch view of loader batches, for the trainer. The core of mixnas_datasets stays torch-free.
#include <torch/torch.h>

#include "datasets/loader.h"

namespace mixnas::data {

struct TensorBatch {
  torch::Tensor images;   // [N, 3, H, W], float32 in 0..1 (or uint8 when not normalised)
  torch::Tensor targets;  // [T, 6] float32: batch_idx, cls, cx, cy, w, h (normalised)
};

// Copies a batch into tensors (they own their memory; the batch may be dropped afterwards).
TensorBatch to_tensors(const Batch& batch, bool normalise = true);

}  // namespace mixnas::data
