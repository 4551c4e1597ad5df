#pragma once
// What the trainer and the supernet search share around their optimizers: the parameter groups
// (one rule for which tensor decays), the optimizer of a group list, the learning-rate schedule,
// and the steps after backward (gradient clipping) and after the optimizer (quantizer steps kept
// positive).
#include <torch/torch.h>

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "supernet/model.h"

namespace mixnas::training {

// Quantizer steps and offsets train in their own optimizer group: no weight decay and a learning
// rate of lr x kQuantLrScale. Adam moves a parameter by about its learning rate per step whatever
// the gradient's size, and a weight step is ~1e-4..1e-2: at the weights' rate it would overshoot
// and turn negative within a few steps.
constexpr double kQuantLrScale = 0.02;

// What a parameter is, for its optimizer group (as ultralytics groups them, plus mixnas' own).
enum class ParamClass {
  kArch,   // architecture logits (searched, never trained as weights)
  kQuant,  // quantizer steps and offsets (no decay, lr x kQuantLrScale)
  kBias,   // names ending in "bias" (no decay)
  kNorm,   // other tensors of one dimension: norm weights (no decay)
  kDecay,  // the rest: conv weights (weight decay)
};

struct ClassifiedParam {
  torch::Tensor tensor;
  ParamClass cls;
};

// Every parameter of `model`, in named_parameters order, with its class.
std::vector<ClassifiedParam> classify_parameters(const supernet::YoloModel& model);
// The tensors of `params` of the given classes, in their order.
std::vector<torch::Tensor> of_classes(const std::vector<ClassifiedParam>& params,
                                      std::initializer_list<ParamClass> classes);

struct ParamGroupSpec {
  std::vector<torch::Tensor> params;
  double weight_decay = 0;
};
// "SGD" (Nesterov momentum `momentum`) or "AdamW" (betas momentum, 0.999) over `groups`, every
// group at lr0 with its own weight decay.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::string& name, double lr0,
                                                        double momentum,
                                                        const std::vector<ParamGroupSpec>& groups);

// The learning-rate factor of (0-based) `epoch` of `epochs`: from 1 down towards `lrf`, along a
// half cosine or ("linear") a line.
double schedule_factor(const std::string& schedule, double lrf, int epochs, double epoch);

// Scales the gradients of `params` so their global L2 norm is at most max_norm, as
// torch::nn::utils::clip_grad_norm_ does, with multi-tensor ops (one call instead of a few per
// tensor: hundreds of small tensors per step).
void clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

// Keeps every learned step positive after an optimizer step (a projection; LSQ needs s > 0).
void project_quantizer_steps(supernet::YoloModel& model);

}  // namespace mixnas::training
