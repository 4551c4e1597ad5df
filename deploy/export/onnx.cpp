// IR -> ONNX, opset 13 (docs/export.md "ONNX").
//
// QDQ form (default): every conv input of a_bits <= 8 is QuantizeLinear (uint8, the conv's scale
// and zero point) -> Clip to [0, 2^b - 1] when b < 8 -> DequantizeLinear; weights of w_bits <= 8
// are int8 initializers holding the trained codes (already within the b-bit range) with a
// per-output-channel DequantizeLinear (axis 0). Float form (--onnx-float): the weights are the
// floats code * step, already on their grid, and activations stay float (no Q/DQ at all).
// Outputs (OnnxOptions::decoded): the decode appended to the graph, one tensor "output0" in the
// layout YOLO code reads (YOLOv8 [1, 4 + nc, N], YOLOv5 [1, N, 5 + nc]); or the raw head outputs,
// YOLOv8 per level [1, 4 * reg_max + nc, h, w], YOLOv5 per level [1, na, h, w, 5 + nc]. NMS is
// never part of the graph.
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>

#include "core/atomic_file.h"
#include "core/error.h"
#include "deploy/export/export.h"

#ifdef MIXNAS_HAVE_ONNX
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#endif

namespace mixnas::exporter {

#ifndef MIXNAS_HAVE_ONNX

bool onnx_available() {
  return false;
}

std::string onnx_bytes(const IrModel&, const OnnxOptions&) {
  throw Error(
      "ONNX export is not available in this build: install libonnx-dev, "
      "libprotobuf-dev and protobuf-compiler, re-run cmake and rebuild");
}

#else

bool onnx_available() {
  return true;
}

namespace {

constexpr int kOpset = 13;

class OnnxWriter {
 public:
  OnnxWriter(const IrModel& ir, const OnnxOptions& o) : ir_(ir), o_(o) {}

  std::string run() {
    onnx::ModelProto model;
    model.set_ir_version(7);  // the IR version of opset 13
    model.set_producer_name(o_.producer);
    model.set_producer_version("0.1");
    model.set_domain("ai.mixnas");
    model.set_doc_string("mixnas export of " +
                         std::filesystem::path(ir_.source).filename().string());
    auto* opset = model.add_opset_import();
    opset->set_domain("");
    opset->set_version(kOpset);
    g_ = model.mutable_graph();
    g_->set_name("mixnas");
    build();
    meta(model, "mixnas.representation",
         o_.float_weights ? "float weights on their grid, float activations"
                          : "QDQ int8/uint8 containers, Clip to the trained bit range");
    meta(model, "mixnas.imgsz", std::to_string(ir_.height) + "x" + std::to_string(ir_.width));
    std::string names;
    for (size_t i = 0; i < ir_.class_names.size(); ++i)
      names += (i ? "," : "") + ir_.class_names[i];
    meta(model, "names", names);
    std::string strides;
    for (size_t i = 0; i < ir_.head.strides.size(); ++i)
      strides += (i ? "," : "") + std::to_string(int(ir_.head.strides[i]));
    meta(model, "stride", strides);
    meta(model, "head", ir_.head.anchor_based ? "yolov5" : "yolov8");
    meta(model, "mixnas.outputs", o_.decoded ? "decoded" : "raw");
    try {
      onnx::checker::check_model(model);
    } catch (const std::exception& e) {
      throw Error(std::string("export: the ONNX graph fails onnx::checker: ") + e.what());
    }
    std::string bytes;
    if (!model.SerializeToString(&bytes)) throw Error("export: ONNX serialization failed");
    return bytes;
  }

 private:
  static void meta(onnx::ModelProto& m, const std::string& k, const std::string& v) {
    auto* p = m.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  }

  static void value_info(onnx::ValueInfoProto* vi, const std::string& name,
                         const std::vector<int64_t>& dims) {
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) tt->mutable_shape()->add_dim()->set_dim_value(d);
  }

  std::string fresh(const std::string& base) { return base + "_" + std::to_string(counter_++); }

