#include "tests/runtime/frame_graphs.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

#include "core/hash.h"
#include "deploy/runtime/kernels/activation.h"

namespace mixnas::rt::testing {

int LogicalGraph::new_value() {
  return values_++;
}

int LogicalGraph::input(int height, int width) {
  Op op{};
  op.kind = Kind::kInput;
  op.name = "images";
  op.height = height;
  op.width = width;
  op.outputs = {new_value()};
  ops_.push_back(op);
  return op.outputs[0];
}

int LogicalGraph::conv(const std::string& name, int x, const ConvLayer& layer, Grid in_grid,
                       int residual) {
  Op op{};
  op.kind = Kind::kConv;
  op.name = name;
  op.inputs = {x};
  op.layer = layer;
  op.in_grid = in_grid;
  op.residual = residual;
  op.outputs = {new_value()};
  ops_.push_back(op);
  return op.outputs[0];
}

int LogicalGraph::concat(const std::string& name, const std::vector<int>& xs) {
  Op op{};
  op.kind = Kind::kConcat;
  op.name = name;
  op.inputs = xs;
  op.outputs = {new_value()};
  ops_.push_back(op);
  return op.outputs[0];
}

std::vector<int> LogicalGraph::split(const std::string& name, int x,
                                     const std::vector<int>& channels) {
  Op op{};
  op.kind = Kind::kSplit;
  op.name = name;
  op.inputs = {x};
  op.channels = channels;
  for (size_t i = 0; i < channels.size(); ++i) op.outputs.push_back(new_value());
  ops_.push_back(op);
  return op.outputs;
}

int LogicalGraph::maxpool(const std::string& name, int x, int kernel, int stride, int pad) {
  Op op{};
  op.kind = Kind::kMaxPool;
  op.name = name;
  op.inputs = {x};
  op.kernel = kernel;
  op.stride = stride;
  op.pad = pad;
  op.outputs = {new_value()};
  ops_.push_back(op);
  return op.outputs[0];
}

int LogicalGraph::upsample(const std::string& name, int x) {
  Op op{};
  op.kind = Kind::kUpsample;
  op.name = name;
  op.inputs = {x};
  op.outputs = {new_value()};
  ops_.push_back(op);
  return op.outputs[0];
}

int LogicalGraph::detect_v8(const std::string& name, const std::vector<std::pair<int, int>>& levels,
                            const std::vector<float>& strides, int reg_max, int num_classes) {
  Op op{};
  op.kind = Kind::kDetect;
  op.name = name;
  for (const auto& [box, cls] : levels) {
    op.inputs.push_back(box);
    op.inputs.push_back(cls);
  }
  op.strides = strides;
  op.reg_max = reg_max;
  op.num_classes = num_classes;
  op.outputs = {new_value()};
  ops_.push_back(op);
  return op.outputs[0];
}

int LogicalGraph::nms(const std::string& name, int x, const NmsAttrs& attrs) {
  Op op{};
  op.kind = Kind::kNms;
  op.name = name;
  op.inputs = {x};
  op.nms = attrs;
  op.outputs = {new_value()};
  ops_.push_back(op);
  return op.outputs[0];
}

namespace {
void add_grid(std::vector<Grid>& grids, const Grid& g) {
  for (const Grid& h : grids)
    if (h == g) return;
  grids.push_back(g);
}
}  // namespace

Graph LogicalGraph::lower(const std::vector<int>& outputs, int detections) const {
  // Backwards: which representations each value needs.
  std::vector<std::vector<Grid>> need(values_);
  for (int v : outputs) add_grid(need[v], Grid::f32());
  for (auto it = ops_.rbegin(); it != ops_.rend(); ++it) {
    const Op& op = *it;
    switch (op.kind) {
      case Kind::kInput:
        break;
      case Kind::kConv:
        add_grid(need[op.inputs[0]], op.in_grid);
        if (op.residual >= 0) add_grid(need[op.residual], Grid::f32());
        break;
      case Kind::kConcat:
      case Kind::kMaxPool:
      case Kind::kUpsample:
        for (const Grid& g : need[op.outputs[0]])
          for (int x : op.inputs) add_grid(need[x], g);
        break;
      case Kind::kSplit:
        for (int o : op.outputs)
          for (const Grid& g : need[o]) add_grid(need[op.inputs[0]], g);
        break;
      case Kind::kDetect:
      case Kind::kNms:
        for (int x : op.inputs) add_grid(need[x], Grid::f32());
        break;
    }
  }
  // Conv values read as floats through one part of a split only (a Bottleneck's residual): the
  // conv writes floats for that part alone, as the exporter lowers them (deploy/export/lower.cpp).
  const auto has_float = [&](int v) {
    for (const Grid& g : need[v])
      if (g.is_float()) return true;
    return false;
  };
  std::vector<char> whole(values_, 0), conv_value(values_, 0);
  std::vector<std::pair<int, int>> part(values_, {-1, 0});  // (split output index, begin)
  for (int v : outputs) whole[v] = 1;
  for (const Op& op : ops_) {
    if (op.kind == Kind::kConv) {
      conv_value[op.outputs[0]] = 1;
      if (op.in_grid.is_float()) whole[op.inputs[0]] = 1;
      if (op.residual >= 0) whole[op.residual] = 1;
    } else if (op.kind == Kind::kSplit) {
      for (size_t k = 0, begin = 0; k < op.outputs.size(); begin += op.channels[k++]) {
        if (!has_float(op.outputs[k])) continue;
        if (part[op.inputs[0]].first >= 0) whole[op.inputs[0]] = 1;
        part[op.inputs[0]] = {static_cast<int>(k), static_cast<int>(begin)};
      }
    } else if (op.kind != Kind::kInput && !op.outputs.empty() && has_float(op.outputs[0])) {
      for (int x : op.inputs) whole[x] = 1;
    }
  }
  const auto float_part = [&](int v) {
    return conv_value[v] && !whole[v] && part[v].first >= 0 ? part[v].first : -1;
  };
  // Forwards: emit runtime ops, one per needed grid for layout ops.
  GraphBuilder b("mixnas tests/runtime/frame_graphs");
  std::vector<std::vector<std::pair<Grid, int>>> rep(values_);
  const auto get = [&](int v, const Grid& g) {
    for (const auto& [h, t] : rep[v])
      if (h == g) return t;
    throw std::logic_error("lower: value without the needed representation");
  };
  const auto suffix = [](const std::string& name, size_t i) {
    return i == 0 ? name : name + "@" + std::to_string(i);
  };
  for (const Op& op : ops_) {
    switch (op.kind) {
      case Kind::kInput: {
        if (need[op.outputs[0]].size() != 1) throw std::logic_error("lower: input needs one grid");
        const Grid g = need[op.outputs[0]][0];
        rep[op.outputs[0]].push_back({g, b.add_input(op.name, op.height, op.width, g)});
        break;
      }
      case Kind::kConv: {
        std::vector<Grid> grids = need[op.outputs[0]];
        if (grids.empty()) grids.push_back(Grid::f32());
        const int res = op.residual >= 0 ? get(op.residual, Grid::f32()) : -1;
        ConvLayer layer = op.layer;
        if (float_part(op.outputs[0]) >= 0) {
          const Op& split = *std::find_if(ops_.begin(), ops_.end(), [&](const Op& s) {
            return s.kind == Kind::kSplit && s.inputs[0] == op.outputs[0];
          });
          layer.f32_channel_begin = part[op.outputs[0]].second;
          layer.f32_channels = split.channels[part[op.outputs[0]].first];
        }
        const std::vector<int> ts =
            b.add_conv(op.name, get(op.inputs[0], op.in_grid), layer, grids, res);
        for (size_t i = 0; i < grids.size(); ++i) rep[op.outputs[0]].push_back({grids[i], ts[i]});
        break;
      }
      case Kind::kConcat:
      case Kind::kMaxPool:
      case Kind::kUpsample: {
        const std::vector<Grid>& grids = need[op.outputs[0]];
        for (size_t i = 0; i < grids.size(); ++i) {
          int t = -1;
          if (op.kind == Kind::kConcat) {
            std::vector<int> xs;
            for (int x : op.inputs) xs.push_back(get(x, grids[i]));
            t = b.add_concat(suffix(op.name, i), xs);
          } else if (op.kind == Kind::kMaxPool) {
            t = b.add_maxpool(suffix(op.name, i), get(op.inputs[0], grids[i]), op.kernel, op.stride,
                              op.pad);
          } else {
            t = b.add_upsample(suffix(op.name, i), get(op.inputs[0], grids[i]), 2);
          }
          rep[op.outputs[0]].push_back({grids[i], t});
        }
        break;
      }
      case Kind::kSplit: {
        std::vector<Grid> grids;
        for (int o : op.outputs)
          for (const Grid& g : need[o]) add_grid(grids, g);
        for (size_t i = 0; i < grids.size(); ++i) {
          if (grids[i].is_float() && float_part(op.inputs[0]) >= 0) {  // the conv wrote the part
            rep[op.outputs[float_part(op.inputs[0])]].push_back(
                {grids[i], get(op.inputs[0], grids[i])});
            continue;
          }
          const std::vector<int> ts =
              b.add_split(suffix(op.name, i), get(op.inputs[0], grids[i]), op.channels);
          for (size_t k = 0; k < ts.size(); ++k) rep[op.outputs[k]].push_back({grids[i], ts[k]});
        }
        break;
      }
      case Kind::kDetect: {
        std::vector<std::pair<int, int>> levels;
        for (size_t i = 0; i < op.inputs.size(); i += 2)
          levels.push_back({get(op.inputs[i], Grid::f32()), get(op.inputs[i + 1], Grid::f32())});
        rep[op.outputs[0]].push_back({Grid::f32(), b.add_detect_v8(op.name, levels, op.strides,
                                                                   op.reg_max, op.num_classes)});
        break;
      }
      case Kind::kNms:
        rep[op.outputs[0]].push_back(
            {Grid::f32(), b.add_nms(op.name, get(op.inputs[0], Grid::f32()), op.nms)});
        break;
    }
  }
  std::vector<int> outs;
  for (int v : outputs) outs.push_back(get(v, Grid::f32()));
  b.set_outputs(outs, detections);
  Graph g = b.graph();
  validate_graph(g, "LogicalGraph::lower");
  return g;
}

namespace {

// SplitMix64: the same numbers on every platform (std:: distributions are not portable).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() { return splitmix64(s_); }
  float uniform(float lo, float hi) {
    return lo + (hi - lo) * static_cast<float>(next() >> 40) / 16777216.0f;
  }
  int integer(int lo, int hi) {
    return lo + static_cast<int>(next() % static_cast<uint64_t>(hi - lo + 1));
  }

