#include "deploy/runtime/graph.h"

#include <cmath>
#include <string>

#include "core/error.h"
#include "deploy/runtime/packing.h"

namespace mixnas::rt {
namespace {

constexpr int kMaxDim = 1 << 20;
constexpr int64_t kMaxElements = int64_t{1} << 30;
constexpr int kMaxActivation = 11;  // rt::Activation::kTanh
constexpr int kMaxKernel = 1024;
constexpr int kMaxStride = 1024;
constexpr int kMaxPad = 4096;

const char* const kOpNames[kNumOpTypes] = {"Conv2d",   "Concat",   "Split",    "Add",
                                           "MaxPool",  "Upsample", "Quantize", "Dequantize",
                                           "DetectV8", "DetectV5", "Nms"};

std::string shape_str(const std::vector<int>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

class Checker {
 public:
  Checker(const Graph& g, const std::string& origin) : g_(g), origin_(origin) {}

  void run() {
    for (size_t i = 0; i < g_.buffers.size(); ++i) check_buffer(static_cast<int>(i));
    for (size_t i = 0; i < g_.tensors.size(); ++i) check_tensor(static_cast<int>(i));
    check_input_spec();
    produced_.assign(g_.tensors.size(), 0);
    produced_[g_.input.tensor] = 1;
    for (size_t i = 0; i < g_.nodes.size(); ++i) check_node(static_cast<int>(i));
    check_output_spec();
  }

 private:
  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    throw Error(origin_ + ": " + where + ": " + what +
                ". The package is corrupt or was written by an incompatible exporter; re-export it "
                "with `mixnas export`");
  }
  std::string tensor_where(int t) const {
    return "tensor " + std::to_string(t) + " '" + g_.tensors[t].name + "'";
  }
  std::string node_where(int n) const {
    const Node& node = g_.nodes[n];
    return "node " + std::to_string(n) + " '" + node.name + "' (" + op_type_name(node.op) + ")";
  }

  void check_buffer(int b) {
    const WeightBuffer& buf = g_.buffers[b];
    const std::string where = "buffer " + std::to_string(b);
    uint64_t need = 0;
    try {
      need = packed_bytes(buf.layout, buf.bits, buf.count);
    } catch (const Error& e) {
      fail(where, e.what());
    }
    if (need != buf.data.size())
      fail(where, "holds " + std::to_string(buf.data.size()) + " bytes, its " +
                      std::to_string(buf.count) + " values need " + std::to_string(need));
  }

  static bool finite_positive(float v) { return std::isfinite(v) && v > 0.0f; }

  void check_tensor(int t) {
    const TensorDesc& d = g_.tensors[t];
    const std::string where = tensor_where(t);
    if (d.shape.empty() || d.shape.size() > 4)
      fail(where, "rank " + std::to_string(d.shape.size()) + " (expected 1..4)");
    int64_t n = 1;
    for (int dim : d.shape) {
      if (dim < 1 || dim > kMaxDim)
        fail(where, "dimension out of range in shape " + shape_str(d.shape));
      n *= dim;
      if (n > kMaxElements) fail(where, "shape " + shape_str(d.shape) + " has too many elements");
    }
    if (!(d.bits == 32 || (d.bits >= 1 && d.bits <= 8)))
      fail(where, "bits = " + std::to_string(d.bits) + " (expected 1..8 or 32)");
    if (d.kind == TensorKind::kActivation) {
      if (d.buffer != -1) fail(where, "an activation tensor references a weight buffer");
      if (d.is_float()) {
        if (!d.scale.empty() || !d.zero_point.empty())
          fail(where, "a float32 tensor carries a scale or zero point");
      } else {
        if (d.scale.size() != 1 || !finite_positive(d.scale[0]))
          fail(where, "activation codes need one finite positive scale");
        if (d.zero_point.size() != 1 || d.zero_point[0] < 0 || d.zero_point[0] > (1 << d.bits) - 1)
          fail(where, "activation codes need one zero point within [0, 2^bits - 1]");
      }
      return;
    }
    if (d.buffer < 0 || d.buffer >= static_cast<int>(g_.buffers.size()))
      fail(where, "buffer index " + std::to_string(d.buffer) + " out of range");
    const WeightBuffer& buf = g_.buffers[d.buffer];
    if (buf.count != static_cast<uint64_t>(n))
      fail(where, "buffer holds " + std::to_string(buf.count) + " values, shape " +
                      shape_str(d.shape) + " needs " + std::to_string(n));
    if (d.is_float()) {
      if (buf.layout != BufferLayout::kF32) fail(where, "a float32 constant needs an F32 buffer");
      if (!d.scale.empty() || !d.zero_point.empty())
        fail(where, "a float32 constant carries a scale or zero point");
    } else {
      if (buf.layout != BufferLayout::kDenseCodes || buf.bits != d.bits)
        fail(where, "a " + std::to_string(d.bits) +
                        "-bit constant needs a DenseCodes buffer of the same bits");
      if (d.scale.size() != 1 && d.scale.size() != static_cast<size_t>(d.shape[0]))
        fail(where,
             "weight codes need 1 or shape[0] scales, got " + std::to_string(d.scale.size()));
      for (float s : d.scale)
        if (!finite_positive(s)) fail(where, "weight scales must be finite and positive");
      for (int z : d.zero_point)
        if (z != 0) fail(where, "weight codes are symmetric: zero points must be 0");
    }
  }

  void check_input_spec() {
    const InputSpec& in = g_.input;
    if (in.tensor < 0 || in.tensor >= static_cast<int>(g_.tensors.size()))
      fail("input spec", "tensor index " + std::to_string(in.tensor) + " out of range");
    const TensorDesc& d = g_.tensors[in.tensor];
    if (d.kind != TensorKind::kActivation) fail("input spec", "the input tensor is a constant");
    // An image input is [H, W, 3] (8-bit codes or float); a one-layer graph of the latency table
    // takes [H, W, C] at any bit-width. Session::set_input_image checks for an image.
    if (d.shape.size() != 3 || d.shape[0] != in.height || d.shape[1] != in.width || d.shape[2] < 1)
      fail("input spec", "input tensor shape " + shape_str(d.shape) + " is not [" +
                             std::to_string(in.height) + ", " + std::to_string(in.width) + ", C]");
    if (in.pad_value < 0 || in.pad_value > 255) fail("input spec", "pad value outside 0..255");
    if (!std::isfinite(in.pixel_scale)) fail("input spec", "pixel scale is not finite");
    if (!(in.mean.empty() || in.mean.size() == 3)) fail("input spec", "mean needs 0 or 3 values");
    if (!(in.std.empty() || in.std.size() == 3)) fail("input spec", "std needs 0 or 3 values");
    for (float v : in.mean)
      if (!std::isfinite(v)) fail("input spec", "mean is not finite");
    for (float v : in.std)
      if (!std::isfinite(v) || v == 0.0f) fail("input spec", "std must be finite and non-zero");
  }

  void check_output_spec() {
    const OutputSpec& out = g_.output;
    if (out.tensors.empty()) fail("output spec", "no output tensor");
    for (int t : out.tensors) {
      if (t < 0 || t >= static_cast<int>(g_.tensors.size()))
        fail("output spec", "tensor index " + std::to_string(t) + " out of range");
      if (!produced_[t]) fail("output spec", tensor_where(t) + " is never computed");
    }
    if (out.detections != -1) {
      if (out.detections < 0 || out.detections >= static_cast<int>(out.tensors.size()))
        fail("output spec", "detections index " + std::to_string(out.detections) + " out of range");
      const TensorDesc& d = g_.tensors[out.tensors[out.detections]];
      if (d.shape.size() != 2 || d.shape[1] != 6 || !d.is_float())
        fail("output spec", "the detections tensor must be float32 [max_det, 6]");
    }
    for (float s : out.strides)
      if (!finite_positive(s)) fail("output spec", "strides must be finite and positive");
  }

  // Input / output slots.
  const TensorDesc& activation_in(int n, size_t slot) {
    const Node& node = g_.nodes[n];
    const int t = node.inputs[slot];
    const TensorDesc& d = g_.tensors[t];
    if (d.kind != TensorKind::kActivation)
      fail(node_where(n), "input " + std::to_string(slot) + " must be an activation tensor");
    if (!produced_[t])
      fail(node_where(n), "input " + std::to_string(slot) + " (" + tensor_where(t) +
                              ") is not computed before this node");
    return d;
  }
  const TensorDesc& constant_in(int n, size_t slot) {
    const TensorDesc& d = g_.tensors[g_.nodes[n].inputs[slot]];
    if (d.kind != TensorKind::kConstant)
      fail(node_where(n), "input " + std::to_string(slot) + " must be a constant tensor");
    return d;
  }
  void arity(int n, size_t min_in, size_t max_in, size_t min_out, size_t max_out) {
    const Node& node = g_.nodes[n];
    if (node.inputs.size() < min_in || node.inputs.size() > max_in)
      fail(node_where(n), std::to_string(node.inputs.size()) + " inputs (expected " +
                              std::to_string(min_in) + ".." + std::to_string(max_in) + ")");
    if (node.outputs.size() < min_out || node.outputs.size() > max_out)
      fail(node_where(n), std::to_string(node.outputs.size()) + " outputs (expected " +
                              std::to_string(min_out) + ".." + std::to_string(max_out) + ")");
  }
  void expect_shape(int n, const TensorDesc& d, const std::vector<int>& shape, const char* what) {
    if (d.shape != shape)
      fail(node_where(n), std::string(what) + " '" + d.name + "' has shape " + shape_str(d.shape) +
                              ", expected " + shape_str(shape));
  }
  void expect_grid(int n, const TensorDesc& d, const Grid& grid, const char* what) {
    if (d.grid() != grid)
      fail(node_where(n), std::string(what) + " '" + d.name +
                              "' is on another quantization grid than the op's other tensors");
  }
  void expect_rank3(int n, const TensorDesc& d) {
    if (d.shape.size() != 3) fail(node_where(n), "tensor '" + d.name + "' must be [H, W, C]");
  }
  void expect_float(int n, const TensorDesc& d) {
    if (!d.is_float()) fail(node_where(n), "tensor '" + d.name + "' must be float32");
  }

  void check_node(int n) {
    const Node& node = g_.nodes[n];
    const int op = static_cast<int>(node.op);
    if (op < 0 || op >= kNumOpTypes) fail("node " + std::to_string(n), "unknown op type");
    const int nt = static_cast<int>(g_.tensors.size());
    for (int t : node.inputs)
      if (t < 0 || t >= nt)
        fail(node_where(n), "input tensor index " + std::to_string(t) + " out of range");
    for (int t : node.outputs) {
      if (t < 0 || t >= nt)
        fail(node_where(n), "output tensor index " + std::to_string(t) + " out of range");
      if (g_.tensors[t].kind != TensorKind::kActivation)
        fail(node_where(n), "output " + tensor_where(t) + " is a constant");
      if (produced_[t]) fail(node_where(n), tensor_where(t) + " is written twice");
    }
    for (size_t i = 0; i < node.outputs.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (node.outputs[i] == node.outputs[j])
          fail(node_where(n), tensor_where(node.outputs[i]) + " is written twice");
    switch (node.op) {
      case OpType::kConv2d:
        check_conv(n);
        break;
      case OpType::kConcat:
        check_concat(n);
        break;
      case OpType::kSplit:
        check_split(n);
        break;
      case OpType::kAdd:
        check_add(n);
        break;
      case OpType::kMaxPool:
        check_maxpool(n);
        break;
      case OpType::kUpsample:
        check_upsample(n);
        break;
      case OpType::kQuantize:
      case OpType::kDequantize:
        check_quant(n);
        break;
      case OpType::kDetectV8:
        check_detect_v8(n);
        break;
      case OpType::kDetectV5:
        check_detect_v5(n);
        break;
      case OpType::kNms:
        check_nms(n);
        break;
    }
    for (int t : node.outputs) produced_[t] = 1;
  }

  void check_conv(int n) {
    const Node& node = g_.nodes[n];
    const ConvAttrs& a = node.conv;
    const size_t nin = 2 + (a.has_bias ? 1 : 0) + (a.has_residual ? 1 : 0);
    arity(n, nin, nin, 1, 16);
    const TensorDesc& x = activation_in(n, 0);
    const TensorDesc& w = constant_in(n, 1);
    expect_rank3(n, x);
    if (w.shape.size() != 4) fail(node_where(n), "weights must be OIHW (rank 4)");
    const int in_c = x.shape[2], out_c = w.shape[0], kh = w.shape[2], kw = w.shape[3];
    if (a.groups < 1 || in_c % a.groups != 0 || out_c % a.groups != 0)
      fail(node_where(n), "groups = " + std::to_string(a.groups) + " does not divide " +
                              std::to_string(in_c) + " input and " + std::to_string(out_c) +
                              " output channels");
    if (w.shape[1] != in_c / a.groups)
      fail(node_where(n), "weights have " + std::to_string(w.shape[1]) +
                              " input channels per group, the input gives " +
                              std::to_string(in_c / a.groups));
    if (kh > kMaxKernel || kw > kMaxKernel) fail(node_where(n), "kernel too large");
    if (a.stride_h < 1 || a.stride_w < 1 || a.stride_h > kMaxStride || a.stride_w > kMaxStride)
      fail(node_where(n), "stride outside 1.." + std::to_string(kMaxStride));
    if (a.dilation_h < 1 || a.dilation_w < 1 || a.dilation_h > kMaxStride ||
        a.dilation_w > kMaxStride)
      fail(node_where(n), "dilation outside 1.." + std::to_string(kMaxStride));
    for (int p : {a.pad_top, a.pad_left, a.pad_bottom, a.pad_right})
      if (p < 0 || p > kMaxPad)
        fail(node_where(n), "padding outside 0.." + std::to_string(kMaxPad));
    if (a.activation < 0 || a.activation > kMaxActivation || !std::isfinite(a.alpha))
      fail(node_where(n), "unknown activation " + std::to_string(a.activation));
    const int oh = conv_out_size(x.shape[0], kh, a.stride_h, a.pad_top, a.pad_bottom, a.dilation_h);
    const int ow = conv_out_size(x.shape[1], kw, a.stride_w, a.pad_left, a.pad_right, a.dilation_w);
    if (oh < 1 || ow < 1) fail(node_where(n), "the geometry yields an empty output");
    if (w.is_float() != x.is_float())
      fail(node_where(n), w.is_float() ? "float32 weights need a float32 input"
                                       : "quantized weights need a quantized (code) input");
    size_t slot = 2;
    if (a.has_bias) {
      const TensorDesc& b = constant_in(n, slot++);
      expect_float(n, b);
      expect_shape(n, b, {out_c}, "bias");
    }
    if (a.has_residual) {
      const TensorDesc& r = activation_in(n, slot++);
      expect_float(n, r);
      expect_shape(n, r, {oh, ow, out_c}, "residual");
    }
    for (int t : node.outputs) {
      const TensorDesc& o = g_.tensors[t];
      if (!o.is_float() || o.shape.size() != 3 || o.shape[2] == out_c) {
        expect_shape(n, o, {oh, ow, out_c}, "output");
        continue;
      }
      // A float output of some channels: [f32_channel_begin, + its channels) within out_c.
      expect_shape(n, o, {oh, ow, o.shape[2]}, "output");
      if (o.shape[2] < 1 || a.f32_channel_begin < 0 || a.f32_channel_begin + o.shape[2] > out_c)
        fail(node_where(n), "float output '" + o.name + "' holds channels " +
                                std::to_string(a.f32_channel_begin) + ".." +
                                std::to_string(a.f32_channel_begin + o.shape[2] - 1) +
                                ", outside the conv's " + std::to_string(out_c) +
                                " (f32_channel_begin and the output's channels)");
    }
    if (a.f32_channel_begin != 0) {
      bool partial = false;
      for (int t : node.outputs)
        partial |= g_.tensors[t].is_float() && g_.tensors[t].shape[2] != out_c;
      if (!partial)
        fail(node_where(n), "f32_channel_begin = " + std::to_string(a.f32_channel_begin) +
                                " but no float output holds fewer channels than the conv's " +
                                std::to_string(out_c));
    }
  }

  void check_concat(int n) {
    const Node& node = g_.nodes[n];
    arity(n, 1, 1024, 1, 1);
    const TensorDesc& out = g_.tensors[node.outputs[0]];
    expect_rank3(n, out);
    int64_t c = 0;
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const TensorDesc& x = activation_in(n, i);
      expect_rank3(n, x);
      if (x.shape[0] != out.shape[0] || x.shape[1] != out.shape[1])
        fail(node_where(n), "input '" + x.name + "' has another height or width than the output");
      expect_grid(n, x, out.grid(), "input");
      c += x.shape[2];
    }
    if (c != out.shape[2]) fail(node_where(n), "output channels are not the sum of the inputs'");
  }

  void check_split(int n) {
    const Node& node = g_.nodes[n];
    arity(n, 1, 1, 1, 1024);
    const TensorDesc& x = activation_in(n, 0);
    expect_rank3(n, x);
    int64_t c = 0;
    for (int t : node.outputs) {
      const TensorDesc& o = g_.tensors[t];
      expect_rank3(n, o);
      if (o.shape[0] != x.shape[0] || o.shape[1] != x.shape[1])
        fail(node_where(n), "output '" + o.name + "' has another height or width than the input");
      expect_grid(n, o, x.grid(), "output");
      c += o.shape[2];
    }
    if (c != x.shape[2]) fail(node_where(n), "output channels do not add up to the input's");
  }

  void check_add(int n) {
    const Node& node = g_.nodes[n];
    arity(n, 2, 2, 1, 1);
    const TensorDesc& a = activation_in(n, 0);
    const TensorDesc& b = activation_in(n, 1);
    const TensorDesc& o = g_.tensors[node.outputs[0]];
    expect_float(n, a);
    expect_float(n, b);
    expect_float(n, o);
    expect_shape(n, b, a.shape, "input");
    expect_shape(n, o, a.shape, "output");
  }

  void check_maxpool(int n) {
    const Node& node = g_.nodes[n];
    arity(n, 1, 1, 1, 1);
    const TensorDesc& x = activation_in(n, 0);
    const TensorDesc& o = g_.tensors[node.outputs[0]];
    expect_rank3(n, x);
    const PoolAttrs& p = node.pool;
    if (p.kernel < 1 || p.kernel > kMaxKernel || p.stride < 1 || p.stride > kMaxStride ||
        p.pad < 0 || p.pad >= p.kernel)
      fail(node_where(n), "kernel, stride or padding out of range (need 0 <= pad < kernel)");
    const int oh = conv_out_size(x.shape[0], p.kernel, p.stride, p.pad, p.pad, 1);
    const int ow = conv_out_size(x.shape[1], p.kernel, p.stride, p.pad, p.pad, 1);
    if (oh < 1 || ow < 1) fail(node_where(n), "the geometry yields an empty output");
    expect_shape(n, o, {oh, ow, x.shape[2]}, "output");
    expect_grid(n, o, x.grid(), "output");
  }

  void check_upsample(int n) {
    const Node& node = g_.nodes[n];
    arity(n, 1, 1, 1, 1);
    const TensorDesc& x = activation_in(n, 0);
    const TensorDesc& o = g_.tensors[node.outputs[0]];
    expect_rank3(n, x);
    const int f = node.upsample_factor;
    if (f < 1 || f > 16) fail(node_where(n), "factor outside 1..16");
    expect_shape(n, o, {x.shape[0] * f, x.shape[1] * f, x.shape[2]}, "output");
    expect_grid(n, o, x.grid(), "output");
  }

  void check_quant(int n) {
    const Node& node = g_.nodes[n];
    arity(n, 1, 1, 1, 1);
    const TensorDesc& x = activation_in(n, 0);
    const TensorDesc& o = g_.tensors[node.outputs[0]];
    const bool quantize = node.op == OpType::kQuantize;
    if (x.is_float() != quantize || o.is_float() == quantize)
      fail(node_where(n), quantize ? "needs a float32 input and a code output"
                                   : "needs a code input and a float32 output");
    expect_shape(n, o, x.shape, "output");
  }

  void check_strides(int n, const std::vector<float>& strides) {
    if (strides.empty() || strides.size() > 16) fail(node_where(n), "needs 1..16 levels");
    for (float s : strides)
      if (!finite_positive(s)) fail(node_where(n), "strides must be finite and positive");
  }

  void check_detect_v8(int n) {
    const Node& node = g_.nodes[n];
    const DetectV8Attrs& a = node.v8;
    check_strides(n, a.strides);
    const size_t levels = a.strides.size();
    arity(n, 2 * levels, 2 * levels, 1, 1);
    if (a.reg_max < 1 || a.reg_max > 64) fail(node_where(n), "reg_max outside 1..64");
    if (a.num_classes < 1 || a.num_classes > 100000)
      fail(node_where(n), "num_classes outside 1..100000");
    int64_t anchors = 0;
    for (size_t l = 0; l < levels; ++l) {
      const TensorDesc& box = activation_in(n, 2 * l);
      const TensorDesc& cls = activation_in(n, 2 * l + 1);
      expect_rank3(n, box);
      expect_float(n, box);
      expect_float(n, cls);
      expect_shape(n, box, {box.shape[0], box.shape[1], 4 * a.reg_max}, "box input");
      expect_shape(n, cls, {box.shape[0], box.shape[1], a.num_classes}, "class input");
      anchors += int64_t{box.shape[0]} * box.shape[1];
    }
    const TensorDesc& o = g_.tensors[node.outputs[0]];
    expect_float(n, o);
    if (o.shape.size() != 2 || o.shape[0] != anchors || o.shape[1] != 4 + a.num_classes)
      fail(node_where(n), "output must be [" + std::to_string(anchors) + ", " +
                              std::to_string(4 + a.num_classes) + "]");
  }

  void check_detect_v5(int n) {
    const Node& node = g_.nodes[n];
    const DetectV5Attrs& a = node.v5;
    check_strides(n, a.strides);
    const size_t levels = a.strides.size();
    arity(n, levels, levels, 1, 1);
    if (a.num_anchors < 1 || a.num_anchors > 16) fail(node_where(n), "num_anchors outside 1..16");
    if (a.num_classes < 1 || a.num_classes > 100000)
      fail(node_where(n), "num_classes outside 1..100000");
    if (a.anchors.size() != levels * a.num_anchors * 2)
      fail(node_where(n), "needs levels * num_anchors * 2 anchor values");
    for (float v : a.anchors)
      if (!finite_positive(v)) fail(node_where(n), "anchors must be finite and positive");
    int64_t rows = 0;
    for (size_t l = 0; l < levels; ++l) {
      const TensorDesc& x = activation_in(n, l);
      expect_rank3(n, x);
      expect_float(n, x);
      expect_shape(n, x, {x.shape[0], x.shape[1], a.num_anchors * (5 + a.num_classes)}, "input");
      rows += int64_t{x.shape[0]} * x.shape[1] * a.num_anchors;
    }
    const TensorDesc& o = g_.tensors[node.outputs[0]];
    expect_float(n, o);
    if (o.shape.size() != 2 || o.shape[0] != rows || o.shape[1] != 4 + a.num_classes)
      fail(node_where(n), "output must be [" + std::to_string(rows) + ", " +
                              std::to_string(4 + a.num_classes) + "]");
  }

  void check_nms(int n) {
    const Node& node = g_.nodes[n];
    arity(n, 1, 1, 1, 1);
    const NmsAttrs& a = node.nms;
    const TensorDesc& x = activation_in(n, 0);
    expect_float(n, x);
    if (x.shape.size() != 2 || x.shape[1] < 5)
      fail(node_where(n), "input must be [rows, 4 + classes]");
    if (!std::isfinite(a.score_threshold) || !std::isfinite(a.iou_threshold) ||
        a.iou_threshold < 0.0f || a.iou_threshold > 1.0f)
      fail(node_where(n), "thresholds must be finite, IoU within [0, 1]");
    if (a.max_detections < 1 || a.max_detections > 100000)
      fail(node_where(n), "max_detections outside 1..100000");
    const TensorDesc& o = g_.tensors[node.outputs[0]];
    expect_float(n, o);
    expect_shape(n, o, {a.max_detections, 6}, "output");
  }

  const Graph& g_;
  const std::string& origin_;
  std::vector<char> produced_;
};

}  // namespace

const char* op_type_name(OpType op) {
  const int i = static_cast<int>(op);
  return i >= 0 && i < kNumOpTypes ? kOpNames[i] : "unknown";
}

int64_t TensorDesc::elements() const {
  int64_t n = 1;
  for (int d : shape) n *= d;
  return n;
}

Grid TensorDesc::grid() const {
  if (is_float()) return Grid::f32();
  return Grid::codes(bits, scale.empty() ? 1.0f : scale[0], zero_point.empty() ? 0 : zero_point[0]);
}

int conv_out_size(int in, int kernel, int stride, int pad_begin, int pad_end, int dilation) {
  const int64_t extent = int64_t{dilation} * (kernel - 1) + 1;
  const int64_t span = int64_t{in} + pad_begin + pad_end - extent;
  if (span < 0 || stride < 1) return -1;
  return static_cast<int>(span / stride + 1);
}

void validate_graph(const Graph& graph, const std::string& origin) {
  Checker(graph, origin).run();
}

}  // namespace mixnas::rt
