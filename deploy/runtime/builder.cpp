#include "deploy/runtime/builder.h"

#include <string>

#include "core/atomic_file.h"
#include "core/error.h"
#include "deploy/runtime/package.h"
#include "deploy/runtime/packing.h"

namespace mixnas::rt {

ConvLayer ConvLayer::square(int out_c, int k, int s, int activation) {
  ConvLayer l;
  l.out_c = out_c;
  l.kernel_h = l.kernel_w = k;
  l.stride_h = l.stride_w = s;
  l.pad_top = l.pad_left = l.pad_bottom = l.pad_right = k / 2;
  l.activation = activation;
  return l;
}

GraphBuilder::GraphBuilder(std::string producer) {
  graph_.producer = std::move(producer);
}

const TensorDesc& GraphBuilder::tensor(int index) const {
  if (index < 0 || index >= static_cast<int>(graph_.tensors.size()))
    throw Error("GraphBuilder: tensor index " + std::to_string(index) + " out of range");
  return graph_.tensors[index];
}

const std::vector<int>& GraphBuilder::shape_of(int t, const char* op) const {
  if (t < 0 || t >= static_cast<int>(graph_.tensors.size()))
    throw Error(std::string("GraphBuilder::") + op + ": tensor index " + std::to_string(t) +
                " out of range");
  return graph_.tensors[t].shape;
}

int GraphBuilder::add_tensor(const std::string& name, std::vector<int> shape, Grid grid) {
  TensorDesc t;
  t.name = name;
  t.shape = std::move(shape);
  t.bits = grid.bits;
  if (!grid.is_float()) {
    t.scale = {grid.scale};
    t.zero_point = {grid.zero_point};
  }
  graph_.tensors.push_back(std::move(t));
  return static_cast<int>(graph_.tensors.size()) - 1;
}

int GraphBuilder::add_constant_f32(const std::string& name, std::vector<int> shape,
                                   const std::vector<float>& values) {
  WeightBuffer buf;
  buf.layout = BufferLayout::kF32;
  buf.bits = 32;
  buf.count = values.size();
  buf.data = F32Layout::pack(values.data(), values.size());
  graph_.buffers.push_back(std::move(buf));
  TensorDesc t;
  t.name = name;
  t.kind = TensorKind::kConstant;
  t.shape = std::move(shape);
  t.buffer = static_cast<int>(graph_.buffers.size()) - 1;
  graph_.tensors.push_back(std::move(t));
  return static_cast<int>(graph_.tensors.size()) - 1;
}

int GraphBuilder::add_constant_codes(const std::string& name, std::vector<int> shape,
                                     const std::vector<int8_t>& codes, int bits,
                                     const std::vector<float>& scales) {
  WeightBuffer buf;
  buf.layout = BufferLayout::kDenseCodes;
  buf.bits = bits;
  buf.count = codes.size();
  buf.data = DenseCodesLayout::pack(codes.data(), codes.size(), bits);
  graph_.buffers.push_back(std::move(buf));
  TensorDesc t;
  t.name = name;
  t.kind = TensorKind::kConstant;
  t.shape = std::move(shape);
  t.bits = bits;
  t.scale = scales;
  t.buffer = static_cast<int>(graph_.buffers.size()) - 1;
  graph_.tensors.push_back(std::move(t));
  return static_cast<int>(graph_.tensors.size()) - 1;
}

int GraphBuilder::add_node(Node node) {
  graph_.nodes.push_back(std::move(node));
  return static_cast<int>(graph_.nodes.size()) - 1;
}

int GraphBuilder::add_input(const std::string& name, int height, int width, Grid grid,
                            int channels) {
  const int t = add_tensor(name, {height, width, channels}, grid);
  graph_.input.tensor = t;
  graph_.input.height = height;
  graph_.input.width = width;
  return t;
}

std::vector<int> GraphBuilder::add_conv(const std::string& name, int x, const ConvLayer& l,
                                        const std::vector<Grid>& outputs, int residual) {
  const std::vector<int> xs = shape_of(x, "add_conv");
  if (xs.size() != 3) throw Error("GraphBuilder::add_conv '" + name + "': input must be [H, W, C]");
  if (outputs.empty()) throw Error("GraphBuilder::add_conv '" + name + "': no output grid");
  if (l.groups < 1 || xs[2] % l.groups != 0)
    throw Error("GraphBuilder::add_conv '" + name + "': groups do not divide the input channels");
  const std::vector<int> wshape = {l.out_c, xs[2] / l.groups, l.kernel_h, l.kernel_w};
  const size_t wcount = static_cast<size_t>(l.out_c) * wshape[1] * l.kernel_h * l.kernel_w;
  int w = -1;
  if (l.w_bits == 32) {
    if (l.weights_f32.size() != wcount)
      throw Error("GraphBuilder::add_conv '" + name + "': " + std::to_string(l.weights_f32.size()) +
                  " float weights, OIHW needs " + std::to_string(wcount));
    w = add_constant_f32(name + ".weight", wshape, l.weights_f32);
  } else {
    if (l.weight_codes.size() != wcount)
      throw Error("GraphBuilder::add_conv '" + name +
                  "': " + std::to_string(l.weight_codes.size()) + " weight codes, OIHW needs " +
                  std::to_string(wcount));
    w = add_constant_codes(name + ".weight", wshape, l.weight_codes, l.w_bits, l.weight_scale);
  }
  Node n;
  n.name = name;
  n.op = OpType::kConv2d;
  n.inputs = {x, w};
  ConvAttrs& a = n.conv;
  a.stride_h = l.stride_h;
  a.stride_w = l.stride_w;
  a.pad_top = l.pad_top;
  a.pad_left = l.pad_left;
  a.pad_bottom = l.pad_bottom;
  a.pad_right = l.pad_right;
  a.dilation_h = l.dilation_h;
  a.dilation_w = l.dilation_w;
  a.groups = l.groups;
  a.activation = l.activation;
  a.alpha = l.alpha;
  if (l.f32_channels < 0 || l.f32_channel_begin < 0 ||
      l.f32_channel_begin + l.f32_channels > l.out_c ||
      (l.f32_channels == 0 && l.f32_channel_begin != 0))
    throw Error("GraphBuilder::add_conv '" + name + "': float channels " +
                std::to_string(l.f32_channel_begin) + " + " + std::to_string(l.f32_channels) +
                " outside the " + std::to_string(l.out_c) + " output channels");
  a.f32_channel_begin = l.f32_channel_begin;
  if (!l.bias.empty()) {
    a.has_bias = true;
    n.inputs.push_back(add_constant_f32(name + ".bias", {static_cast<int>(l.bias.size())}, l.bias));
  }
  if (residual >= 0) {
    shape_of(residual, "add_conv");
    a.has_residual = true;
    n.inputs.push_back(residual);
  }
  const int oh =
      conv_out_size(xs[0], l.kernel_h, l.stride_h, l.pad_top, l.pad_bottom, l.dilation_h);
  const int ow =
      conv_out_size(xs[1], l.kernel_w, l.stride_w, l.pad_left, l.pad_right, l.dilation_w);
  if (oh < 1 || ow < 1) throw Error("GraphBuilder::add_conv '" + name + "': empty output");
  for (size_t i = 0; i < outputs.size(); ++i) {
    const int c = outputs[i].is_float() && l.f32_channels > 0 ? l.f32_channels : l.out_c;
    n.outputs.push_back(
        add_tensor(i == 0 ? name : name + "#" + std::to_string(i), {oh, ow, c}, outputs[i]));
  }
  std::vector<int> outs = n.outputs;
  add_node(std::move(n));
  return outs;
}

int GraphBuilder::add_concat(const std::string& name, const std::vector<int>& inputs) {
  if (inputs.empty()) throw Error("GraphBuilder::add_concat '" + name + "': no input");
  std::vector<int> shape = shape_of(inputs[0], "add_concat");
  if (shape.size() != 3)
    throw Error("GraphBuilder::add_concat '" + name + "': inputs must be [H, W, C]");
  shape[2] = 0;
  for (int t : inputs) shape[2] += shape_of(t, "add_concat").back();
  Node n;
  n.name = name;
  n.op = OpType::kConcat;
  n.inputs = inputs;
  n.outputs = {add_tensor(name, shape, graph_.tensors[inputs[0]].grid())};
  add_node(std::move(n));
  return graph_.nodes.back().outputs[0];
}

std::vector<int> GraphBuilder::add_split(const std::string& name, int x,
                                         const std::vector<int>& channels) {
  const std::vector<int> xs = shape_of(x, "add_split");
  Node n;
  n.name = name;
  n.op = OpType::kSplit;
  n.inputs = {x};
  for (size_t i = 0; i < channels.size(); ++i)
    n.outputs.push_back(add_tensor(name + "." + std::to_string(i), {xs[0], xs[1], channels[i]},
                                   graph_.tensors[x].grid()));
  std::vector<int> outs = n.outputs;
  add_node(std::move(n));
  return outs;
}

int GraphBuilder::add_add(const std::string& name, int a, int b) {
  Node n;
  n.name = name;
  n.op = OpType::kAdd;
  n.inputs = {a, b};
  n.outputs = {add_tensor(name, shape_of(a, "add_add"), Grid::f32())};
  shape_of(b, "add_add");
  add_node(std::move(n));
  return graph_.nodes.back().outputs[0];
}

int GraphBuilder::add_maxpool(const std::string& name, int x, int kernel, int stride, int pad) {
  const std::vector<int> xs = shape_of(x, "add_maxpool");
  if (xs.size() != 3)
    throw Error("GraphBuilder::add_maxpool '" + name + "': input must be [H, W, C]");
  Node n;
  n.name = name;
  n.op = OpType::kMaxPool;
  n.inputs = {x};
  n.pool = {kernel, stride, pad};
  const int oh = conv_out_size(xs[0], kernel, stride, pad, pad, 1);
  const int ow = conv_out_size(xs[1], kernel, stride, pad, pad, 1);
  n.outputs = {add_tensor(name, {oh, ow, xs[2]}, graph_.tensors[x].grid())};
  add_node(std::move(n));
  return graph_.nodes.back().outputs[0];
}

int GraphBuilder::add_upsample(const std::string& name, int x, int factor) {
  const std::vector<int> xs = shape_of(x, "add_upsample");
  if (xs.size() != 3)
    throw Error("GraphBuilder::add_upsample '" + name + "': input must be [H, W, C]");
  Node n;
  n.name = name;
  n.op = OpType::kUpsample;
  n.inputs = {x};
  n.upsample_factor = factor;
  n.outputs = {add_tensor(name, {xs[0] * factor, xs[1] * factor, xs[2]}, graph_.tensors[x].grid())};
  add_node(std::move(n));
  return graph_.nodes.back().outputs[0];
}

int GraphBuilder::add_quantize(const std::string& name, int x, Grid grid) {
  Node n;
  n.name = name;
  n.op = OpType::kQuantize;
  n.inputs = {x};
  n.outputs = {add_tensor(name, shape_of(x, "add_quantize"), grid)};
  add_node(std::move(n));
  return graph_.nodes.back().outputs[0];
}

int GraphBuilder::add_dequantize(const std::string& name, int x) {
  Node n;
  n.name = name;
  n.op = OpType::kDequantize;
  n.inputs = {x};
  n.outputs = {add_tensor(name, shape_of(x, "add_dequantize"), Grid::f32())};
  add_node(std::move(n));
  return graph_.nodes.back().outputs[0];
}

int GraphBuilder::add_detect_v8(const std::string& name,
                                const std::vector<std::pair<int, int>>& levels,
                                const std::vector<float>& strides, int reg_max, int num_classes) {
  Node n;
  n.name = name;
  n.op = OpType::kDetectV8;
  n.v8 = {strides, reg_max, num_classes};
  int anchors = 0;
  for (const auto& [box, cls] : levels) {
    const std::vector<int>& bs = shape_of(box, "add_detect_v8");
    shape_of(cls, "add_detect_v8");
    if (bs.size() != 3)
      throw Error("GraphBuilder::add_detect_v8 '" + name + "': inputs must be [H, W, C]");
    anchors += bs[0] * bs[1];
    n.inputs.push_back(box);
    n.inputs.push_back(cls);
  }
  n.outputs = {add_tensor(name, {anchors, 4 + num_classes}, Grid::f32())};
  add_node(std::move(n));
  return graph_.nodes.back().outputs[0];
}

int GraphBuilder::add_detect_v5(const std::string& name, const std::vector<int>& levels,
                                const std::vector<float>& strides,
                                const std::vector<float>& anchors, int num_anchors,
                                int num_classes) {
  Node n;
  n.name = name;
  n.op = OpType::kDetectV5;
  n.v5 = {strides, anchors, num_anchors, num_classes};
  int rows = 0;
  for (int t : levels) {
    const std::vector<int>& s = shape_of(t, "add_detect_v5");
    if (s.size() != 3)
      throw Error("GraphBuilder::add_detect_v5 '" + name + "': inputs must be [H, W, C]");
    rows += s[0] * s[1] * num_anchors;
  }
  n.inputs = levels;
  n.outputs = {add_tensor(name, {rows, 4 + num_classes}, Grid::f32())};
  add_node(std::move(n));
  return graph_.nodes.back().outputs[0];
}

int GraphBuilder::add_nms(const std::string& name, int x, const NmsAttrs& attrs) {
  shape_of(x, "add_nms");
  Node n;
  n.name = name;
  n.op = OpType::kNms;
  n.inputs = {x};
  n.nms = attrs;
  n.outputs = {add_tensor(name, {attrs.max_detections, 6}, Grid::f32())};
  add_node(std::move(n));
  return graph_.nodes.back().outputs[0];
}

void GraphBuilder::set_outputs(const std::vector<int>& tensors, int detections) {
  graph_.output.tensors = tensors;
  graph_.output.detections = detections;
}

std::string GraphBuilder::serialize() const {
  return serialize_package(graph_);
}

void GraphBuilder::save(const std::string& path) const {
  write_file_atomic(path, serialize());
}

}  // namespace mixnas::rt