 private:
  uint64_t s_;
};

class YoloWriter {
 public:
  YoloWriter(const YoloOptions& o) : o_(o), rng_(o.seed) {}

  int conv(const std::string& name, int x, int cout, int k, int s, bool act = true,
           int residual = -1, bool first = false) {
    const int cin = ch_.at(x);
    ConvLayer l = ConvLayer::square(cout, k, s, act ? static_cast<int>(Activation::kSilu) : 0);
    const int K = cin * k * k;
    const size_t n = static_cast<size_t>(cout) * K;
    const bool low = o_.int8 && !first && act;  // takes YoloOptions::w_bits / a_bits
    const int wb = low ? o_.w_bits : 8, ab = low ? o_.a_bits : 8;
    const int qmax = wb == 1 ? 1 : (1 << (wb - 1)) - 1;
    std::vector<int8_t> codes(n);
    for (auto& c : codes) {
      const int q = rng_.integer(wb == 1 ? -1 : -qmax, qmax);
      c = static_cast<int8_t>(wb == 1 && q == 0 ? 1 : q);
    }
    std::vector<float> scale(cout);
    for (auto& s_w : scale) s_w = 1.6f * std::sqrt(3.0f / K) / qmax * rng_.uniform(0.8f, 1.2f);
    l.bias.resize(cout);
    for (auto& bias : l.bias) bias = rng_.uniform(-0.2f, 0.2f);
    if (o_.int8) {
      l.w_bits = wb;
      l.weight_codes = codes;
      l.weight_scale = scale;
    } else {
      l.weights_f32.resize(n);
      for (size_t i = 0; i < n; ++i) l.weights_f32[i] = codes[i] * scale[i / K];
    }
    Grid in = Grid::f32();
    if (o_.int8 && first) {
      in = Grid::codes(8, 1.0f / 255.0f, 0);
    } else if (o_.int8) {
      const int levels = (1 << ab) - 1;  // the 8-bit grid's range, on ab bits
      const float step = rng_.uniform(5.0f, 7.0f) / levels;
      in = Grid::codes(ab, step, rng_.integer(10, 16) * levels / 255);
    }
    const int y = g_.conv(name, x, l, in, residual);
    ch_[y] = cout;
    return y;
  }

