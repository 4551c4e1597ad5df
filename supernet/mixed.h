#pragma once
// Mixed operations of the supernet: a mixture of activation functions and a conv whose weights and
// input are mixtures of fake-quantized copies (EdMIPS: one convolution whatever the number of
// candidates, exact because the convolution is bilinear).
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "supernet/activation.h"
#include "supernet/quant.h"

namespace mixnas::supernet {

// How architecture logits turn into branch weights. Shared by every site of one model.
enum class ArchMode {
  kSoftmax,     // softmax(alpha / tau)
  kGumbel,      // softmax((alpha + Gumbel noise) / tau)
  kHardGumbel,  // one-hot of the Gumbel sample forward, soft gradient (straight-through)
  kFixed,       // only the chosen candidate (argmax, or a choice set on the site)
};
// What every quantizer of one model does: quantize (training, export), pass values through as
// floats (the float epochs before quantization starts, trainer quant.start_epoch), or pass them
// through while each activation quantizer records its input's range (calibration at that switch).
enum class QuantMode { kOn, kOff, kObserve };
struct ArchSampling {
  ArchMode mode = ArchMode::kSoftmax;
  double tau = 1.0;
  QuantMode quant = QuantMode::kOn;
};
ArchMode parse_arch_mode(const std::string& name);
std::string arch_mode_name(ArchMode mode);

// Branch weights of one choice (K candidates) under the sampling; K = 1 gives [1].
torch::Tensor choice_weights(const torch::Tensor& logits, const ArchSampling& sampling);

// sum_k probs[k] * act_k(x). recompute = true uses a fused kernel that keeps only x for backward.
torch::Tensor mixed_activation(const torch::Tensor& x, const torch::Tensor& probs,
                               const std::vector<Act>& acts, bool recompute);

class MixedActivationImpl : public torch::nn::Module {
 public:
  MixedActivationImpl(std::vector<Act> candidates, std::shared_ptr<ArchSampling> sampling,
                      bool recompute);
  torch::Tensor forward(const torch::Tensor& x);
  const std::vector<Act>& candidates() const { return candidates_; }
  bool searchable() const { return candidates_.size() > 1; }
  // softmax(alpha) with autograd ([1] when fixed).
  torch::Tensor probabilities() const;
  // Index used in fixed mode: the forced choice if set, else argmax(alpha).
  int chosen() const;
  void force_choice(int index) { forced_ = index; }
  // Output never negative under the current mode (fixed: the chosen candidate; else all).
  bool output_nonneg() const;
  void set_recompute(bool value) { recompute_ = value; }
  torch::Tensor alpha;  // undefined when one candidate

 private:
  std::vector<Act> candidates_;
  std::shared_ptr<ArchSampling> sampling_;
  bool recompute_;
  int forced_ = -1;
};
TORCH_MODULE(MixedActivation);

// Geometry of a conv seen at one input size, for cost models.
struct ConvGeometry {
  int64_t in_channels = 0, out_channels = 0, kernel = 1, stride = 1, padding = 0, groups = 1,
          dilation = 1;
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  bool has_bias = false;
  int64_t macs() const {
    return out_h * out_w * out_channels * (in_channels / groups) * kernel * kernel;
  }
};

// A conv with searchable (w_bits, a_bits): logits over each, one LSQ weight quantizer per w_bits
// candidate (module "wq_b<bits>") and one LSQ+ input quantizer per a_bits candidate ("aq_b<bits>").
// forward(x) = conv(sum_i pa_i Qa_i(x), sum_j pw_j Qw_j(W)) + bias.
class QConv2dImpl : public torch::nn::Module {
 public:
  struct Options {
    int64_t in_channels, out_channels, kernel = 1, stride = 1, padding = 0, groups = 1,
                                       dilation = 1;
    bool bias = false;
  };
  QConv2dImpl(const Options& options, std::vector<int> w_bits, std::vector<int> a_bits,
              std::shared_ptr<ArchSampling> sampling, bool recompute);
  torch::Tensor forward(const torch::Tensor& x);
  // With BN folded (NUMERICS "BatchNorm folding"): the float weight is w * w_scale[c] before the
  // weight quantizer, and `extra_bias` is added after the conv.
  torch::Tensor forward_folded(const torch::Tensor& x, const torch::Tensor& w_scale,
                               const torch::Tensor& extra_bias);

  const Options& options() const { return options_; }
  const std::vector<int>& w_bits() const { return w_bits_; }
  const std::vector<int>& a_bits() const { return a_bits_; }
  torch::Tensor w_probabilities() const;
  torch::Tensor a_probabilities() const;
  int chosen_w() const;
  int chosen_a() const;
  void force_choice(int w_index, int a_index) {
    forced_w_ = w_index;
    forced_a_ = a_index;
  }
  // Inputs known to be non-negative use unsigned quantizers (z = 0).
  void set_input_nonneg(bool value);
  void set_image_input(bool value);
  // true: the input and weight mixtures are fused custom autograd functions (mixed_act_quant,
  // mixed_weight_quant) that keep only their input; false: composite ops keeping every branch.
  void set_recompute(bool value) { recompute_ = value; }
  ActQuantizerImpl* act_quantizer(int bits);        // nullptr for 32 or unknown
  WeightQuantizerImpl* weight_quantizer(int bits);  // nullptr for 32 or unknown
  // Last input shape seen (set by every forward; used for geometry).
  ConvGeometry geometry() const;

  torch::Tensor weight;
  torch::Tensor bias;              // undefined unless options.bias
  torch::Tensor alpha_w, alpha_a;  // undefined when one candidate

 private:
  torch::Tensor quantized_input(const torch::Tensor& x);
  torch::Tensor quantized_weight(const torch::Tensor& w);

  Options options_;
  std::vector<int> w_bits_, a_bits_;
  std::vector<std::shared_ptr<WeightQuantizerImpl>> wq_;
  std::vector<std::shared_ptr<ActQuantizerImpl>> aq_;
  std::shared_ptr<ArchSampling> sampling_;
  bool recompute_;
  int forced_w_ = -1, forced_a_ = -1;
  std::vector<int64_t> last_in_shape_, last_out_shape_;
};
TORCH_MODULE(QConv2d);

// While alive, QConv2d and MixedActivation skip quantization and mixing (plain conv, identity
// activation): used to probe shapes and strides without touching quantizer state.
class ShapeProbeGuard {
 public:
  ShapeProbeGuard();
  ~ShapeProbeGuard();
  ShapeProbeGuard(const ShapeProbeGuard&) = delete;
  ShapeProbeGuard& operator=(const ShapeProbeGuard&) = delete;
  static bool active();

 private:
  bool previous_;
};

}  // namespace mixnas::supernet
