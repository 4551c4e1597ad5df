#pragma once
// NWOT, the zero-cost proxy of Mellor et al., "Neural Architecture Search without Training"
// (ICML 2021): how differently a network's activations partition the inputs of one mini-batch.
// Each image i gets a binary code c_i over all N_A activation units of the network (1 where the
// unit's output is positive); the kernel K_H[i][j] = N_A - Hamming(c_i, c_j) counts the units on
// which images i and j agree, and the score is log|det K_H|. Higher: inputs better told apart.
// ActNAS (arXiv 2410.10887) ranks activation candidates with it (docs/search.md#greedy).
#include <torch/torch.h>

#include "supernet/model.h"

namespace mixnas::search {

// K_H of binary codes [B, N] (any dtype, values 0 or 1): [B, B] float64,
// K = c c^T + (1 - c)(1 - c)^T (agreements on ones plus agreements on zeros).
torch::Tensor nwot_kernel(const torch::Tensor& codes);

// log|det K| of a kernel matrix (slogdet in float64); -inf when K is singular.
double nwot_logdet(const torch::Tensor& kernel);

// The kernel summed over every activation output of a network, one output at a time.
class NwotKernel {
 public:
  explicit NwotKernel(int64_t batch);
  // Adds the codes (output > 0) of one activation output [B, ...].
  void add(const torch::Tensor& activation_output);
  const torch::Tensor& kernel() const { return kernel_; }
  int64_t units() const { return units_; }  // N_A so far
  double score() const { return nwot_logdet(kernel_); }

 private:
  torch::Tensor kernel_;
  int64_t units_ = 0;
};

// The NWOT score of `model` (its current weights, eval mode, no gradients) on `images` [B,3,H,W]:
// every activation of every Conv block is one code block.
double nwot_score(supernet::YoloModel& model, const torch::Tensor& images);

}  // namespace mixnas::search