  int c2f(const std::string& name, int x, int c2, int n, bool shortcut) {
    const int c = c2 / 2;
    const int y = conv(name + ".cv1", x, 2 * c, 1, 1);
    std::vector<int> parts = g_.split(name + ".split", y, {c, c});
    for (int p : parts) ch_[p] = c;
    int cur = parts[1];
    for (int i = 0; i < n; ++i) {
      const std::string m = name + ".m" + std::to_string(i);
      const int t = conv(m + ".cv1", cur, c, 3, 1);
      cur = conv(m + ".cv2", t, c, 3, 1, true, shortcut ? cur : -1);
      parts.push_back(cur);
    }
    return conv(name + ".cv2", concat(name + ".cat", parts), c2, 1, 1);
  }

  int concat(const std::string& name, const std::vector<int>& xs) {
    const int y = g_.concat(name, xs);
    int c = 0;
    for (int x : xs) c += ch_.at(x);
    ch_[y] = c;
    return y;
  }

  int sppf(const std::string& name, int x, int c2) {
    const int c_ = ch_.at(x) / 2;
    const int y = conv(name + ".cv1", x, c_, 1, 1);
    std::vector<int> parts = {y};
    for (int i = 0; i < 3; ++i) {
      const int p = g_.maxpool(name + ".m" + std::to_string(i), parts.back(), 5, 1, 2);
      ch_[p] = c_;
      parts.push_back(p);
    }
    return conv(name + ".cv2", concat(name + ".cat", parts), c2, 1, 1);
  }

