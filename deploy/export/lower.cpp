// IR -> runtime graph (docs/numerics.md "Where quantization happens").
//
// Backwards pass: the grids each value is needed in. A conv needs its input on its own grid (a
// float input for a_bits = 32), a residual and the Detect decode need floats, and a layout op
// (concat, chunk, max-pool, upsample) passes every grid asked of its output on to its inputs:
// these ops are exact on codes of one grid, so they run once per grid on codes, and every conv
// producer writes each grid straight from its float epilogue. The image is the only value no
// conv produces: it enters as 8-bit codes (s = 1/255, z = 0) when that is the only grid asked of
// it, else as floats with a Quantize per other grid.
//
// Runtime convs need float weights with a float input and codes with codes. Two trained
// combinations fall outside: w_bits 32 with a quantized input (the input is quantized to the
// conv's grid and dequantized, exactly as the trainer's fake quantization does) and quantized
// weights with a float input (the weights are stored as the floats code * step).
#include <algorithm>
#include <filesystem>
#include <iterator>
#include <map>
#include <string>
#include <tuple>

#include "core/error.h"
#include "deploy/export/ir.h"
#include "deploy/runtime/builder.h"

namespace mixnas::exporter {

std::vector<float> IrConv::effective_weight() const {
  if (w_bits == 32) return weight;
  std::vector<float> w(codes.size());
  const size_t per = codes.size() / static_cast<size_t>(out_c);
  for (size_t i = 0; i < codes.size(); ++i) w[i] = static_cast<float>(codes[i]) * w_scale[i / per];
  return w;
}

namespace {

void add_grid(std::vector<rt::Grid>& grids, const rt::Grid& g) {
  for (const rt::Grid& h : grids)
    if (h == g) return;
  grids.push_back(g);
}

bool grid_less(const rt::Grid& a, const rt::Grid& b) {
  return std::make_tuple(a.bits, a.scale, a.zero_point) <
         std::make_tuple(b.bits, b.scale, b.zero_point);
}

struct GridKey {
  int value;
  rt::Grid grid;
  bool operator<(const GridKey& o) const {
    if (value != o.value) return value < o.value;
    return grid_less(grid, o.grid);
  }
};

std::string grid_suffix(const rt::Grid& g) {
  if (g.is_float()) return "f32";
  return "q" + std::to_string(g.bits);
}

rt::Grid image_grid() {
  return rt::Grid::codes(8, 1.0f / 255.0f, 0);
}

// Every conv reads its input on its own grid (floats for a_bits = 32).
rt::Grid conv_read_grid(const IrConv& c) {
  return c.in_grid;
}

// Backwards pass: the grids every value is needed in.
std::vector<std::vector<rt::Grid>> needed_grids(const IrModel& ir) {
  std::vector<std::vector<rt::Grid>> need(ir.shapes.size());
  const IrHead& head = ir.head;
  for (int v : head.boxes) add_grid(need[v], rt::Grid::f32());
  for (int v : head.classes) add_grid(need[v], rt::Grid::f32());
  for (int v : head.levels) add_grid(need[v], rt::Grid::f32());
  for (auto it = ir.nodes.rbegin(); it != ir.nodes.rend(); ++it) {
    const IrNode& n = *it;
    switch (n.op) {
      case IrOp::kInput:
        break;
      case IrOp::kConv:
        add_grid(need[n.inputs[0]], conv_read_grid(ir.convs[n.conv]));
        if (n.residual >= 0) add_grid(need[n.residual], rt::Grid::f32());
        break;
      case IrOp::kConcat:
      case IrOp::kChunk:
      case IrOp::kMaxPool:
      case IrOp::kUpsample:
        for (const rt::Grid& g : need[n.output])
          for (int x : n.inputs) add_grid(need[x], g);
        break;
    }
  }
  return need;
}

bool needs_float(const std::vector<rt::Grid>& grids) {
  for (const rt::Grid& g : grids)
    if (g.is_float()) return true;
  return false;
}

// Conv values whose floats are read through one part of a chunk only (a Bottleneck's residual
// in a C2f): value -> {first channel, channels}. Their conv writes floats for that part alone
// (docs/memory.md "A residual's float copy: its part only"); a value with any other float reader
// keeps every channel.
std::map<int, std::pair<int, int>> float_parts(const IrModel& ir,
                                               const std::vector<std::vector<rt::Grid>>& need) {
  std::map<int, std::pair<int, int>> part;
  std::vector<char> whole(ir.shapes.size(), 0), conv_value(ir.shapes.size(), 0);
  for (int v : ir.head.boxes) whole[v] = 1;
  for (int v : ir.head.classes) whole[v] = 1;
  for (int v : ir.head.levels) whole[v] = 1;
  for (const IrNode& n : ir.nodes) {
    if (n.op == IrOp::kConv) {
      conv_value[n.output] = 1;
      if (ir.convs[n.conv].in_grid.is_float()) whole[n.inputs[0]] = 1;
      if (n.residual >= 0) whole[n.residual] = 1;
      continue;
    }
    if (n.op == IrOp::kInput || !needs_float(need[n.output])) continue;
    if (n.op != IrOp::kChunk) {
      for (int x : n.inputs) whole[x] = 1;
      continue;
    }
    int begin = 0;
    for (int i = 0; i < n.chunk_index; ++i) begin += n.chunks[i];
    const std::pair<int, int> range{begin, n.chunks[n.chunk_index]};
    auto [it, fresh] = part.emplace(n.inputs[0], range);
    if (!fresh && it->second != range) whole[n.inputs[0]] = 1;  // two parts read as floats
  }
  for (auto it = part.begin(); it != part.end();)
    it = whole[it->first] || !conv_value[it->first] ? part.erase(it) : std::next(it);
  return part;
}

std::string name_for(const std::string& base, const std::vector<rt::Grid>& grids, size_t i) {
  return grids.size() == 1 ? base : base + "@" + grid_suffix(grids[i]) + "_" + std::to_string(i);
}

rt::ConvLayer conv_layer(const IrConv& c) {
  rt::ConvLayer l;
  l.out_c = c.out_c;
  l.kernel_h = l.kernel_w = c.kernel;
  l.stride_h = l.stride_w = c.stride;
  l.pad_top = l.pad_left = l.pad_bottom = l.pad_right = c.pad;
  l.dilation_h = l.dilation_w = c.dilation;
  l.groups = c.groups;
  l.activation = static_cast<int>(c.act);
  l.alpha = c.alpha;
  l.bias = c.bias;
  return l;
}

// The forward pass: every IR node becomes runtime nodes, one per grid its output is needed in.
class Lowering {
 public:
  Lowering(const IrModel& ir, const std::string& producer,
           std::map<int, std::pair<int, int>> float_parts)
      : ir_(ir), b_(producer), float_parts_(std::move(float_parts)) {}

