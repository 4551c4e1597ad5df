#include "datasets/torch_batch.h"

namespace mixnas::data {

TensorBatch to_tensors(const Batch& batch, bool normalise) {
  TensorBatch out;
  auto images =
      torch::from_blob(const_cast<uint8_t*>(batch.images.data()),
                       {batch.size, batch.channels, batch.height, batch.width}, torch::kUInt8);
  out.images = normalise ? images.to(torch::kFloat32).div_(255.0f) : images.clone();
  if (batch.num_targets() == 0) {
    out.targets = torch::zeros({0, 6}, torch::kFloat32);
    return out;
  }
  out.targets = torch::from_blob(const_cast<float*>(batch.targets.data()), {batch.num_targets(), 6},
                                 torch::kFloat32)
                    .clone();
  return out;
}

}  // namespace mixnas::data