  int upsample(const std::string& name, int x) {
    const int y = g_.upsample(name, x);
    ch_[y] = ch_.at(x);
    return y;
  }

  Graph build() {
    const int nc = o_.num_classes;
    const auto C = [&](int c) { return std::max(2, c / o_.channel_div); };
    const int img = g_.input(o_.imgsz, o_.imgsz);
    ch_[img] = 3;
    int x = conv("0.conv", img, C(16), 3, 2, true, -1, true);
    x = conv("1.conv", x, C(32), 3, 2);
    x = c2f("2.c2f", x, C(32), 1, true);
    x = conv("3.conv", x, C(64), 3, 2);
    const int p3 = c2f("4.c2f", x, C(64), 2, true);
    x = conv("5.conv", p3, C(128), 3, 2);
    const int p4 = c2f("6.c2f", x, C(128), 2, true);
    x = conv("7.conv", p4, C(256), 3, 2);
    x = c2f("8.c2f", x, C(256), 1, true);
    const int p5 = sppf("9.sppf", x, C(256));
    x = concat("11.cat", {upsample("10.up", p5), p4});
    const int h12 = c2f("12.c2f", x, C(128), 1, false);
    x = concat("14.cat", {upsample("13.up", h12), p3});
    const int o3 = c2f("15.c2f", x, C(64), 1, false);
    x = concat("17.cat", {conv("16.conv", o3, C(64), 3, 2), h12});
    const int o4 = c2f("18.c2f", x, C(128), 1, false);
    x = concat("20.cat", {conv("19.conv", o4, C(128), 3, 2), p5});
    const int o5 = c2f("21.c2f", x, C(256), 1, false);
    const int c2 = C(64), c3 = C(std::max(64, std::min(nc, 100)));
    std::vector<std::pair<int, int>> levels;
    std::vector<int> outputs;
    const int feats[3] = {o3, o4, o5};
    for (int l = 0; l < 3; ++l) {
      const std::string p = "22.detect." + std::to_string(l);
      int bx = conv(p + ".box0", feats[l], c2, 3, 1);
      bx = conv(p + ".box1", bx, c2, 3, 1);
      bx = conv(p + ".box2", bx, 64, 1, 1, false);
      int cl = conv(p + ".cls0", feats[l], c3, 3, 1);
      cl = conv(p + ".cls1", cl, c3, 3, 1);
      cl = conv(p + ".cls2", cl, nc, 1, 1, false);
      levels.push_back({bx, cl});
      outputs.push_back(bx);
      outputs.push_back(cl);
    }
    const int decoded = g_.detect_v8("22.decode", levels, {8.0f, 16.0f, 32.0f}, 16, nc);
    outputs.push_back(decoded);
    outputs.push_back(g_.nms("nms", decoded, o_.nms));
    Graph graph = g_.lower(outputs, static_cast<int>(outputs.size()) - 1);
    graph.output.decode = DecodeKind::kYoloV8;
    graph.output.strides = {8.0f, 16.0f, 32.0f};
    for (int c = 0; c < nc; ++c) graph.output.class_names.push_back("class" + std::to_string(c));
    return graph;
  }