  void node(const IrNode& n, std::vector<rt::Grid> grids) {
    switch (n.op) {
      case IrOp::kInput:
        input(n, grids);
        break;
      case IrOp::kConv:
        if (grids.empty()) grids.push_back(rt::Grid::f32());
        conv(n, grids);
        break;
      case IrOp::kConcat:
      case IrOp::kMaxPool:
      case IrOp::kUpsample:
        layout(n, grids);
        break;
      case IrOp::kChunk:
        chunk(n, grids);
        break;
    }
  }
  void head();
  rt::GraphBuilder& builder() { return b_; }
  // Runtime tensor -> IR value (a conv's float part holds the chunk value: the later one).
  std::vector<int> tensor_values(size_t n_tensors) const {
    std::vector<int> values(n_tensors, -1);
    for (const auto& [key, t] : rep_) values[size_t(t)] = key.value;
    return values;
  }

 private:
  int get(int v, const rt::Grid& g) const {
    auto it = rep_.find({v, g});
    if (it == rep_.end())
      throw Error("export: internal error: value " + std::to_string(v) + " has no " +
                  grid_suffix(g) + " tensor");
    return it->second;
  }
  void input(const IrNode& n, const std::vector<rt::Grid>& grids);
  void conv(const IrNode& n, const std::vector<rt::Grid>& grids);
  int conv_input(const IrNode& n, const IrConv& c, rt::ConvLayer& l);
  void layout(const IrNode& n, const std::vector<rt::Grid>& grids);
  void chunk(const IrNode& n, const std::vector<rt::Grid>& grids);

