#pragma once
// The exponential moving average of a model's weights (ultralytics' ModelEMA): what training
// validates and saves when `ema` is on.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "supernet/model.h"

namespace mixnas::training {

// A copy of `model` to average into: the same architecture, parameters and buffers, in eval mode,
// no parameter requiring gradients.
supernet::YoloModel make_ema_model(const supernet::YoloModel& model);

// The EMA model's tensors beside the trained model's, matched by name: floating point buffers and
// parameters the model trains are averaged, the others (BN's num_batches_tracked, the fixed DFL
// projection) copied. Looked up once per epoch, not per step
// (hundreds of small tensors).
struct EmaPairs {
  std::vector<torch::Tensor> ema_float, model_float, ema_other, model_other;
};
EmaPairs ema_pairs_of(const supernet::YoloModel& ema, const supernet::YoloModel& model);

// The decay of update number `updates` (1-based): ramps up to 0.9999 over the first few thousand
// updates, so the early average follows the model closely.
double ema_decay(int64_t updates);

// ema = d * ema + (1 - d) * model, in two multi-tensor ops.
void update_ema(const EmaPairs& pairs, double d);

}  // namespace mixnas::training