 private:
  YoloOptions o_;
  Rng rng_;
  LogicalGraph g_;
  std::map<int, int> ch_;
};

}  // namespace

Graph make_yolov8n_graph(const YoloOptions& options) {
  return YoloWriter(options).build();
}

std::vector<uint8_t> make_test_image(int width, int height, uint32_t seed) {
  Rng rng(seed);
  std::vector<uint8_t> img(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c) {
        const int smooth = (x * (c + 1) * 7 + y * (3 - c) * 5) % 256;
        img[(static_cast<size_t>(y) * width + x) * 3 + c] =
            static_cast<uint8_t>((smooth + rng.integer(0, 40)) % 256);
      }
  return img;
}

Graph make_all_ops_graph() {
  Rng rng(7);
  GraphBuilder b("mixnas tests: all ops");
  const Grid ga = Grid::codes(8, 0.03f, 12), gb = Grid::codes(8, 0.05f, 7),
             gc = Grid::codes(4, 0.2f, 3);
  const int img = b.add_input("images", 16, 16, Grid::codes(8, 1.0f / 255.0f, 0));
  const auto codes_layer = [&](int cin, int cout, int k, int s, int groups, int bits, int act) {
    ConvLayer l = ConvLayer::square(cout, k, s, act);
    l.groups = groups;
    l.w_bits = bits;
    const int n = cout * (cin / groups) * k * k;
    for (int i = 0; i < n; ++i) {
      int q = rng.integer(-(1 << (bits - 1)), (1 << (bits - 1)) - 1);
      if (bits == 1) q = q < 0 ? -1 : 1;
      l.weight_codes.push_back(static_cast<int8_t>(q));
    }
    for (int c = 0; c < cout; ++c) l.weight_scale.push_back(rng.uniform(0.01f, 0.05f));
    for (int c = 0; c < cout; ++c) l.bias.push_back(rng.uniform(-0.5f, 0.5f));
    return l;
  };
  const std::vector<int> c1 =
      b.add_conv("c1", img, codes_layer(3, 8, 3, 1, 1, 8, 6), {ga, Grid::f32()});
  const int qb = b.add_quantize("q", c1[1], gb);
  const int dq = b.add_dequantize("dq", c1[0]);
  const int sum = b.add_add("add", c1[1], dq);
  ConvLayer dw = ConvLayer::square(8, 3, 2, 1);
  dw.groups = 8;
  for (int i = 0; i < 8 * 9; ++i) dw.weights_f32.push_back(rng.uniform(-1.0f, 1.0f));
  const int c2 = b.add_conv("c2_dw_f32", sum, dw, {Grid::f32()})[0];
  ConvLayer l3 = codes_layer(8, 8, 1, 1, 1, 8, 3);
  l3.bias.clear();
  const int c3 = b.add_conv("c3_residual", qb, l3, {gc}, sum)[0];
  const int mp = b.add_maxpool("maxpool", c3, 3, 2, 1);
  const int up = b.add_upsample("upsample", mp, 2);
  const int cat = b.add_concat("concat", {up, c3});
  const std::vector<int> sp = b.add_split("split", cat, {4, 12});
  // Detect heads read 12 channels at 4-bit codes: 2-bit and 1-bit weights on the way.
  const int box = b.add_conv("box", sp[1], codes_layer(12, 16, 1, 1, 1, 2, 0), {Grid::f32()})[0];
  const int cls = b.add_conv("cls", sp[1], codes_layer(12, 2, 1, 1, 1, 1, 0), {Grid::f32()})[0];
  const int v8 = b.add_detect_v8("detect_v8", {{box, cls}}, {1.0f}, 4, 2);
  const int v5in = b.add_conv("v5", sp[1], codes_layer(12, 14, 1, 1, 1, 8, 0), {Grid::f32()})[0];
  const int v5 = b.add_detect_v5("detect_v5", {v5in}, {1.0f}, {2.0f, 3.0f, 5.0f, 4.0f}, 2, 2);
  const int det = b.add_nms("nms", v8, NmsAttrs{0.3f, 0.5f, 20, true});
  b.set_outputs({c2, v5, v8, det}, 3);
  b.output_spec().class_names = {"a", "b"};
  b.output_spec().decode = DecodeKind::kYoloV8;
  b.output_spec().strides = {1.0f};
  b.output_spec().reg_max = 4;
  return b.graph();
}

