#pragma once
// The YOLO model built from an ultralytics-style model YAML: the supernet when a search space gives
// several candidates per site, a plain (fixed) model otherwise. docs/model_yaml.md describes the
// format and mixnas' per-layer extension.
#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "supernet/blocks.h"
#include "supernet/search_space.h"

namespace mixnas::supernet {

// One row [from, repeats, module, args(, {act: .., bits: [w, a]})] of backbone/head.
struct LayerSpec {
  std::vector<int> from;  // as written (negative = relative)
  int repeats = 1;
  std::string module;
  YAML::Node args;
  std::optional<Act> act;                   // mixnas extension: fixed activation of the row
  std::optional<std::pair<int, int>> bits;  // mixnas extension: fixed (w_bits, a_bits)
  std::string where;                        // file:line:col of the row
};

struct ModelSpec {
  std::string file;   // the file that was read
  std::string text;   // its YAML text
  std::string scale;  // applied scale letter, "" if none
  int nc = 80;
  int channels = 3;
  double depth = 1.0, width = 1.0;
  int max_channels = 1 << 30;
  bool anchor_based = false;  // YOLOv5 format (anchors:)
  std::vector<std::vector<double>> anchors;
  std::optional<Act> default_act;  // `activation:` (ultralytics) or `act:` key
  std::vector<LayerSpec> layers;   // backbone then head
};

// Reads a model YAML. If `path` does not exist and its name carries a scale letter
// (yolov8n.yaml), loads the file without it (yolov8.yaml) and applies scales[n]. `scale`
// overrides the letter. Throws mixnas::Error with file:line:col on malformed content.
ModelSpec load_model_spec(const std::string& path, const std::string& scale = "");
// Parses YAML text; `file` names it in messages and `scale` selects a `scales:` entry.
ModelSpec parse_model_spec(const std::string& text, const std::string& file,
                           const std::string& scale);

struct BuildOptions {
  int nc = 0;                               // > 0 overrides the YAML's nc
  std::optional<SearchSpace> search_space;  // none: each site fixed as the YAML says (fp32 default)
  std::optional<ArchChoices> choices;       // fixed choice per site (derived model, arch.yaml)
  bool recompute = true;                    // mixed branches recomputed in backward instead of kept
};

// Everything a cost model or an evaluator needs about one site.
struct SiteView {
  std::string name;
  int layer = -1;
  std::string module;
  std::vector<Act> acts;  // empty: no activation at this site
  std::vector<int> w_bits, a_bits;
  torch::Tensor act_probs, w_probs, a_probs;  // softmax(alpha), with autograd ([1] if fixed)
  ConvGeometry geometry;                      // at the input size of the last forward or probe
};

struct LayerSummary {
  int index;
  std::string from;
  int repeats;
  int64_t params;
  std::string module;
  std::string arguments;
};

struct ModelSummary {
  std::vector<LayerSummary> layers;
  int64_t modules = 0;  // number of torch modules in the tree (the "layers" of the summary line)
  int64_t params = 0;
  double gflops = 0.0;  // 2 * conv MACs at the probe size
};

// Parameters split for separate optimizer groups.
struct ParamGroups {
  std::vector<torch::Tensor> weights;  // conv/BN weights and biases
  std::vector<torch::Tensor> arch;     // architecture logits (alpha, alpha_w, alpha_a)
  std::vector<torch::Tensor> quant;    // quantizer steps and offsets
};

// Output of forward: raw per-level head outputs, and decoded predictions in eval mode.
struct DetectOutput {
  std::vector<torch::Tensor> raw;
  std::optional<Predictions> predictions;
};

class YoloModelImpl : public torch::nn::Module {
 public:
  YoloModelImpl(ModelSpec spec, BuildOptions options = {});

  // Training mode: raw head outputs only. Eval mode: also decoded predictions.
  DetectOutput forward(const torch::Tensor& images);
  std::vector<torch::Tensor> forward_raw(const torch::Tensor& images);
  Predictions decode(const std::vector<torch::Tensor>& raw) const { return head_->decode(raw); }

