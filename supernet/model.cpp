#include "supernet/model.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <regex>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/text.h"
#include "supernet/block_registry.h"

namespace mixnas::supernet {

using torch::Tensor;
namespace fs = std::filesystem;

namespace {

YAML::Node load_yaml_text(const std::string& text, const std::string& file) {
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw Error(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                std::to_string(e.mark.column + 1) + ": invalid YAML: " + e.msg);
  }
}

// Python-style round (half to even), as ultralytics' parse_model uses for repeats.
int py_round(double v) {
  return int(std::nearbyint(v));
}

std::string scale_from_name(const std::string& filename) {
  static const std::regex re(R"(yolov\d+([nslmx]))");
  std::smatch m;
  if (std::regex_search(filename, m, re)) return m[1].str();
  return "";
}

std::string bits_str(int w, int a) {
  return std::to_string(w) + "," + std::to_string(a);
}

// One row [from, repeats, module, args(, {act: .., bits: [w, a]})] of backbone or head.
LayerSpec parse_layer(const YAML::Node& row, const std::string& file) {
  const std::string where = yaml_where(file, row);
  if (!row.IsSequence() || (row.size() != 4 && row.size() != 5))
    throw Error(where +
                ": a layer row is [from, repeats, module, args] (optionally a 5th map "
                "{act: .., bits: [w, a]}), got " +
                std::to_string(row.IsSequence() ? row.size() : 0) + " elements");
  LayerSpec l;
  l.where = where;
  const YAML::Node from = row[0];
  if (from.IsSequence()) {
    if (from.size() == 0) throw Error(yaml_where(file, from) + ": 'from' list is empty");
    for (const auto& f : from) l.from.push_back(as_int(f, yaml_where(file, f), "from index"));
  } else {
    l.from.push_back(as_int(from, yaml_where(file, from), "from index"));
  }
  l.repeats = as_int(row[1], yaml_where(file, row[1]), "repeats");
  if (l.repeats < 1) throw Error(yaml_where(file, row[1]) + ": repeats must be at least 1");
  const BlockType* type = find_block_type(row[2].as<std::string>());
  if (!type) {
    const std::vector<std::string> known = block_type_names();
    std::string hint = text::closest(row[2].as<std::string>(), known);
    throw Error(yaml_where(file, row[2]) + ": unknown module '" + row[2].as<std::string>() + "'" +
                (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                "; supported: " + text::join(known, ", "));
  }
  l.module = type->name;
  l.args = row[3];
  if (!l.args.IsSequence())
    throw Error(yaml_where(file, row[3]) + ": module arguments must be a list, e.g. [64, 3, 2]");
  if (row.size() == 5) {
    const YAML::Node ext = row[4];
    if (!ext.IsMap())
      throw Error(yaml_where(file, ext) +
                  ": the 5th element of a row is a map {act: .., bits: [w, a]}");
    for (const auto& kv : ext) {
      const std::string key = kv.first.as<std::string>();
      if (key == "act") {
        l.act = parse_act(kv.second.as<std::string>(), yaml_where(file, kv.second));
      } else if (key == "bits") {
        const YAML::Node b = kv.second;
        if (!b.IsSequence() || b.size() != 2)
          throw Error(yaml_where(file, b) + ": bits must be [w_bits, a_bits], e.g. [8, 8]");
        int w = as_int(b[0], yaml_where(file, b[0]), "w_bits");
        int a = as_int(b[1], yaml_where(file, b[1]), "a_bits");
        check_bits(w, yaml_where(file, b[0]) + ": w_bits");
        check_bits(a, yaml_where(file, b[1]) + ": a_bits");
        l.bits = std::make_pair(w, a);
      } else {
        throw Error(yaml_where(file, kv.first) + ": unknown layer key '" + key +
                    "'; valid: act, bits");
      }
    }
  }
  return l;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
ModelSpec parse_model_spec(const std::string& text, const std::string& file,
                           const std::string& scale) {
  YAML::Node root = load_yaml_text(text, file);
  if (!root.IsMap()) throw Error(file + ": a model YAML must be a map with nc, backbone and head");
  ModelSpec spec;
  spec.file = file;
  spec.text = text;
  if (root["nc"]) spec.nc = as_int(root["nc"], yaml_where(file, root["nc"]), "nc");
  if (spec.nc < 1) throw Error(yaml_where(file, root["nc"]) + ": nc must be at least 1");
  if (root["ch"]) spec.channels = as_int(root["ch"], yaml_where(file, root["ch"]), "ch");
  if (root["depth_multiple"])
    spec.depth = as_double(root["depth_multiple"], yaml_where(file, root["depth_multiple"]),
                           "depth_multiple");
  if (root["width_multiple"])
    spec.width = as_double(root["width_multiple"], yaml_where(file, root["width_multiple"]),
                           "width_multiple");
  if (const YAML::Node scales = root["scales"]) {
    if (!scales.IsMap() || scales.size() == 0)
      throw Error(yaml_where(file, scales) +
                  ": scales must map letters to [depth, width, max_channels]");
    std::string letter = scale;
    if (letter.empty()) {
      letter = scales.begin()->first.as<std::string>();
      log::warn(file, ": no model scale given; using '", letter, "' (name the file e.g. yolov8",
                letter, ".yaml, or pass scale=)");
    }
    const YAML::Node s = scales[letter];
    if (!s) {
      std::vector<std::string> keys;
      for (const auto& kv : scales) keys.push_back(kv.first.as<std::string>());
      throw Error(yaml_where(file, scales) + ": scale '" + letter + "' is not in scales (" +
                  text::join(keys, ", ") + ")");
    }
    if (!s.IsSequence() || s.size() != 3)
      throw Error(yaml_where(file, s) + ": a scale is [depth, width, max_channels]");
    spec.scale = letter;
    spec.depth = as_double(s[0], yaml_where(file, s[0]), "depth");
    spec.width = as_double(s[1], yaml_where(file, s[1]), "width");
    spec.max_channels = as_int(s[2], yaml_where(file, s[2]), "max_channels");
  } else if (!scale.empty()) {
    throw Error(file + ": scale '" + scale + "' requested but the file has no scales:");
  }
  for (const char* key : {"activation", "act"}) {
    if (const YAML::Node a = root[key])
      spec.default_act = parse_act(a.as<std::string>(), yaml_where(file, a));
  }
  if (const YAML::Node anchors = root["anchors"]) {
    spec.anchor_based = true;
    if (!anchors.IsSequence())
      throw Error(yaml_where(file, anchors) +
                  ": anchors must be a list of per-level [w1,h1, w2,h2, ...] lists in pixels");
    for (const auto& level : anchors) {
      if (!level.IsSequence() || level.size() == 0 || level.size() % 2)
        throw Error(yaml_where(file, level) +
                    ": an anchor level is an even-length list w1,h1, ...");
      std::vector<double> v;
      for (const auto& x : level) v.push_back(as_double(x, yaml_where(file, x), "anchor"));
      spec.anchors.push_back(v);
    }
  }
  for (const char* section : {"backbone", "head"}) {
    const YAML::Node rows = root[section];
    if (!rows || !rows.IsSequence())
      throw Error(file + ": missing '" + section + ":' list of [from, repeats, module, args] rows");
    for (const auto& row : rows) spec.layers.push_back(parse_layer(row, file));
  }
  if (spec.layers.empty()) throw Error(file + ": the model has no layers");
  return spec;
}

ModelSpec load_model_spec(const std::string& path, const std::string& scale) {
  std::vector<std::string> tried{path};
  std::string file = path;
  if (!fs::exists(file) && fs::path(path).parent_path().empty()) {
    file = (fs::path("configs/models") / path).string();
    tried.push_back(file);
  }
  std::string letter = scale;
  if (!fs::exists(file)) {
    // yolov8n.yaml -> yolov8.yaml with scale n.
    static const std::regex re(R"(^(.*yolov\d+)([nslmx])((?:-[^/]*)?\.ya?ml)$)");
    std::smatch m;
    const std::string name = fs::path(file).filename().string();
    if (std::regex_match(name, m, re)) {
      std::string alt = (fs::path(file).parent_path() / (m[1].str() + m[3].str())).string();
      tried.push_back(alt);
      if (fs::exists(alt)) {
        file = alt;
        if (letter.empty()) letter = m[2].str();
      }
    }
  }
  if (!fs::exists(file))
    throw Error(
        "model YAML not found: tried " + text::join(tried, ", ") +
        " (give a path to an ultralytics-style model YAML, e.g. configs/models/yolov8n.yaml)");
  const std::string text = read_file(file);
  if (letter.empty()) {
    YAML::Node root = load_yaml_text(text, file);
    if (root.IsMap() && root["scales"]) {
      std::string guess = scale_from_name(fs::path(file).filename().string());
      if (!guess.empty() && root["scales"][guess]) letter = guess;
    }
  }
  return parse_model_spec(text, file, letter);
}

namespace {

// The candidates of each site while a model is built: the search space and its rules, the row's
// fixed act/bits, then the fixed choices of a derived model (which must all be used).
class SiteResolver {
 public:
  SiteResolver(const ModelSpec& spec, const BuildOptions& options)
      : spec_(spec), options_(options) {
    if (options_.choices)
      for (const auto& kv : *options_.choices) used_[kv.first] = false;
  }
  void set_row(const LayerSpec& row) { row_ = &row; }
  SiteSpec resolve(const std::string& name, bool has_act, int layer, const std::string& module);
  void check_all_used() const {
    for (const auto& [name, used] : used_)
      if (!used)
        throw Error("architecture choices name site '" + name +
                    "', which this model does not have");
  }

 private:
  const ModelSpec& spec_;
  const BuildOptions& options_;
  const LayerSpec* row_ = nullptr;
  std::map<std::string, bool> used_;
};

SiteSpec SiteResolver::resolve(const std::string& name, bool has_act, int layer,
                               const std::string& module) {
  SiteSpec s;
  s.acts = {row_->act ? *row_->act : (spec_.default_act ? *spec_.default_act : Act::kSilu)};
  s.w_bits = {kFloatBits};
  s.a_bits = {kFloatBits};
  if (options_.search_space) {
    const SearchSpace& ss = *options_.search_space;
    s.acts = ss.acts;
    s.w_bits = ss.w_bits;
    s.a_bits = ss.a_bits;
    for (const auto& rule : ss.rules) {
      if (!rule.matches(name, layer, module)) continue;
      if (rule.acts) s.acts = *rule.acts;
      if (rule.w_bits) s.w_bits = *rule.w_bits;
      if (rule.a_bits) s.a_bits = *rule.a_bits;
    }
  }
  if (row_->act) s.acts = {*row_->act};
  if (row_->bits) {
    s.w_bits = {row_->bits->first};
    s.a_bits = {row_->bits->second};
  }
  if (options_.choices) {
    auto it = options_.choices->find(name);
    if (it == options_.choices->end())
      throw Error("architecture choices have no entry for site '" + name +
                  "' (the arch choices do not match this model YAML)");
    used_[name] = true;
    const SiteChoice& c = it->second;
    if (has_act) {
      if (!c.act) throw Error("architecture choice of site '" + name + "' lacks its activation");
      s.acts = {*c.act};
    }
    check_bits(c.w_bits, "site " + name + " w_bits");
    check_bits(c.a_bits, "site " + name + " a_bits");
    s.w_bits = {c.w_bits};
    s.a_bits = {c.a_bits};
  }
  if (!has_act) s.acts.clear();
  return s;
}

// Absolute layer indices of row i's `from` (-1: the image).
std::vector<int> absolute_from(const LayerSpec& row, int i) {
  std::vector<int> from;
  for (int f : row.from) {
    int abs = f < 0 ? i + f : f;
    if (f == -1 && i == 0)
      abs = -1;
    else if (abs < 0 || abs >= i)
      throw Error(row.where + ": from index " + std::to_string(f) + " of layer " +
                  std::to_string(i) + " does not name an earlier layer (valid: -1.." +
                  std::to_string(-i) + " or 0.." + std::to_string(i - 1) + ")");
    from.push_back(abs);
  }
  return from;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
YoloModelImpl::YoloModelImpl(ModelSpec spec, BuildOptions options)
    : spec_(std::move(spec)),
      options_(std::move(options)),
      sampling_(std::make_shared<ArchSampling>()) {
  const int nc = options_.nc > 0 ? options_.nc : spec_.nc;
  options_.nc = nc;
  BuildContext ctx;
  ctx.sampling = sampling_;
  ctx.recompute = options_.recompute;
  SiteResolver resolver(spec_, options_);
  ctx.resolve = [&](const std::string& name, bool has_act) {
    return resolver.resolve(name, has_act, ctx.layer, ctx.module);
  };

  torch::nn::ModuleList list;
  std::vector<int64_t> ch;  // output channels per layer
  const int n_layers = int(spec_.layers.size());
  for (int i = 0; i < n_layers; ++i) {
    const LayerSpec& row = spec_.layers[size_t(i)];
    resolver.set_row(row);
    ctx.layer = i;
    ctx.module = row.module;
    Layer layer;
    layer.module = row.module;
    layer.repeats = row.repeats;
    layer.from = absolute_from(row, i);
    const BlockType* type = find_block_type(row.module);
    if (!type) throw Error(row.where + ": unknown module '" + row.module + "'");
    const RowArgs args(row.args, row.where, row.module, nc);
    const int repeats =
        row.repeats > 1 ? std::max(py_round(row.repeats * spec_.depth), 1) : row.repeats;
    std::vector<int64_t> in_channels;
    for (int f : layer.from) in_channels.push_back(f < 0 ? int64_t(spec_.channels) : ch[size_t(f)]);
    const BlockRow block_row{ctx,
                             spec_,
                             row,
                             args,
                             "model." + std::to_string(i),
                             repeats,
                             in_channels,
                             nc,
                             i == n_layers - 1};
    BuiltBlock built = type->build(block_row);
    layer.block = built.block;
    if (built.head) head_ = built.head;
    layer.arguments = built.arguments;
    ch.push_back(built.channels);
    if (layer.block)
      list->push_back(layer.block);
    else
      list->push_back(head_);
    layers_.push_back(layer);
  }
  if (!head_) throw Error(spec_.file + ": the model has no Detect layer (it must be the last row)");
  resolver.check_all_used();
  register_module("model", list);
  sites_ = ctx.sites;

  // The first conv reads the image: 8-bit codes with s = 1/255, z = 0.
  if (layers_[0].from == std::vector<int>{-1})
    if (auto* conv = dynamic_cast<ConvImpl*>(layers_[0].block.get()))
      conv->conv->set_image_input(true);

  // Strides from a probe forward (as ultralytics does with a 256 x 256 input).
  {
    torch::NoGradGuard no_grad;
    ShapeProbeGuard probe;
    auto raw = forward_raw(torch::zeros({1, spec_.channels, 256, 256}));
    std::vector<double> strides;
    for (const auto& r : raw) strides.push_back(256.0 / double(r.size(2)));
    head_->set_strides(strides);
  }
  refresh_signedness();
}

std::vector<Tensor> YoloModelImpl::forward_raw(const Tensor& images) {
  std::vector<Tensor> outs(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) {
    std::vector<Tensor> inputs;
    for (int f : layers_[i].from) inputs.push_back(f < 0 ? images : outs[size_t(f)]);
    if (!layers_[i].block) return head_->forward_levels(inputs);
    outs[i] = layers_[i].block->forward_inputs(inputs);
  }
  throw Error("model has no head");
}

DetectOutput YoloModelImpl::forward(const Tensor& images) {
  DetectOutput out;
  out.raw = forward_raw(images);
  if (!is_training()) out.predictions = head_->decode(out.raw);
  return out;
}

void YoloModelImpl::refresh_signedness() {
  std::vector<bool> nonneg(layers_.size(), false);
  for (size_t i = 0; i < layers_.size(); ++i) {
    std::vector<bool> in;
    for (int f : layers_[i].from) in.push_back(f < 0 ? true : bool(nonneg[size_t(f)]));
    if (layers_[i].block)
      nonneg[i] = layers_[i].block->propagate_nonneg(in);
    else
      head_->propagate_nonneg(in);
  }
}

void YoloModelImpl::set_arch_mode(ArchMode mode, double tau) {
  sampling_->mode = mode;
  sampling_->tau = tau;
  refresh_signedness();
}

void YoloModelImpl::force_choices(const ArchChoices& choices) {
  for (const auto& site : sites_) {
    auto it = choices.find(site.name);
    if (it == choices.end()) continue;
    const SiteChoice& c = it->second;
    auto index_of = [&](const std::vector<int>& list, int v, const char* what) {
      auto p = std::find(list.begin(), list.end(), v);
      if (p == list.end())
        throw Error("site " + site.name + ": " + what + " " + std::to_string(v) +
                    " is not a candidate");
      return int(p - list.begin());
    };
    site.conv->force_choice(index_of(site.conv->w_bits(), c.w_bits, "w_bits"),
                            index_of(site.conv->a_bits(), c.a_bits, "a_bits"));
    if (site.act && c.act) {
      const auto& acts = site.act->candidates();
      auto p = std::find(acts.begin(), acts.end(), *c.act);
      if (p == acts.end())
        throw Error("site " + site.name + ": activation " + act_name(*c.act) +
                    " is not a candidate");
      site.act->force_choice(int(p - acts.begin()));
    }
  }
  set_arch_mode(ArchMode::kFixed, sampling_->tau);
}

void YoloModelImpl::set_recompute(bool value) {
  options_.recompute = value;
  for (const auto& s : sites_) {
    s.conv->set_recompute(value);
    if (s.act) s.act->set_recompute(value);
  }
}

void YoloModelImpl::set_fold_bn(bool value) {
  for (const auto& s : sites_)
    if (s.block) s.block->set_fold_bn(value);
}

void YoloModelImpl::fit_weight_steps_to_folded() {
  for (const auto& s : sites_)
    if (s.block) s.block->fit_weight_steps_to_folded();
}

int YoloModelImpl::finish_calibration() {
  int calibrated = 0;
  for (const auto& s : sites_) {
    for (int bits : s.conv->a_bits())
      if (ActQuantizerImpl* q = s.conv->act_quantizer(bits)) calibrated += q->finish_observation();
    if (s.block && s.block->fold_bn()) {
      s.block->fit_weight_steps_to_folded();
    } else {
      for (int bits : s.conv->w_bits())
        if (WeightQuantizerImpl* q = s.conv->weight_quantizer(bits)) q->fit_to(s.conv->weight);
    }
  }
  return calibrated;
}

std::vector<SiteView> YoloModelImpl::sites() const {
  std::vector<SiteView> out;
  for (const auto& s : sites_) {
    SiteView v;
    v.name = s.name;
    v.layer = s.layer;
    v.module = s.module;
    if (s.act) {
      v.acts = s.act->candidates();
      v.act_probs = s.act->probabilities();
    }
    v.w_bits = s.conv->w_bits();
    v.a_bits = s.conv->a_bits();
    v.w_probs = s.conv->w_probabilities();
    v.a_probs = s.conv->a_probabilities();
    v.geometry = s.conv->geometry();
    out.push_back(v);
  }
  return out;
}

void YoloModelImpl::probe(int64_t h, int64_t w) {
  torch::NoGradGuard no_grad;
  ShapeProbeGuard guard;
  forward_raw(torch::zeros({1, spec_.channels, h, w}));
}

std::vector<SiteView> YoloModelImpl::sites_at(int64_t h, int64_t w) {
  probe(h, w);
  return sites();
}

ArchChoices YoloModelImpl::argmax_choices() const {
  ArchChoices out;
  for (const auto& s : sites_) {
    SiteChoice c;
    if (s.act) c.act = s.act->candidates()[size_t(s.act->chosen())];
    c.w_bits = s.conv->w_bits()[size_t(s.conv->chosen_w())];
    c.a_bits = s.conv->a_bits()[size_t(s.conv->chosen_a())];
    out[s.name] = c;
  }
  return out;
}

namespace {
enum class ParamKind { kWeight, kArch, kQuant };
ParamKind param_kind(const std::string& name) {
  if (text::ends_with(name, ".alpha") || text::ends_with(name, ".alpha_w") ||
      text::ends_with(name, ".alpha_a"))
    return ParamKind::kArch;
  if (text::ends_with(name, ".step") || text::ends_with(name, ".beta")) return ParamKind::kQuant;
  return ParamKind::kWeight;
}
}  // namespace

ParamGroups YoloModelImpl::param_groups() const {
  ParamGroups g;
  for (const auto& kv : named_parameters(true)) {
    if (!kv.value().requires_grad()) continue;
    switch (param_kind(kv.key())) {
      case ParamKind::kArch:
        g.arch.push_back(kv.value());
        break;
      case ParamKind::kQuant:
        g.quant.push_back(kv.value());
        break;
      case ParamKind::kWeight:
        g.weights.push_back(kv.value());
        break;
    }
  }
  return g;
}

int64_t YoloModelImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto& kv : named_parameters(true))
    if (param_kind(kv.key()) == ParamKind::kWeight) n += kv.value().numel();
  return n;
}

ModelSummary YoloModelImpl::summary(int64_t imgsz) {
  ModelSummary s;
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    LayerSummary row;
    row.index = int(i);
    if (l.from.size() == 1) {
      row.from = std::to_string(spec_.layers[i].from[0]);
    } else {
      std::vector<std::string> parts;
      for (int f : spec_.layers[i].from) parts.push_back(std::to_string(f));
      row.from = "[" + text::join(parts, ", ") + "]";
    }
    row.repeats = spec_.layers[i].repeats > 1
                      ? std::max(py_round(spec_.layers[i].repeats * spec_.depth), 1)
                      : 1;
    row.module = l.module;
    row.arguments = l.arguments;
    row.params = 0;
    torch::nn::Module* m = l.block ? static_cast<torch::nn::Module*>(l.block.get()) : head_.get();
    for (const auto& kv : m->named_parameters(true))
      if (param_kind(kv.key()) == ParamKind::kWeight) row.params += kv.value().numel();
    s.layers.push_back(row);
  }
  s.params = parameter_count();
  s.modules = int64_t(modules(true).size());
  probe(imgsz, imgsz);
  double flops = 0.0;
  for (const auto& site : sites_) flops += 2.0 * double(site.conv->geometry().macs());
  s.gflops = flops / 1e9;
  return s;
}

YoloModel build_model(const std::string& path, BuildOptions options, const std::string& scale) {
  return YoloModel(load_model_spec(path, scale), std::move(options));
}

// ---------------------------------------------------------------------------------------------
YoloModel derive_model(YoloModel& supernet, const ArchChoices& choices) {
  BuildOptions o;
  o.nc = int(supernet->nc());
  o.choices = choices;
  o.recompute = supernet->build_options().recompute;
  // Every choice must be a candidate of its site in the supernet.
  for (const auto& s : supernet->site_refs()) {
    auto it = choices.find(s.name);
    if (it == choices.end()) continue;
    const auto& wb = s.conv->w_bits();
    const auto& ab = s.conv->a_bits();
    // fp32 needs no trained quantizer, and an activation has no parameters: both may be chosen
    // outside the candidates (uniform baselines); other bit-widths need their trained steps.
    auto known = [](const std::vector<int>& bits, int b) {
      return b == 32 || std::find(bits.begin(), bits.end(), b) != bits.end();
    };
    if (!known(wb, it->second.w_bits) || !known(ab, it->second.a_bits))
      throw Error("site " + s.name + ": bits (" + bits_str(it->second.w_bits, it->second.a_bits) +
                  ") are not candidates of the supernet");
    if (s.act && !it->second.act)
      throw Error("site " + s.name + ": the choice names no activation");
  }
  YoloModel fixed(supernet->spec(), o);
  torch::NoGradGuard no_grad;
  auto src_params = supernet->named_parameters(true);
  auto src_buffers = supernet->named_buffers(true);
  for (auto& kv : fixed->named_parameters(true)) {
    const Tensor* src = src_params.find(kv.key());
    if (!src || src->sizes() != kv.value().sizes())
      throw Error("derive: parameter " + kv.key() + " has no counterpart in the supernet");
    kv.value().copy_(*src);
  }
  for (auto& kv : fixed->named_buffers(true)) {
    const Tensor* src = src_buffers.find(kv.key());
    if (!src || src->sizes() != kv.value().sizes())
      throw Error("derive: buffer " + kv.key() + " has no counterpart in the supernet");
    kv.value().copy_(*src);
  }
  fixed->train(supernet->is_training());
  return fixed;
}

std::string arch_yaml_text(const YoloModel& model, const ArchChoices& choices) {
  YAML::Emitter out;
  out << YAML::Comment("mixnas architecture: model YAML + per-site choices (docs/model_yaml.md)");
  out << YAML::BeginMap;
  out << YAML::Key << "format" << YAML::Value << "mixnas-arch/1";
  out << YAML::Key << "model_file" << YAML::Value << model->spec().file;
  out << YAML::Key << "scale" << YAML::Value << model->spec().scale;
  out << YAML::Key << "nc" << YAML::Value << model->nc();
  out << YAML::Key << "model_yaml" << YAML::Value << YAML::Literal << model->spec().text;
  out << YAML::Key << "sites" << YAML::Value << YAML::BeginMap;
  for (const auto& site : model->site_refs()) {
    auto it = choices.find(site.name);
    if (it == choices.end()) throw Error("arch.yaml: no choice for site " + site.name);
    out << YAML::Key << site.name << YAML::Value << YAML::Flow << YAML::BeginMap;
    if (it->second.act) out << YAML::Key << "act" << YAML::Value << act_name(*it->second.act);
    out << YAML::Key << "w_bits" << YAML::Value << it->second.w_bits;
    out << YAML::Key << "a_bits" << YAML::Value << it->second.a_bits;
    out << YAML::EndMap;
  }
  out << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

void write_arch_yaml(const std::string& path, const YoloModel& model, const ArchChoices& choices) {
  write_file_atomic(path, arch_yaml_text(model, choices));
}

ArchFile read_arch_yaml(const std::string& path) {
  return parse_arch_yaml(read_file(path), path);
}

ArchFile parse_arch_yaml(const std::string& text, const std::string& path) {
  YAML::Node root = load_yaml_text(text, path);
  if (!root.IsMap() || !root["model_yaml"] || !root["sites"])
    throw Error(path + ": not an arch.yaml (needs model_yaml and sites)");
  if (!root["format"] || root["format"].as<std::string>() != "mixnas-arch/1")
    throw Error(yaml_where(path, root["format"]) +
                ": unsupported arch.yaml format (expected mixnas-arch/1)");
  ArchFile arch;
  const std::string scale = root["scale"] ? root["scale"].as<std::string>() : "";
  const std::string model_file =
      root["model_file"] ? root["model_file"].as<std::string>() : std::string("model_yaml");
  arch.spec = parse_model_spec(root["model_yaml"].as<std::string>(),
                               path + " (model_yaml of " + model_file + ")", scale);
  arch.spec.file = model_file;
  arch.nc = root["nc"] ? as_int(root["nc"], yaml_where(path, root["nc"]), "nc") : arch.spec.nc;
  const YAML::Node sites = root["sites"];
  if (!sites.IsMap()) throw Error(yaml_where(path, sites) + ": sites must be a map name -> choice");
  for (const auto& kv : sites) {
    const std::string where = yaml_where(path, kv.second);
    if (!kv.second.IsMap())
      throw Error(where + ": a site choice is {act: .., w_bits: .., a_bits: ..}");
    SiteChoice c;
    if (kv.second["act"]) c.act = parse_act(kv.second["act"].as<std::string>(), where);
    if (!kv.second["w_bits"] || !kv.second["a_bits"])
      throw Error(where + ": a site choice needs w_bits and a_bits");
    c.w_bits = as_int(kv.second["w_bits"], where, "w_bits");
    c.a_bits = as_int(kv.second["a_bits"], where, "a_bits");
    check_bits(c.w_bits, where + ": w_bits");
    check_bits(c.a_bits, where + ": a_bits");
    arch.choices[kv.first.as<std::string>()] = c;
  }
  return arch;
}

YoloModel build_from_arch(const ArchFile& arch) {
  BuildOptions o;
  o.nc = arch.nc;
  o.choices = arch.choices;
  return YoloModel(arch.spec, o);
}

}  // namespace mixnas::supernet
