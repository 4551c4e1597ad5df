#include "deploy/export/export.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/text.h"
#include "deploy/runtime/package.h"
#include "supernet/block_registry.h"
#include "supernet/checkpoint.h"
#include "supernet/quant.h"

namespace mixnas::exporter {

using supernet::Act;
using torch::Tensor;
namespace fs = std::filesystem;

namespace {

std::vector<float> to_floats(const Tensor& t) {
  Tensor c = t.detach().to(torch::kFloat).contiguous().cpu();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

int out_size(int in, int k, int s, int p, int d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

// Translates the model's modules into the IR: each row through its block type's lowering
// (supernet/block_registry.h), which calls back into the Lowerer operations below.
class Walker final : public supernet::Lowerer {
 public:
  Walker(supernet::YoloModel& model, IrModel& ir) : model_(model), ir_(ir) {
    for (const auto& s : model_->site_refs()) sites_[s.conv] = s;
    fixed_ = model_->arch_sampling().mode == supernet::ArchMode::kFixed;
  }

  void run() {
    const supernet::ModelSpec& spec = model_->spec();
    IrNode in;
    in.op = IrOp::kInput;
    in.name = "images";
    in.output = ir_.add_value({spec.channels, ir_.height, ir_.width});
    ir_.nodes.push_back(in);
    const int image = in.output;

    const auto named = model_->named_children();
    const auto* list = named.find("model");
    if (!list) throw Error("export: the model has no layer list");
    const std::vector<std::shared_ptr<torch::nn::Module>> layers = (*list)->children();
    if (layers.size() != spec.layers.size())
      throw Error("export: the model has " + std::to_string(layers.size()) + " layers, its YAML " +
                  std::to_string(spec.layers.size()));
    std::vector<int> values(layers.size(), -1);
    for (size_t i = 0; i < layers.size(); ++i) {
      const supernet::LayerSpec& row = spec.layers[i];
      std::vector<int> inputs;
      for (int f : row.from) {
        const int abs = (f == -1 && i == 0) ? -1 : (f < 0 ? int(i) + f : f);
        inputs.push_back(abs < 0 ? image : values.at(size_t(abs)));
      }
      layer_ = "model." + std::to_string(i) + " (" + row.module + ", " + row.where + ")";
      values[i] = layer(layers[i], row, inputs, i);
    }
  }

 private:
  [[noreturn]] void unsupported(const std::string& what) override {
    throw Error("export: layer " + layer_ + ": " + what + "; the exporter supports " +
                text::join(supernet::block_type_names(), ", ") +
                " (nn.Upsample: nearest, integer factor; Detect: YOLOv8 and YOLOv5)");
  }

  int layer(const std::shared_ptr<torch::nn::Module>& m, const supernet::LayerSpec& row,
            const std::vector<int>& in, size_t index) {
    const supernet::BlockType* type = supernet::find_block_type(row.module);
    if (!type) unsupported("module type '" + row.module + "' is not supported");
    return supernet::lower_block(*type, *m, *this, in, "model." + std::to_string(index));
  }

  template <typename F>
  int add_node(IrOp op, const std::string& name, std::vector<int> inputs, IrShape shape, F&& fill) {
    IrNode n;
    n.op = op;
    n.name = name;
    n.inputs = std::move(inputs);
    n.output = ir_.add_value(shape);
    fill(n);
    ir_.nodes.push_back(n);
    return n.output;
  }

  int concat(const std::string& name, const std::vector<int>& in) override {
    IrShape s = ir_.shapes[in.at(0)];
    s.c = 0;
    for (int v : in) {
      const IrShape& t = ir_.shapes[v];
      if (t.h != s.h || t.w != s.w)
        unsupported("Concat of " + std::to_string(t.h) + "x" + std::to_string(t.w) + " and " +
                    std::to_string(s.h) + "x" + std::to_string(s.w) +
                    " maps (the input size must be a multiple of the largest stride)");
      s.c += t.c;
    }
    return add_node(IrOp::kConcat, name, in, s, [](IrNode&) {});
  }

  std::vector<int> split(const std::string& name, int x, int parts) override {
    const IrShape s = ir_.shapes[x];
    const int part = s.c / parts;
    std::vector<int> ys;
    for (int k = 0; k < parts; ++k)
      ys.push_back(add_node(IrOp::kChunk, name, {x}, {part, s.h, s.w}, [&](IrNode& n) {
        n.chunks.assign(size_t(parts), part);
        n.chunk_index = k;
      }));
    return ys;
  }

  int max_pool(const std::string& name, int x, int kernel, int stride, int pad) override {
    const IrShape s = ir_.shapes[x];
    return add_node(
        IrOp::kMaxPool, name, {x},
        {s.c, out_size(s.h, kernel, stride, pad, 1), out_size(s.w, kernel, stride, pad, 1)},
        [&](IrNode& n) {
          n.kernel = kernel;
          n.stride = stride;
          n.pad = pad;
        });
  }

  int upsample(const std::string& name, int x, int factor) override {
    const IrShape s = ir_.shapes[x];
    return add_node(IrOp::kUpsample, name, {x}, {s.c, s.h * factor, s.w * factor},
                    [&](IrNode& n) { n.factor = factor; });
  }

  int pick(size_t count, int chosen, const std::string& site, const char* what) const {
    if (count > 1 && !fixed_)
      throw Error("export: site " + site + " has " + std::to_string(count) + " " + what +
                  " candidates: export a fixed model (derive the architecture first, or set the "
                  "architecture mode to fixed)");
    return count > 1 ? chosen : 0;
  }

  // One conv site: BN folded (when `block`), weights quantized at their trained step.
  int qconv(supernet::QConv2dImpl& q, supernet::ConvImpl* block, int x, int residual) {
    auto it = sites_.find(&q);
    const std::string site = it != sites_.end() ? it->second.name : "<unnamed conv>";
    const auto& o = q.options();
    const IrShape in = ir_.shapes[x];
    if (in.c != o.in_channels)
      throw Error("export: site " + site + " expects " + std::to_string(o.in_channels) +
                  " input channels, gets " + std::to_string(in.c));
    IrConv c;
    c.name = site;
    c.in_c = int(o.in_channels);
    c.out_c = int(o.out_channels);
    c.kernel = int(o.kernel);
    c.stride = int(o.stride);
    c.pad = int(o.padding);
    c.groups = int(o.groups);
    c.dilation = int(o.dilation);
    c.w_bits = q.w_bits()[size_t(pick(q.w_bits().size(), q.chosen_w(), site, "w_bits"))];
    c.a_bits = q.a_bits()[size_t(pick(q.a_bits().size(), q.chosen_a(), site, "a_bits"))];
    torch::NoGradGuard no_grad;
    Tensor w, b;
    if (block) {
      std::tie(w, b) = block->folded_weight_bias();
      const auto& acts = block->act->candidates();
      const Act a = acts[size_t(pick(acts.size(), block->act->chosen(), site, "activation"))];
      if (!rt::parse_activation(supernet::act_name(a), &c.act))
        throw Error("export: site " + site + ": activation " + supernet::act_name(a) +
                    " has no runtime kernel");
      c.alpha = supernet::kLeakySlope;
    } else {
      w = q.weight.detach();
      b = q.bias.defined() ? q.bias.detach() : torch::zeros({o.out_channels});
    }
    c.weight = to_floats(w);
    c.bias = to_floats(b);
    for (float v : c.weight)
      if (!std::isfinite(v)) throw Error("export: site " + site + ": weights are not finite");
    for (float v : c.bias)
      if (!std::isfinite(v)) throw Error("export: site " + site + ": bias is not finite");
    if (c.w_bits != supernet::kFloatBits) {
      supernet::WeightQuantizerImpl* wq = q.weight_quantizer(c.w_bits);
      if (!wq || !wq->initialized())
        throw Error("export: site " + site + ": the " + std::to_string(c.w_bits) +
                    "-bit weight quantizer was never initialised (train or calibrate the model at "
                    "these bits before exporting)");
      c.w_scale = to_floats(wq->step.view({-1}));
      for (float s : c.w_scale)
        if (!(std::isfinite(s) && s > 0.0f))
          throw Error("export: site " + site + ": weight step " + std::to_string(s) +
                      " is not a finite positive number");
      Tensor codes = supernet::weight_codes(w, wq->step, c.w_bits).to(torch::kInt8).contiguous();
      c.codes.assign(codes.data_ptr<int8_t>(), codes.data_ptr<int8_t>() + codes.numel());
    }
    if (c.a_bits == supernet::kFloatBits) {
      c.in_grid = rt::Grid::f32();
    } else {
      supernet::ActQuantizerImpl* aq = q.act_quantizer(c.a_bits);
      const bool image = aq && aq->image_input() && c.a_bits == 8;
      if (!aq || !(image || aq->initialized()))
        throw Error("export: site " + site + ": the " + std::to_string(c.a_bits) +
                    "-bit input quantizer was never initialised (train or calibrate the model at "
                    "these bits before exporting)");
      const float s = float(aq->step_value());
      if (!(std::isfinite(s) && s > 0.0f))
        throw Error("export: site " + site + ": input step " + std::to_string(s) +
                    " is not a finite positive number");
      c.in_grid = rt::Grid::codes(c.a_bits, s, int(aq->zero_point()));
    }
    const IrShape out{c.out_c, out_size(in.h, c.kernel, c.stride, c.pad, c.dilation),
                      out_size(in.w, c.kernel, c.stride, c.pad, c.dilation)};
    if (out.h < 1 || out.w < 1)
      throw Error("export: site " + site + ": the input " + std::to_string(in.h) + "x" +
                  std::to_string(in.w) + " is too small for this conv (use a larger --imgsz)");
    if (residual >= 0) {
      const IrShape r = ir_.shapes[residual];
      if (r.c != out.c || r.h != out.h || r.w != out.w)
        throw Error("export: site " + site + ": residual shape does not match the conv output");
    }
    ir_.convs.push_back(std::move(c));
    const int conv_index = int(ir_.convs.size()) - 1;
    return add_node(IrOp::kConv, site, {x}, out, [&](IrNode& n) {
      n.conv = conv_index;
      n.residual = residual;
    });
  }

  int conv(supernet::ConvImpl& c, int x, int residual) override {
    return qconv(*c.conv, &c, x, residual);
  }

  int bare_conv(supernet::QConv2dImpl& q, int x) override { return qconv(q, nullptr, x, -1); }

  void strides_check(size_t levels) {
    const auto& st = model_->strides();
    if (st.size() != levels) unsupported("Detect strides are unknown");
    for (size_t i = 0; i < levels; ++i) {
      ir_.head.strides.push_back(float(st[i]));
      if (ir_.height % int(st[i]) || ir_.width % int(st[i]))
        throw Error("export: the input size " + std::to_string(ir_.height) + "x" +
                    std::to_string(ir_.width) + " is not a multiple of the stride " +
                    std::to_string(int(st[i])) + " (use --imgsz divisible by it)");
    }
  }

  void detect_v8(int nc, int reg_max, const std::vector<int>& boxes,
                 const std::vector<int>& classes) override {
    IrHead& h = ir_.head;
    h.anchor_based = false;
    h.num_classes = nc;
    h.reg_max = reg_max;
    strides_check(boxes.size());
    h.boxes = boxes;
    h.classes = classes;
  }

  void detect_v5(int nc, const Tensor& anchors_px, const std::vector<int>& levels) override {
    IrHead& h = ir_.head;
    h.anchor_based = true;
    h.num_classes = nc;
    h.num_anchors = int(anchors_px.size(1));
    h.anchors = to_floats(anchors_px.view({-1}));
    strides_check(levels.size());
    h.levels = levels;
  }

  supernet::YoloModel& model_;
  IrModel& ir_;
  std::map<const supernet::QConv2dImpl*, supernet::SiteRef> sites_;
  bool fixed_ = false;
  std::string layer_;
};

}  // namespace

IrModel model_to_ir(supernet::YoloModel& model, const ExportOptions& options) {
  if (options.imgsz < 32 || options.imgsz > 8192)
    throw Error("export: imgsz " + std::to_string(options.imgsz) + " is outside 32..8192");
  IrModel ir;
  ir.source = model->spec().file;
  ir.height = ir.width = options.imgsz;
  ir.letterbox = options.letterbox;
  ir.nms.score_threshold = options.conf;
  ir.nms.iou_threshold = options.iou;
  ir.nms.max_detections = options.max_det;
  ir.nms.class_aware = true;
  double max_stride = 0;
  for (double st : model->strides()) max_stride = std::max(max_stride, st);
  if (max_stride > 0 && options.imgsz % int(max_stride))
    throw Error("export: the input size " + std::to_string(options.imgsz) +
                " is not a multiple of the model's largest stride " +
                std::to_string(int(max_stride)) + " (use an --imgsz divisible by it)");
  Walker(model, ir).run();
  if (ir.head.strides.empty()) throw Error("export: the model has no Detect head");
  const int nc = ir.head.num_classes;
  if (!options.class_names.empty() && int(options.class_names.size()) != nc)
    throw Error("export: " + std::to_string(options.class_names.size()) +
                " class names given, the model has " + std::to_string(nc) + " classes");
  ir.class_names = options.class_names;
  for (int c = int(ir.class_names.size()); c < nc; ++c)
    ir.class_names.push_back("class" + std::to_string(c));
  return ir;
}

rt::Graph export_graph(supernet::YoloModel& model, const ExportOptions& options) {
  return ir_to_graph(model_to_ir(model, options));
}

std::string export_mxr(supernet::YoloModel& model, const ExportOptions& options) {
  return rt::serialize_package(export_graph(model, options));
}

void write_onnx(supernet::YoloModel& model, const ExportOptions& options, const std::string& path,
                const OnnxOptions& onnx_options) {
  write_onnx(model_to_ir(model, options), path, onnx_options);
}

// ---------------------------------------------------------------------------------------------
// Weights

supernet::YoloModel load_weights(const std::string& path, const std::optional<std::string>& arch) {
  supernet::YoloModel model = supernet::load_trained_model(path, arch).model;
  // The exporter lowers BN into the conv, quantized or not.
  model->set_fold_bn(true);
  return model;
}

supernet::ArchChoices fixed_choices(const supernet::YoloModel& model) {
  return model->argmax_choices();
}

// ---------------------------------------------------------------------------------------------
// `mixnas export`

ExportResult run_export(const ExportRequest& req) {
  for (const std::string& f : req.formats)
    if (f != "mxr" && f != "onnx")
      throw Error("mixnas export: unknown format '" + f + "' (valid: mxr, onnx)");
  fs::path weights = req.input;
  fs::path run_dir;
  if (!fs::exists(weights)) throw Error(req.input + ": no such weights file or run folder");
  if (fs::is_directory(weights)) {
    run_dir = weights;
    weights = run_dir / "weights" / "best.pt";
    if (!fs::exists(weights)) weights = run_dir / "weights" / "last.pt";
    if (!fs::exists(weights))
      throw Error(req.input + ": a run folder needs weights/best.pt or weights/last.pt");
  } else {
    const fs::path parent = fs::absolute(weights).parent_path();
    run_dir = parent.filename() == "weights" ? parent.parent_path() : parent;
  }
  if (!req.output_dir.empty()) run_dir = req.output_dir;
  fs::create_directories(run_dir);
  ExportResult result;
  result.run_dir = run_dir.string();
  log::info("export: loading ", weights.string());
  supernet::YoloModel model = load_weights(weights.string(), req.arch);
  IrModel ir = model_to_ir(model, req.options);
  ir.source = weights.string();
  for (const std::string& f : req.formats) {
    if (f == "mxr") {
      const std::string path = (run_dir / "model.mxr").string();
      write_file_atomic(path, rt::serialize_package(ir_to_graph(ir)));
      result.files.push_back(path);
    } else {
      const std::string path = (run_dir / "model.onnx").string();
      write_onnx(ir, path, req.onnx);
      result.files.push_back(path);
    }
  }
  const std::string arch_path = (run_dir / "arch.yaml").string();
  supernet::write_arch_yaml(arch_path, model, fixed_choices(model));
  result.files.push_back(arch_path);
  for (const auto& f : result.files) log::info("export: wrote ", f);
  return result;
}

}  // namespace mixnas::exporter