  const ModelSpec& spec() const { return spec_; }
  const BuildOptions& build_options() const { return options_; }
  int64_t nc() const { return head_->nc; }
  bool anchor_based() const { return spec_.anchor_based; }
  const std::vector<double>& strides() const { return head_->strides; }
  HeadImpl& head() { return *head_; }
  const HeadImpl& head() const { return *head_; }

  // Architecture sampling for every site (softmax, Gumbel with temperature, hard Gumbel, fixed).
  void set_arch_mode(ArchMode mode, double tau = 1.0);
  const ArchSampling& arch_sampling() const { return *sampling_; }
  // Fixed mode with the given choice per site instead of the argmax (missing sites: argmax).
  void force_choices(const ArchChoices& choices);
  void set_recompute(bool value);
  // QAT: fold BN into every Conv block before its weight quantizer (running stats frozen).
  void set_fold_bn(bool value);
  // Every site's ConvImpl::fit_weight_steps_to_folded (call once, when folding starts).
  void fit_weight_steps_to_folded();
  // Quantizers on, off (float forward) or observing (float forward, activation ranges recorded).
  void set_quant_mode(QuantMode mode) { sampling_->quant = mode; }
  QuantMode quant_mode() const { return sampling_->quant; }
  // After forwards in QuantMode::kObserve: every activation quantizer that observed takes its
  // calibrated range (ActQuantizerImpl::finish_observation) and every weight quantizer's steps are
  // fitted to the weight its conv quantizes (folded when BN is folded). Returns the number of
  // activation quantizers calibrated.
  int finish_calibration();

  const std::vector<SiteRef>& site_refs() const { return sites_; }
  std::vector<SiteView> sites() const;
  // Shape-only forward at h x w (no quantizer state touched); then sites() carry geometry.
  void probe(int64_t h, int64_t w);
  std::vector<SiteView> sites_at(int64_t h, int64_t w);
  ArchChoices argmax_choices() const;

  ParamGroups param_groups() const;
  int64_t parameter_count() const;
  ModelSummary summary(int64_t imgsz);

 private:
  void refresh_signedness();

  ModelSpec spec_;
  BuildOptions options_;
  std::shared_ptr<ArchSampling> sampling_;
  struct Layer {
    std::vector<int> from;             // absolute indices, -1 = input image
    std::shared_ptr<BlockImpl> block;  // null for the head
    std::string module, arguments;
    int repeats;
  };
  std::vector<Layer> layers_;
  std::shared_ptr<HeadImpl> head_;
  std::vector<SiteRef> sites_;
};
TORCH_MODULE(YoloModel);

// Builds the model of a model YAML file (convenience for load_model_spec + YoloModel).
YoloModel build_model(const std::string& path, BuildOptions options = {},
                      const std::string& scale = "");

// The fixed model of `choices` with every weight, BN statistic and quantizer state inherited from
// `supernet` (same names). Throws mixnas::Error when a choice is not a candidate of its site.
YoloModel derive_model(YoloModel& supernet, const ArchChoices& choices);

// arch.yaml: the model YAML text, nc, scale and per-site choices (docs/model_yaml.md).
std::string arch_yaml_text(const YoloModel& model, const ArchChoices& choices);
// arch_yaml_text written atomically to `path`.
void write_arch_yaml(const std::string& path, const YoloModel& model, const ArchChoices& choices);
struct ArchFile {
  ModelSpec spec;
  int nc = 80;
  ArchChoices choices;
};
// Parses arch.yaml text; `origin` (a path, or "best.pt (arch_yaml)") names it in errors.
ArchFile parse_arch_yaml(const std::string& text, const std::string& origin);
ArchFile read_arch_yaml(const std::string& path);
// Rebuilds the fixed model an arch.yaml describes (fresh weights).
YoloModel build_from_arch(const ArchFile& arch);

}  // namespace mixnas::supernet