  const IrModel& ir_;
  rt::GraphBuilder b_;
  std::map<GridKey, int> rep_;  // (value, grid) -> runtime tensor
  std::map<GridKey, int> dequantized_;
  std::map<int, std::pair<int, int>> float_parts_;  // float_parts()
  // Chunk splits, shared by the parts of one partition: (source, grid, sizes) -> outputs.
  std::map<std::tuple<int, int, float, int, std::vector<int>>, std::vector<int>> splits_;
};

void Lowering::input(const IrNode& n, const std::vector<rt::Grid>& grids) {
  if (grids.empty()) throw Error("export: the model does not read its input image");
  const IrShape& s = ir_.shapes[n.output];
  if (grids.size() == 1 && grids[0] == image_grid()) {
    rep_[{n.output, grids[0]}] = b_.add_input("images", s.h, s.w, image_grid(), s.c);
    return;
  }
  const int x = b_.add_input("images", s.h, s.w, rt::Grid::f32(), s.c);
  rep_[{n.output, rt::Grid::f32()}] = x;
  for (size_t i = 0; i < grids.size(); ++i)
    if (!grids[i].is_float())
      rep_[{n.output, grids[i]}] =
          b_.add_quantize("images@" + grid_suffix(grids[i]) + "_" + std::to_string(i), x, grids[i]);
}

// The conv's input tensor, and its weights in the form that input takes.
int Lowering::conv_input(const IrNode& n, const IrConv& c, rt::ConvLayer& l) {
  if (c.w_bits != 32 && !c.in_grid.is_float()) {
    l.w_bits = c.w_bits;
    l.weight_codes = c.codes;
    l.weight_scale = c.w_scale;
    return get(n.inputs[0], c.in_grid);
  }
  l.w_bits = 32;
  l.weights_f32 = c.effective_weight();
  if (c.in_grid.is_float()) return get(n.inputs[0], rt::Grid::f32());
  const GridKey key{n.inputs[0], c.in_grid};
  auto it = dequantized_.find(key);
  if (it == dequantized_.end())
    it =
        dequantized_.emplace(key, b_.add_dequantize(c.name + ".in_dq", get(n.inputs[0], c.in_grid)))
            .first;
  return it->second;
}

void Lowering::conv(const IrNode& n, const std::vector<rt::Grid>& grids) {
  const IrConv& c = ir_.convs[n.conv];
  rt::ConvLayer l = conv_layer(c);
  const int x = conv_input(n, c, l);
  const int res = n.residual >= 0 ? get(n.residual, rt::Grid::f32()) : -1;
  if (auto it = float_parts_.find(n.output); it != float_parts_.end())
    std::tie(l.f32_channel_begin, l.f32_channels) = it->second;
  const std::vector<int> ts = b_.add_conv(c.name, x, l, grids, res);
  for (size_t i = 0; i < grids.size(); ++i) rep_[{n.output, grids[i]}] = ts[i];
}

void Lowering::layout(const IrNode& n, const std::vector<rt::Grid>& grids) {
  for (size_t i = 0; i < grids.size(); ++i) {
    const std::string name = name_for(n.name, grids, i);
    int t = -1;
    if (n.op == IrOp::kConcat) {
      std::vector<int> xs;
      for (int x : n.inputs) xs.push_back(get(x, grids[i]));
      t = b_.add_concat(name, xs);
    } else if (n.op == IrOp::kMaxPool) {
      t = b_.add_maxpool(name, get(n.inputs[0], grids[i]), n.kernel, n.stride, n.pad);
    } else {
      t = b_.add_upsample(name, get(n.inputs[0], grids[i]), n.factor);
    }
    rep_[{n.output, grids[i]}] = t;
  }
}

void Lowering::chunk(const IrNode& n, const std::vector<rt::Grid>& grids) {
  for (size_t i = 0; i < grids.size(); ++i) {
    const rt::Grid& g = grids[i];
    if (g.is_float() && float_parts_.count(n.inputs[0])) {  // the conv wrote this part alone
      rep_[{n.output, g}] = get(n.inputs[0], g);
      continue;
    }
    const auto key = std::make_tuple(n.inputs[0], g.bits, g.scale, g.zero_point, n.chunks);
    auto it = splits_.find(key);
    if (it == splits_.end())
      it =
          splits_
              .emplace(key, b_.add_split(name_for(n.name, grids, i), get(n.inputs[0], g), n.chunks))
              .first;
    rep_[{n.output, g}] = it->second.at(static_cast<size_t>(n.chunk_index));
  }
}

// The raw head outputs, the decoded table and NMS: the graph's outputs.
void Lowering::head() {
  const IrHead& head = ir_.head;
  std::vector<int> outs;
  int decoded = -1;
  if (head.anchor_based) {
    std::vector<int> levels;
    for (int v : head.levels) levels.push_back(get(v, rt::Grid::f32()));
    outs = levels;
    decoded = b_.add_detect_v5("detect", levels, head.strides, head.anchors, head.num_anchors,
                               head.num_classes);
    b_.output_spec().decode = rt::DecodeKind::kYoloV5;
  } else {
    std::vector<std::pair<int, int>> levels;
    for (size_t i = 0; i < head.boxes.size(); ++i) {
      levels.push_back(
          {get(head.boxes[i], rt::Grid::f32()), get(head.classes[i], rt::Grid::f32())});
      outs.push_back(levels.back().first);
      outs.push_back(levels.back().second);
    }
    decoded = b_.add_detect_v8("detect", levels, head.strides, head.reg_max, head.num_classes);
    b_.output_spec().decode = rt::DecodeKind::kYoloV8;
    b_.output_spec().reg_max = head.reg_max;
  }
  outs.push_back(decoded);
  outs.push_back(b_.add_nms("nms", decoded, ir_.nms));
  b_.set_outputs(outs, static_cast<int>(outs.size()) - 1);
  b_.output_spec().strides = head.strides;
  b_.output_spec().class_names = ir_.class_names;
  rt::InputSpec& in = b_.input_spec();
  in.height = ir_.height;
  in.width = ir_.width;
  in.letterbox = ir_.letterbox;
}

}  // namespace

rt::Graph ir_to_graph(const IrModel& ir, std::vector<int>* tensor_values) {
  const std::vector<std::vector<rt::Grid>> need = needed_grids(ir);
  // The producer names the source by file name only: a package's bytes do not depend on the folder
  // it was exported from (the golden packages are compared byte for byte on other machines).
  const std::string source = std::filesystem::path(ir.source).filename().string();
  Lowering lowering(ir, "mixnas export" + (source.empty() ? "" : " (" + source + ")"),
                    float_parts(ir, need));
  for (const IrNode& n : ir.nodes) lowering.node(n, need[n.output]);
  lowering.head();
  rt::Graph g = lowering.builder().graph();
  if (tensor_values) *tensor_values = lowering.tensor_values(g.tensors.size());
  rt::validate_graph(g, "export of " + (ir.source.empty() ? std::string("model") : ir.source));
  return g;
}

}  // namespace mixnas::exporter
