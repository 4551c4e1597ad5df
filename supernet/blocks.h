#pragma once
// YOLO building blocks with the structure (and parameter count) of ultralytics' modules: Conv,
// Bottleneck, C2f, C3, SPPF, Upsample, Concat, Detect (YOLOv8, anchor-free, DFL) and DetectV5
// (anchor-based). Every conv is a QConv2d and every Conv block's activation a MixedActivation, so
// the same classes build the supernet and the fixed models derived from it.
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "supernet/mixed.h"

namespace mixnas::supernet {

// Candidates of one search site.
struct SiteSpec {
  std::vector<Act> acts;  // empty for a conv without activation (Detect output convs)
  std::vector<int> w_bits;
  std::vector<int> a_bits;
};

class ConvImpl;

// One search site: a Conv block (activation + bits) or a bare conv (bits only).
struct SiteRef {
  std::string name;    // module path, e.g. "model.9.cv2" or "model.22.cv2.0.2"
  int layer = -1;      // index of the model-YAML row
  std::string module;  // module type of that row (Conv, C2f, Detect, ...)
  QConv2dImpl* conv = nullptr;
  MixedActivationImpl* act = nullptr;  // nullptr for a bare conv
  ConvImpl* block = nullptr;           // nullptr for a bare conv
};

// State shared while one model is built.
struct BuildContext {
  // Candidates of a site by name (has_act: the site has an activation).
  std::function<SiteSpec(const std::string& name, bool has_act)> resolve;
  std::shared_ptr<ArchSampling> sampling = std::make_shared<ArchSampling>();
  bool recompute = true;
  int layer = -1;
  std::string module;
  std::vector<SiteRef> sites;
};

// A model-YAML row's module: takes the outputs of its `from` layers.
class BlockImpl : public torch::nn::Module {
 public:
  virtual torch::Tensor forward_inputs(const std::vector<torch::Tensor>& inputs) = 0;
  // Given which inputs are non-negative, sets the signedness of the quantizers inside and returns
  // whether the output is non-negative.
  virtual bool propagate_nonneg(const std::vector<bool>& inputs) = 0;
};

// ultralytics Conv: conv (no bias) -> BatchNorm2d (eps 1e-3, momentum 0.03) -> activation.
class ConvImpl : public BlockImpl {
 public:
  // padding < 0: "same" padding k / 2 * d (ultralytics autopad). with_act false: identity.
  ConvImpl(BuildContext& ctx, const std::string& name, int64_t c1, int64_t c2, int64_t k = 1,
           int64_t s = 1, int64_t p = -1, int64_t g = 1, int64_t d = 1, bool with_act = true);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor forward_inputs(const std::vector<torch::Tensor>& inputs) override {
    return forward(inputs.at(0));
  }
  bool propagate_nonneg(const std::vector<bool>& inputs) override;
  bool propagate(bool input_nonneg);
  // QAT: fold BN into the conv before the weight quantizer, running statistics frozen.
  void set_fold_bn(bool value) { fold_bn_ = value; }
  bool fold_bn() const { return fold_bn_; }
  // At the switch to folded BN: every weight quantizer's steps are fitted to the folded weight
  // w * s_bn (WeightQuantizerImpl::fit_to). Steps learned on the unfolded weights would quantize
  // the folded ones on a grid off by s_bn per channel.
  void fit_weight_steps_to_folded();
  // BN folded into float weight and bias (NUMERICS "BatchNorm folding").
  std::pair<torch::Tensor, torch::Tensor> folded_weight_bias() const;

  QConv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  MixedActivation act{nullptr};

 private:
  bool fold_bn_ = false;
};
TORCH_MODULE(Conv);

class BottleneckImpl : public BlockImpl {
 public:
  BottleneckImpl(BuildContext& ctx, const std::string& name, int64_t c1, int64_t c2, bool shortcut,
                 int64_t g, int64_t k1, int64_t k2, double e);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor forward_inputs(const std::vector<torch::Tensor>& in) override {
    return forward(in.at(0));
  }
  bool propagate_nonneg(const std::vector<bool>& in) override;
  Conv cv1{nullptr}, cv2{nullptr};
  bool add;
};

class C2fImpl : public BlockImpl {
 public:
  C2fImpl(BuildContext& ctx, const std::string& name, int64_t c1, int64_t c2, int64_t n,
          bool shortcut, int64_t g, double e);
  torch::Tensor forward_inputs(const std::vector<torch::Tensor>& in) override;
  bool propagate_nonneg(const std::vector<bool>& in) override;
  Conv cv1{nullptr}, cv2{nullptr};
  std::vector<std::shared_ptr<BottleneckImpl>> m;
};

class C3Impl : public BlockImpl {
 public:
  C3Impl(BuildContext& ctx, const std::string& name, int64_t c1, int64_t c2, int64_t n,
         bool shortcut, int64_t g, double e);
  torch::Tensor forward_inputs(const std::vector<torch::Tensor>& in) override;
  bool propagate_nonneg(const std::vector<bool>& in) override;
  Conv cv1{nullptr}, cv2{nullptr}, cv3{nullptr};
  std::vector<std::shared_ptr<BottleneckImpl>> m;
};

class SPPFImpl : public BlockImpl {
 public:
  SPPFImpl(BuildContext& ctx, const std::string& name, int64_t c1, int64_t c2, int64_t k);
  torch::Tensor forward_inputs(const std::vector<torch::Tensor>& in) override;
  bool propagate_nonneg(const std::vector<bool>& in) override;
  Conv cv1{nullptr}, cv2{nullptr};
  int64_t k;
};

class UpsampleImpl : public BlockImpl {
 public:
  explicit UpsampleImpl(double scale) : scale_(scale) {}
  torch::Tensor forward_inputs(const std::vector<torch::Tensor>& in) override;
  bool propagate_nonneg(const std::vector<bool>& in) override { return in.at(0); }
  double scale() const { return scale_; }

