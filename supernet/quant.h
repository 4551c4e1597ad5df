#pragma once
// Fake quantizers of docs/numerics.md: LSQ for weights (per output channel, symmetric, signed) and
// LSQ+ for activations (per tensor, unsigned codes with an integer zero point). Bits 1..8, or
// kFloatBits (32) for no quantization. Rounding is half to even everywhere (torch::round).
#include <torch/torch.h>

#include <string>
#include <vector>

namespace mixnas::supernet {

constexpr int kFloatBits = 32;

// Throws mixnas::Error naming `where` unless bits is 1..8 or 32.
void check_bits(int bits, const std::string& where);

// Integer weight codes (float tensor holding integers) for per-channel steps `step` ([C,1,1,1] or
// broadcastable): b >= 2: clamp(round(w / s), -2^(b-1), 2^(b-1) - 1); b = 1: w >= 0 ? +1 : -1.
torch::Tensor weight_codes(const torch::Tensor& w, const torch::Tensor& step, int bits);
// Activation codes: clamp(round(x / s) + z, 0, 2^b - 1).
torch::Tensor act_codes(const torch::Tensor& x, double step, int64_t zero_point, int bits);
// Integer zero point of LSQ+: clamp(round(-beta / s), 0, 2^b - 1) (half to even).
int64_t act_zero_point(double step, double beta, int bits);

// LSQ weight quantizer for one bit-width. The step is learned; it is initialised on the first
// forward from the weights it sees (2 * mean|w| / sqrt(Qp) per channel; mean|w| for 1 bit, the
// optimum of binary weights) and its gradient is scaled by 1 / sqrt(Qp * N), N = weights per
// output channel.
class WeightQuantizerImpl : public torch::nn::Module {
 public:
  WeightQuantizerImpl(int64_t out_channels, int bits);
  torch::Tensor forward(const torch::Tensor& w);
  int bits() const { return bits_; }
  bool initialized() const { return initialized_.item<bool>(); }
  void init_from(const torch::Tensor& w);
  // Sets each channel's step to the one of 37 candidates (k / 40 * max|w_c| / Qp, k = 4..40) with
  // the least squared quantization error of w_c (mean|w_c| at 1 bit, already the optimum) and marks
  // the quantizer initialised. The LSQ init above suits low bits but leaves an 8-bit grid using a
  // quarter of its codes (range ~22 mean|w|); this fit is used where the weights are known (the
  // switch to folded BN).
  void fit_to(const torch::Tensor& w);
  // Sets the step (broadcast to every channel) and marks the quantizer initialised.
  void set_step(double value);
  // Gradient scale of LSQ: 1 / sqrt(Qp * N), N = weights per output channel of w (Qp = 1 at 1 bit).
  double grad_scale(const torch::Tensor& w) const;
  torch::Tensor step;  // [C, 1, 1, 1]

 private:
  int bits_;
  torch::Tensor initialized_;
};
TORCH_MODULE(WeightQuantizer);

// LSQ+ activation quantizer for one bit-width, placed at the input of a conv. Learned step s and
// offset beta; the forward uses the integer zero point z = clamp(round(-beta / s), 0, 2^b - 1)
// (straight-through gradient to beta). Unsigned inputs (after ReLU / ReLU6) use z = 0. An image
// input at 8 bits uses the fixed grid s = 1/255, z = 0.
class ActQuantizerImpl : public torch::nn::Module {
 public:
  explicit ActQuantizerImpl(int bits);
  // Composite autograd form (used when recompute is off, and as the reference in tests).
  torch::Tensor forward(const torch::Tensor& x);
  int bits() const { return bits_; }
  int64_t qmax() const { return (int64_t{1} << bits_) - 1; }
  bool is_unsigned() const { return unsigned_; }
  void set_unsigned(bool value) { unsigned_ = value; }
  void set_image_input(bool value);
  bool image_input() const { return image_input_; }
  // Initialises s and beta from a batch (LSQ+ min/max init) unless already initialised.
  void maybe_init(const torch::Tensor& x);
  // Sets s and beta and marks the quantizer initialised.
  void set_params(double step_value, double beta_value);
  // Calibration (quantization starting from a float model): observe() records the range of one
  // batch that quantizes it with the least squared error (lower end its min, or 0 when unsigned;
  // upper end k / 40 of its max, k = 10..40; on an even subsample of at most 2^16 values), and
  // finish_observation() sets s and beta from the mean of the recorded ranges and forgets them.
  // It returns false (nothing set) when nothing was observed or the grid is the image's fixed one.
  void observe(const torch::Tensor& x);
  bool finish_observation();
  bool initialized() const { return initialized_.item<bool>(); }
  double step_value() const;
  int64_t zero_point() const;
  // Gradient scale of LSQ: 1 / sqrt(Qp * N), N = elements per sample of the input.
  double grad_scale(const torch::Tensor& x) const;
  torch::Tensor step;  // [1]
  torch::Tensor beta;  // [1]

 private:
  int bits_;
  bool unsigned_ = false;
  bool image_input_ = false;
  torch::Tensor initialized_;
  double observed_lo_ = 0, observed_hi_ = 0;
  int64_t observed_ = 0;
};
TORCH_MODULE(ActQuantizer);

// sum_i probs[i] * Q_i(x) for activation quantizers Q_i (nullptr = fp32 candidate, identity).
// recompute = true: one fused kernel that keeps only x for backward and recomputes the branches;
// false: composite autograd ops (keeps every branch). Both give the same values and gradients.
torch::Tensor mixed_act_quant(const torch::Tensor& x, const torch::Tensor& probs,
                              const std::vector<ActQuantizerImpl*>& quantizers, bool recompute);

// sum_j probs[j] * Q_j(w) for weight quantizers Q_j (nullptr or 32 bits = fp32 candidate,
// identity); initialises the quantizers from w first. fused = true: one custom autograd function
// (a single pass over w forward and backward, keeps only w); false: composite autograd ops. Both
// give the same values and, up to float rounding, the same gradients.
torch::Tensor mixed_weight_quant(const torch::Tensor& w, const torch::Tensor& probs,
                                 const std::vector<WeightQuantizerImpl*>& quantizers, bool fused);

// Round half to even of a float in the range that matters (|v| < 2^22), without a library call.
// Adding and removing 1.5 * 2^23 rounds in the FPU's default mode (to nearest, ties to even).
inline float round_half_even(float v) {
  constexpr float kMagic = 12582912.0f;
  if (!(v < 4194304.0f && v > -4194304.0f)) return v;  // already integral (or NaN)
  return (v + kMagic) - kMagic;
}

// Identity forward, gradient multiplied by `scale` (LSQ's gradient scaling), and round half to
// even with a straight-through gradient. Exact in the forward (no x + (f(x) - x).detach() tricks,
// which may move a value by one ulp).
torch::Tensor grad_scale(const torch::Tensor& x, double scale);
torch::Tensor round_ste(const torch::Tensor& x);

}  // namespace mixnas::supernet