  onnx::NodeProto* node(const std::string& op, const std::vector<std::string>& in,
                        const std::vector<std::string>& out, const std::string& name) {
    auto* n = g_->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const auto& s : in) n->add_input(s);
    for (const auto& s : out) n->add_output(s);
    return n;
  }
  static void attr_i(onnx::NodeProto* n, const std::string& k, int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr_f(onnx::NodeProto* n, const std::string& k, float v) {
    auto* a = n->add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void attr_s(onnx::NodeProto* n, const std::string& k, const std::string& v) {
    auto* a = n->add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(v);
  }
  static void attr_ints(onnx::NodeProto* n, const std::string& k, const std::vector<int64_t>& v) {
    auto* a = n->add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }

  std::string init_f32(const std::string& name, const std::vector<int64_t>& dims,
                       const std::vector<float>& v) {
    auto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
    return name;
  }
  std::string init_i8(const std::string& name, const std::vector<int64_t>& dims,
                      const std::vector<int8_t>& v) {
    auto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT8);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size()));
    return name;
  }
  std::string init_u8(const std::string& name, const std::vector<int64_t>& dims,
                      const std::vector<uint8_t>& v) {
    auto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::UINT8);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size()));
    return name;
  }
  std::string init_i64(const std::string& name, const std::vector<int64_t>& dims,
                       const std::vector<int64_t>& v) {
    auto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    for (int64_t d : dims) t->add_dims(d);
    for (int64_t x : v) t->add_int64_data(x);
    return name;
  }
  std::string scalar_f32(float v) {
    auto it = scalars_.find(v);
    if (it != scalars_.end()) return it->second;
    const std::string name = init_f32(fresh("const_f"), {}, {v});
    scalars_[v] = name;
    return name;
  }

  std::string value_name(int v) const { return v == image_ ? "images" : "v" + std::to_string(v); }

  // The conv's input on its grid: Q -> (Clip) -> DQ, shared by convs on the same grid.
  std::string quantized(int v, const rt::Grid& grid, const std::string& site) {
    if (grid.is_float() || o_.float_weights) return value_name(v);
    const auto key = std::make_tuple(v, grid.bits, grid.scale, grid.zero_point);
    auto it = qdq_.find(key);
    if (it != qdq_.end()) return it->second;
    const std::string base = site + ".in_q" + std::to_string(grid.bits);
    const std::string s = init_f32(fresh(base + "_scale"), {}, {grid.scale});
    const std::string z = init_u8(fresh(base + "_zp"), {}, {uint8_t(grid.zero_point)});
    std::string q = fresh(base + "_q");
    node("QuantizeLinear", {value_name(v), s, z}, {q}, fresh(base + "_QuantizeLinear"));
    if (grid.bits < 8) {
      const std::string lo = init_u8(fresh(base + "_min"), {}, {0});
      const std::string hi = init_u8(fresh(base + "_max"), {}, {uint8_t((1 << grid.bits) - 1)});
      const std::string c = fresh(base + "_clip");
      node("Clip", {q, lo, hi}, {c}, fresh(base + "_Clip"));
      q = c;
    }
    const std::string d = fresh(base + "_dq");
    node("DequantizeLinear", {q, s, z}, {d}, fresh(base + "_DequantizeLinear"));
    qdq_[key] = d;
    return d;
  }

  std::string weight(const IrConv& c) {
    const std::vector<int64_t> dims{c.out_c, c.in_c / c.groups, c.kernel, c.kernel};
    if (c.w_bits == 32) return init_f32(c.name + ".weight", dims, c.weight);
    if (o_.float_weights) return init_f32(c.name + ".weight", dims, c.effective_weight());
    const std::string q = init_i8(c.name + ".weight_q" + std::to_string(c.w_bits), dims, c.codes);
    const std::string s = init_f32(c.name + ".weight_scale", {c.out_c}, c.w_scale);
    const std::string z =
        init_i8(c.name + ".weight_zp", {c.out_c}, std::vector<int8_t>(size_t(c.out_c), 0));
    const std::string w = c.name + ".weight_dq";
    auto* n = node("DequantizeLinear", {q, s, z}, {w}, c.name + ".weight_DequantizeLinear");
    attr_i(n, "axis", 0);
    return w;
  }

  // act(x) with ONNX opset-13 operators (docs/numerics.md definitions).
  std::string activation(const IrConv& c, const std::string& x) {
    const std::string& b = c.name;
    const auto out = [&](const char* op) { return fresh(b + "." + op); };
    switch (c.act) {
      case rt::Activation::kIdentity:
        return x;
      case rt::Activation::kRelu: {
        const std::string y = out("relu");
        node("Relu", {x}, {y}, y);
        return y;
      }
      case rt::Activation::kRelu6: {
        const std::string y = out("relu6");
        node("Clip", {x, scalar_f32(0.0f), scalar_f32(6.0f)}, {y}, y);
        return y;
      }
      case rt::Activation::kLeakyRelu: {
        const std::string y = out("leakyrelu");
        attr_f(node("LeakyRelu", {x}, {y}, y), "alpha", c.alpha);
        return y;
      }
      case rt::Activation::kHardsigmoid:
      case rt::Activation::kHardswish: {
        // HardSwish is opset 14: x * HardSigmoid(x; 1/6, 0.5) at opset 13.
        const std::string h = out("hardsigmoid");
        auto* n = node("HardSigmoid", {x}, {h}, h);
        attr_f(n, "alpha", 1.0f / 6.0f);
        attr_f(n, "beta", 0.5f);
        if (c.act == rt::Activation::kHardsigmoid) return h;
        const std::string y = out("hardswish");
        node("Mul", {x, h}, {y}, y);
        return y;
      }
      case rt::Activation::kSilu:
      case rt::Activation::kSigmoid: {
        const std::string s = out("sigmoid");
        node("Sigmoid", {x}, {s}, s);
        if (c.act == rt::Activation::kSigmoid) return s;
        const std::string y = out("silu");
        node("Mul", {x, s}, {y}, y);
        return y;
      }
      case rt::Activation::kTanh: {
        const std::string y = out("tanh");
        node("Tanh", {x}, {y}, y);
        return y;
      }
      case rt::Activation::kGeluErf: {
        const std::string d = out("gelu_div"), e = out("gelu_erf"), a = out("gelu_add"),
                          m = out("gelu_mul"), y = out("gelu");
        node("Div", {x, scalar_f32(std::sqrt(2.0f))}, {d}, d);
        node("Erf", {d}, {e}, e);
        node("Add", {e, scalar_f32(1.0f)}, {a}, a);
        node("Mul", {x, a}, {m}, m);
        node("Mul", {m, scalar_f32(0.5f)}, {y}, y);
        return y;
      }
      case rt::Activation::kGeluTanh: {
        const std::string x3 = out("gelu_x3"), x2 = out("gelu_x2"), k = out("gelu_k"),
                          s = out("gelu_s"), u = out("gelu_u"), t = out("gelu_tanh"),
                          a = out("gelu_add"), m = out("gelu_mul"), y = out("gelu");
        node("Mul", {x, x}, {x2}, x2);
        node("Mul", {x2, x}, {x3}, x3);
        node("Mul", {x3, scalar_f32(0.044715f)}, {k}, k);
        node("Add", {x, k}, {s}, s);
        node("Mul", {s, scalar_f32(std::sqrt(2.0f / float(M_PI)))}, {u}, u);
        node("Tanh", {u}, {t}, t);
        node("Add", {t, scalar_f32(1.0f)}, {a}, a);
        node("Mul", {x, a}, {m}, m);
        node("Mul", {m, scalar_f32(0.5f)}, {y}, y);
        return y;
      }
      case rt::Activation::kMish: {
        const std::string sp = out("softplus"), t = out("tanh"), y = out("mish");
        node("Softplus", {x}, {sp}, sp);
        node("Tanh", {sp}, {t}, t);
        node("Mul", {x, t}, {y}, y);
        return y;
      }
    }
    throw Error("export: ONNX: site " + c.name + " has an activation without an ONNX form");
  }

  void build() {
    for (const IrNode& n : ir_.nodes) {
      const std::string out = value_name(n.output);
      switch (n.op) {
        case IrOp::kInput: {
          image_ = n.output;
          const IrShape& s = ir_.shapes[n.output];
          value_info(g_->add_input(), "images", {1, s.c, s.h, s.w});
          break;
        }
        case IrOp::kConv: {
          const IrConv& c = ir_.convs[size_t(n.conv)];
          const std::string x = quantized(n.inputs[0], c.in_grid, c.name);
          const std::string w = weight(c);
          const std::string b = init_f32(c.name + ".bias", {c.out_c}, c.bias);
          const std::string y =
              c.act == rt::Activation::kIdentity && n.residual < 0 ? out : fresh(c.name + ".conv");
          auto* conv = node("Conv", {x, w, b}, {y}, c.name);
          attr_ints(conv, "kernel_shape", {c.kernel, c.kernel});
          attr_ints(conv, "strides", {c.stride, c.stride});
          attr_ints(conv, "pads", {c.pad, c.pad, c.pad, c.pad});
          attr_ints(conv, "dilations", {c.dilation, c.dilation});
          attr_i(conv, "group", c.groups);
          std::string a = activation(c, y);
          if (n.residual >= 0) {
            node("Add", {a, value_name(n.residual)}, {out}, c.name + ".residual");
          } else if (a != out) {
            node("Identity", {a}, {out}, c.name + ".out");
          }
          break;
        }
        case IrOp::kConcat: {
          std::vector<std::string> in;
          for (int v : n.inputs) in.push_back(value_name(v));
          attr_i(node("Concat", in, {out}, fresh(n.name)), "axis", 1);
          break;
        }
        case IrOp::kChunk: {
          const auto key = std::make_pair(n.inputs[0], n.chunks);
          auto it = splits_.find(key);
          if (it == splits_.end()) {
            std::vector<int64_t> sizes(n.chunks.begin(), n.chunks.end());
            std::vector<std::string> outs;
            for (size_t k = 0; k < n.chunks.size(); ++k) outs.push_back(fresh(n.name));
            const std::string split =
                init_i64(fresh(n.name + "_sizes"), {int64_t(sizes.size())}, sizes);
            attr_i(node("Split", {value_name(n.inputs[0]), split}, outs, fresh(n.name + "_Split")),
                   "axis", 1);
            it = splits_.emplace(key, outs).first;
          }
          node("Identity", {it->second.at(size_t(n.chunk_index))}, {out}, fresh(n.name + "_part"));
          break;
        }
        case IrOp::kMaxPool: {
          auto* p = node("MaxPool", {value_name(n.inputs[0])}, {out}, n.name);
          attr_ints(p, "kernel_shape", {n.kernel, n.kernel});
          attr_ints(p, "strides", {n.stride, n.stride});
          attr_ints(p, "pads", {n.pad, n.pad, n.pad, n.pad});
          break;
        }
        case IrOp::kUpsample: {
          const std::string scales = init_f32(fresh(n.name + "_scales"), {4},
                                              {1.0f, 1.0f, float(n.factor), float(n.factor)});
          auto* r = node("Resize", {value_name(n.inputs[0]), "", scales}, {out}, n.name);
          attr_s(r, "mode", "nearest");
          attr_s(r, "coordinate_transformation_mode", "asymmetric");
          attr_s(r, "nearest_mode", "floor");
          break;
        }
      }
    }
    head_outputs();
  }

  // The raw head per level: YOLOv8 [1, 4 * reg_max + nc, h, w] (box logits then class logits),
  // YOLOv5 [1, na, h, w, 5 + nc]. Graph outputs themselves unless the decode follows.
  void head_outputs() {
    const IrHead& h = ir_.head;
    std::vector<std::string> levels;
    const size_t count = h.anchor_based ? h.levels.size() : h.boxes.size();
    for (size_t l = 0; l < count; ++l) {
      const std::string o =
          o_.decoded ? fresh("head" + std::to_string(l)) : "output" + std::to_string(l);
      if (h.anchor_based) {
        const IrShape& s = ir_.shapes[size_t(h.levels[l])];
        const int64_t per = 5 + h.num_classes;
        const std::string shape =
            init_i64(fresh("head_shape"), {5}, {1, h.num_anchors, per, s.h, s.w});
        const std::string r = fresh("head_reshape");
        node("Reshape", {value_name(h.levels[l]), shape}, {r}, r);
        attr_ints(node("Transpose", {r}, {o}, o + "_Transpose"), "perm", {0, 1, 3, 4, 2});
        if (!o_.decoded) value_info(g_->add_output(), o, {1, h.num_anchors, s.h, s.w, per});
      } else {
        const IrShape& b = ir_.shapes[size_t(h.boxes[l])];
        const IrShape& c = ir_.shapes[size_t(h.classes[l])];
        attr_i(
            node("Concat", {value_name(h.boxes[l]), value_name(h.classes[l])}, {o}, o + "_Concat"),
            "axis", 1);
        if (!o_.decoded) value_info(g_->add_output(), o, {1, b.c + c.c, b.h, b.w});
      }
      levels.push_back(o);
    }
    if (o_.decoded) h.anchor_based ? decode_v5(levels) : decode_v8(levels);
  }

  // x[start:end] along `axis` (Slice rather than an uneven Split: OpenCV 4.6 splits only evenly).
  std::string slice(const std::string& x, int64_t axis, int64_t start, int64_t end,
                    const std::string& base) {
    return op1(
        "Slice",
        {x, init_i64(fresh(base + "_start"), {1}, {start}),
         init_i64(fresh(base + "_end"), {1}, {end}), init_i64(fresh(base + "_axis"), {1}, {axis})},
        base);
  }

  onnx::NodeProto* last_node() { return g_->mutable_node(g_->node_size() - 1); }

  // One node with one fresh output; returns the output's name (last_node() takes attributes).
  std::string op1(const std::string& op, const std::vector<std::string>& in,
                  const std::string& base) {
    const std::string y = fresh(base);
    node(op, in, {y}, y);
    return y;
  }

  // YOLOv8 decode as ultralytics writes it: output0 [1, 4 + nc, N], N cells of all levels in
  // order; boxes cx, cy, w, h in input pixels (DFL expectation around the cell centre, times the
  // stride), then the class sigmoids. The DFL expectation is a 1x1 Conv over the softmaxed bins,
  // which runtimes without ReduceSum-with-axes-input (OpenCV 4.6) also run.
  void decode_v8(const std::vector<std::string>& levels) {
    const IrHead& h = ir_.head;
    const int64_t reg = h.reg_max, nc = h.num_classes;
    std::vector<std::string> boxes, classes;
    std::vector<float> anchors_x, anchors_y, strides;
    for (size_t l = 0; l < levels.size(); ++l) {
      const IrShape& s = ir_.shapes[size_t(h.boxes[l])];
      const int64_t cells = int64_t(s.h) * s.w;
      const std::string flat = init_i64(fresh("decode_flat"), {3}, {1, 4 * reg + nc, cells});
      const std::string f = op1("Reshape", {levels[l], flat}, "decode_level");
      const std::string b = slice(f, 1, 0, 4 * reg, "decode_box");
      const std::string c = slice(f, 1, 4 * reg, 4 * reg + nc, "decode_cls");
      boxes.push_back(b);
      classes.push_back(c);
      for (int y = 0; y < s.h; ++y)
        for (int x = 0; x < s.w; ++x) {
          anchors_x.push_back(float(x) + 0.5f);
          anchors_y.push_back(float(y) + 0.5f);
          strides.push_back(h.strides[l]);
        }
    }
    const int64_t n = int64_t(strides.size());
    std::string box = op1("Concat", boxes, "decode_boxes");
    attr_i(last_node(), "axis", 2);
    std::string cls = op1("Concat", classes, "decode_classes");
    attr_i(last_node(), "axis", 2);
    const std::string bins = op1(
        "Reshape", {box, init_i64(fresh("decode_bins_shape"), {4}, {1, 4, reg, n})}, "decode_bins");
    const std::string t = op1("Transpose", {bins}, "decode_bins_t");  // [1, reg, 4, N]
    attr_ints(last_node(), "perm", {0, 2, 1, 3});
    const std::string p = op1("Softmax", {t}, "decode_softmax");
    attr_i(last_node(), "axis", 1);
    std::vector<float> arange(static_cast<size_t>(reg));
    for (int64_t i = 0; i < reg; ++i) arange[size_t(i)] = float(i);
    const std::string expect = op1(
        "Conv", {p, init_f32(fresh("decode_dfl_weight"), {1, reg, 1, 1}, arange)}, "decode_dfl");
    attr_ints(last_node(), "kernel_shape", {1, 1});  // OpenCV 4.6 requires it
    const std::string dist =
        op1("Reshape", {expect, init_i64(fresh("decode_dist_shape"), {3}, {1, 4, n})},
            "decode_dist");  // left, top, right, bottom in cells
    const std::string lt = slice(dist, 1, 0, 2, "decode_lt");
    const std::string rb = slice(dist, 1, 2, 4, "decode_rb");
    std::vector<float> anchors = anchors_x;
    anchors.insert(anchors.end(), anchors_y.begin(), anchors_y.end());
    const std::string a = init_f32(fresh("decode_anchors"), {1, 2, n}, anchors);
    const std::string x1y1 = op1("Sub", {a, lt}, "decode_x1y1");
    const std::string x2y2 = op1("Add", {a, rb}, "decode_x2y2");
    const std::string sum = op1("Add", {x1y1, x2y2}, "decode_sum");
    const std::string centre = op1("Mul", {sum, scalar_f32(0.5f)}, "decode_cxcy");
    const std::string wh = op1("Sub", {x2y2, x1y1}, "decode_wh");
    const std::string cells = op1("Concat", {centre, wh}, "decode_xywh_cells");
    attr_i(last_node(), "axis", 1);
    // The strides repeated for the 4 rows: OpenCV 4.6 does not broadcast a [1, 1, N] constant.
    std::vector<float> stride_rows;
    for (int k = 0; k < 4; ++k)
      stride_rows.insert(stride_rows.end(), strides.begin(), strides.end());
    const std::string xywh = op1(
        "Mul", {cells, init_f32(fresh("decode_strides"), {1, 4, n}, stride_rows)}, "decode_xywh");
    const std::string scores = op1("Sigmoid", {cls}, "decode_scores");
    attr_i(node("Concat", {xywh, scores}, {"output0"}, "decode_output"), "axis", 1);
    value_info(g_->add_output(), "output0", {1, 4 + nc, n});
  }

  // YOLOv5 decode as its own export writes it: output0 [1, N, 5 + nc], per level anchor-major
  // then row-major cells; cx, cy = (2 sigmoid - 0.5 + cell) * stride, w, h = (2 sigmoid)^2 *
  // anchor, then objectness and class sigmoids (a detection's score is their product).
  void decode_v5(const std::vector<std::string>& levels) {
    const IrHead& h = ir_.head;
    const int64_t na = h.num_anchors, no = 5 + h.num_classes;
    std::vector<std::string> rows;
    int64_t n = 0;
    for (size_t l = 0; l < levels.size(); ++l) {
      const IrShape& s = ir_.shapes[size_t(h.levels[l])];
      const std::string sig = op1("Sigmoid", {levels[l]}, "decode_sigmoid");
      const std::string xy = slice(sig, 4, 0, 2, "decode_xy");
      const std::string wh = slice(sig, 4, 2, 4, "decode_wh");
      const std::string rest = slice(sig, 4, 4, no, "decode_conf");
      std::vector<float> grid, anchor;
      for (int y = 0; y < s.h; ++y)
        for (int x = 0; x < s.w; ++x) {
          grid.push_back(float(x) - 0.5f);
          grid.push_back(float(y) - 0.5f);
        }
      for (int64_t k = 0; k < 2 * na; ++k)
        anchor.push_back(h.anchors[size_t(int64_t(l) * 2 * na + k)]);
      const std::string xy2 = op1("Mul", {xy, scalar_f32(2.0f)}, "decode_xy2");
      const std::string cell = op1(
          "Add", {xy2, init_f32(fresh("decode_grid"), {1, 1, s.h, s.w, 2}, grid)}, "decode_cell");
      const std::string centre = op1("Mul", {cell, scalar_f32(h.strides[l])}, "decode_cxcy");
      const std::string wh2 = op1("Mul", {wh, scalar_f32(2.0f)}, "decode_wh2");
      const std::string sq = op1("Mul", {wh2, wh2}, "decode_wh_sq");
      const std::string size = op1(
          "Mul", {sq, init_f32(fresh("decode_anchor"), {1, na, 1, 1, 2}, anchor)}, "decode_size");
      const std::string all = op1("Concat", {centre, size, rest}, "decode_level");
      attr_i(last_node(), "axis", 4);
      const int64_t count = na * s.h * s.w;
      rows.push_back(op1("Reshape", {all, init_i64(fresh("decode_rows"), {3}, {1, count, no})},
                         "decode_rows"));
      n += count;
    }
    attr_i(node("Concat", rows, {"output0"}, "decode_output"), "axis", 1);
    value_info(g_->add_output(), "output0", {1, n, no});
  }

  const IrModel& ir_;
  const OnnxOptions& o_;
  onnx::GraphProto* g_ = nullptr;
  int counter_ = 0;
  int image_ = 0;
  std::map<float, std::string> scalars_;
  std::map<std::tuple<int, int, float, int>, std::string> qdq_;
  std::map<std::pair<int, std::vector<int> >, std::vector<std::string> > splits_;
};

}  // namespace

std::string onnx_bytes(const IrModel& ir, const OnnxOptions& options) {
  return OnnxWriter(ir, options).run();
}

#endif

void write_onnx(const IrModel& ir, const std::string& path, const OnnxOptions& options) {
  write_file_atomic(path, onnx_bytes(ir, options));
}

}  // namespace mixnas::exporter