 private:
  double scale_;
};

class ConcatImpl : public BlockImpl {
 public:
  explicit ConcatImpl(int64_t dim) : dim_(dim) {}
  torch::Tensor forward_inputs(const std::vector<torch::Tensor>& in) override;
  bool propagate_nonneg(const std::vector<bool>& in) override;

 private:
  int64_t dim_;
};

// n copies of a module in a row (a YAML row with repeats > 1 for modules that take no n).
class RepeatImpl : public BlockImpl {
 public:
  explicit RepeatImpl(std::vector<std::shared_ptr<BlockImpl>> blocks);
  torch::Tensor forward_inputs(const std::vector<torch::Tensor>& in) override;
  bool propagate_nonneg(const std::vector<bool>& in) override;

 private:
  std::vector<std::shared_ptr<BlockImpl>> blocks_;
};

// Decoded predictions: boxes xyxy in input pixels [B, A, 4], class scores in [0, 1] [B, A, nc]
// (YOLOv5: objectness x class probability).
struct Predictions {
  torch::Tensor boxes;
  torch::Tensor scores;
};

class HeadImpl : public torch::nn::Module {
 public:
  virtual std::vector<torch::Tensor> forward_levels(const std::vector<torch::Tensor>& inputs) = 0;
  virtual Predictions decode(const std::vector<torch::Tensor>& raw) const = 0;
  // Called once strides are known (they come from a probe forward).
  virtual void set_strides(const std::vector<double>& strides) = 0;
  virtual bool propagate_nonneg(const std::vector<bool>& inputs) = 0;
  int64_t nc = 80;
  std::vector<double> strides;
};

// A Sequential of Conv, Conv, bare conv (bias) as in the YOLOv8 Detect branches.
class DetectBranchImpl : public torch::nn::Module {
 public:
  DetectBranchImpl(BuildContext& ctx, const std::string& name, int64_t c1, int64_t c_mid,
                   int64_t c_out);
  torch::Tensor forward(const torch::Tensor& x);
  Conv c0{nullptr}, c1{nullptr};
  QConv2d out{nullptr};
};

// YOLOv8 anchor-free head: per level cat(box distribution 4 * reg_max, class logits nc).
class DetectImpl : public HeadImpl {
 public:
  static constexpr int64_t kRegMax = 16;
  DetectImpl(BuildContext& ctx, const std::string& name, int64_t nc, std::vector<int64_t> ch);
  std::vector<torch::Tensor> forward_levels(const std::vector<torch::Tensor>& inputs) override;
  Predictions decode(const std::vector<torch::Tensor>& raw) const override;
  void set_strides(const std::vector<double>& strides) override;
  bool propagate_nonneg(const std::vector<bool>& inputs) override;
  std::vector<std::shared_ptr<DetectBranchImpl>> cv2, cv3;
  torch::Tensor dfl_weight;  // the fixed DFL projection 0..15 (counted, not trained)
};

// YOLOv5 anchor-based head: per level a 1x1 conv to na * (5 + nc).
class DetectV5Impl : public HeadImpl {
 public:
  DetectV5Impl(BuildContext& ctx, const std::string& name, int64_t nc,
               std::vector<std::vector<double>> anchors, std::vector<int64_t> ch);
  std::vector<torch::Tensor> forward_levels(const std::vector<torch::Tensor>& inputs) override;
  Predictions decode(const std::vector<torch::Tensor>& raw) const override;
  void set_strides(const std::vector<double>& strides) override;
  bool propagate_nonneg(const std::vector<bool>& inputs) override;
  int64_t na() const { return anchors_px.size(1); }
  std::vector<std::shared_ptr<QConv2dImpl>> m;
  torch::Tensor anchors_px;  // [nl, na, 2] anchor sizes in input pixels
};

// Grid cell centres (x + 0.5, y + 0.5) in grid units, [A, 2], and per-anchor strides [A, 1] for
// levels of the given sizes (YOLOv8 anchor points).
std::pair<torch::Tensor, torch::Tensor> make_anchor_points(
    const std::vector<std::pair<int64_t, int64_t>>& sizes, const std::vector<double>& strides);
// ltrb distances -> xyxy boxes around the anchor points (same units).
torch::Tensor dist_to_bbox(const torch::Tensor& ltrb, const torch::Tensor& points);
// Expected value of the DFL distribution: [.., 4 * reg_max] logits -> [.., 4].
torch::Tensor dfl_decode(const torch::Tensor& logits, int64_t reg_max);

}  // namespace mixnas::supernet