namespace {
std::vector<ConvShape> list_yolov8n_convs() {
  std::vector<ConvShape> L;
  auto conv = [&](const std::string& n, int hw, int ci, int co, int k, int s) {
    L.push_back({n, hw, ci, co, k, s});
  };
  // C2f(c1, c2, n, hw): cv1 1x1 c1->2c, n bottlenecks of two 3x3 c->c, cv2 1x1 (2+n)c->c2.
  auto c2f = [&](const std::string& n, int hw, int c1, int c2, int reps) {
    const int c = c2 / 2;
    conv(n + ".cv1", hw, c1, 2 * c, 1, 1);
    for (int i = 0; i < reps; ++i) {
      conv(n + ".m" + std::to_string(i) + ".cv1", hw, c, c, 3, 1);
      conv(n + ".m" + std::to_string(i) + ".cv2", hw, c, c, 3, 1);
    }
    conv(n + ".cv2", hw, (2 + reps) * c, c2, 1, 1);
  };
  conv("0.conv", 320, 3, 16, 3, 2);
  conv("1.conv", 160, 16, 32, 3, 2);
  c2f("2.c2f", 80, 32, 32, 1);
  conv("3.conv", 80, 32, 64, 3, 2);
  c2f("4.c2f", 40, 64, 64, 2);
  conv("5.conv", 40, 64, 128, 3, 2);
  c2f("6.c2f", 20, 128, 128, 2);
  conv("7.conv", 20, 128, 256, 3, 2);
  c2f("8.c2f", 10, 256, 256, 1);
  conv("9.sppf.cv1", 10, 256, 128, 1, 1);
  conv("9.sppf.cv2", 10, 512, 256, 1, 1);
  c2f("12.c2f", 20, 384, 128, 1);
  c2f("15.c2f", 40, 192, 64, 1);
  conv("16.conv", 40, 64, 64, 3, 2);
  c2f("18.c2f", 20, 192, 128, 1);
  conv("19.conv", 20, 128, 128, 3, 2);
  c2f("21.c2f", 10, 384, 256, 1);
  // Detect: per level, box branch 3x3 x->64, 3x3 64->64, 1x1 64->64 and class branch
  // 3x3 x->80, 3x3 80->80, 1x1 80->80.
  const int level_hw[3] = {40, 20, 10}, level_c[3] = {64, 128, 256};
  for (int i = 0; i < 3; ++i) {
    const std::string n = "22.detect.p" + std::to_string(i + 3);
    conv(n + ".box0", level_hw[i], level_c[i], 64, 3, 1);
    conv(n + ".box1", level_hw[i], 64, 64, 3, 1);
    conv(n + ".box2", level_hw[i], 64, 64, 1, 1);
    conv(n + ".cls0", level_hw[i], level_c[i], 80, 3, 1);
    conv(n + ".cls1", level_hw[i], 80, 80, 3, 1);
    conv(n + ".cls2", level_hw[i], 80, 80, 1, 1);
  }
  return L;
}
}  // namespace

const std::vector<ConvShape>& yolov8n_conv_shapes() {
  static const std::vector<ConvShape> shapes = list_yolov8n_convs();
  return shapes;
}

const ConvShape& yolov8n_conv_shape(const std::string& name) {
  for (const ConvShape& s : yolov8n_conv_shapes())
    if (s.name == name) return s;
  throw std::out_of_range("no YOLOv8n conv named '" + name + "' (tests/runtime/frame_graphs.cpp)");
}

}  // namespace mixnas::rt::testing
