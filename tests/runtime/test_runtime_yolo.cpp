// End to end: a YOLOv8n-shaped graph (width 0.25, random weights) through the runtime, against a
// naive scalar implementation of every op written here. Integer codes must match exactly; floats
// within tolerance; detections after NMS must match.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "deploy/runtime/kernels/activation.h"
#include "deploy/runtime/package.h"
#include "deploy/runtime/packing.h"
#include "deploy/runtime/session.h"
#include "tests/runtime/frame_graphs.h"

using namespace mixnas::rt;

namespace {

// Every activation tensor as floats (f) or codes (q), computed by plain loops.
struct Reference {
  std::vector<std::vector<float>> f;
  std::vector<std::vector<uint8_t>> q;
};

uint8_t ref_quantize(float y, const TensorDesc& t) {
  float q = std::nearbyint(y / t.scale[0]) + static_cast<float>(t.zero_point[0]);
  q = std::min(std::max(q, 0.0f), static_cast<float>((1 << t.bits) - 1));
  return static_cast<uint8_t>(q);
}

void ref_conv(const Graph& g, const Node& n, Reference& r) {
  const TensorDesc& x = g.tensors[n.inputs[0]];
  const TensorDesc& w = g.tensors[n.inputs[1]];
  const ConvAttrs& a = n.conv;
  const int H = x.shape[0], W = x.shape[1], C = x.shape[2];
  const int O = w.shape[0], cpg = w.shape[1], KH = w.shape[2], KW = w.shape[3];
  const TensorDesc& o0 = g.tensors[n.outputs[0]];
  const int OH = o0.shape[0], OW = o0.shape[1];
  const bool integer = !w.is_float();
  std::vector<int8_t> wq;
  std::vector<float> wf, bias(O, 0.0f);
  if (integer)
    wq = unpack_code_buffer(g.buffers[w.buffer]);
  else
    wf = unpack_f32_buffer(g.buffers[w.buffer]);
  if (a.has_bias) bias = unpack_f32_buffer(g.buffers[g.tensors[n.inputs[2]].buffer]);
  const float* residual = a.has_residual ? r.f[n.inputs[a.has_bias ? 3 : 2]].data() : nullptr;
  const int opg = O / a.groups;
  const ActivationSpec act{static_cast<Activation>(a.activation), a.alpha};
  for (int t : n.outputs) {
    if (g.tensors[t].is_float())  // floats of some channels: a residual's part (graph.h)
      r.f[t].assign(static_cast<size_t>(OH) * OW * g.tensors[t].shape[2], 0.0f);
    else
      r.q[t].assign(static_cast<size_t>(OH) * OW * O, 0);
  }
  for (int oy = 0; oy < OH; ++oy)
    for (int ox = 0; ox < OW; ++ox)
      for (int oc = 0; oc < O; ++oc) {
        const int g0 = (oc / opg) * cpg;
        int32_t acc = 0;
        double accf = 0.0;
        for (int ky = 0; ky < KH; ++ky) {
          const int iy = oy * a.stride_h - a.pad_top + ky * a.dilation_h;
          if (iy < 0 || iy >= H) continue;
          for (int kx = 0; kx < KW; ++kx) {
            const int ix = ox * a.stride_w - a.pad_left + kx * a.dilation_w;
            if (ix < 0 || ix >= W) continue;
            for (int ic = 0; ic < cpg; ++ic) {
              const size_t wi = ((static_cast<size_t>(oc) * cpg + ic) * KH + ky) * KW + kx;
              const size_t xi = (static_cast<size_t>(iy) * W + ix) * C + g0 + ic;
              if (integer)
                acc += wq[wi] * (static_cast<int32_t>(r.q[n.inputs[0]][xi]) - x.zero_point[0]);
              else
                accf += static_cast<double>(wf[wi]) * r.f[n.inputs[0]][xi];
            }
          }
        }
        float y;
        if (integer) {
          const float sw = w.scale.size() == 1 ? w.scale[0] : w.scale[oc];
          const float m = sw * x.scale[0];
          y = m * static_cast<float>(acc);
          y = y + bias[oc];
          apply_activation_baseline(act, &y,
                                    1);  // the runtime's activation, same bits on every ISA
        } else {
          y = static_cast<float>(accf) + bias[oc];
          y = activation_reference(act, y);
        }
        const size_t oi = (static_cast<size_t>(oy) * OW + ox) * O + oc;
        if (residual) y = y + residual[oi];
        for (int t : n.outputs) {
          const int fc = g.tensors[t].shape[2], f = oc - (fc == O ? 0 : a.f32_channel_begin);
          if (g.tensors[t].is_float()) {
            if (f >= 0 && f < fc) r.f[t][(static_cast<size_t>(oy) * OW + ox) * fc + f] = y;
          } else
            r.q[t][oi] = ref_quantize(y, g.tensors[t]);
        }
      }
}

// Layout ops on either representation, through a byte view of one element.
template <typename T>
std::vector<T>& store(Reference& r, int t);
template <>
std::vector<float>& store<float>(Reference& r, int t) {
  return r.f[t];
}
template <>
std::vector<uint8_t>& store<uint8_t>(Reference& r, int t) {
  return r.q[t];
}

template <typename T>
void ref_layout(const Graph& g, const Node& n, Reference& r) {
  const TensorDesc& x = g.tensors[n.inputs[0]];
  switch (n.op) {
    case OpType::kConcat: {
      const TensorDesc& o = g.tensors[n.outputs[0]];
      std::vector<T>& out = store<T>(r, n.outputs[0]);
      out.assign(o.elements(), T{});
      const int pixels = o.shape[0] * o.shape[1];
      int off = 0;
      for (int t : n.inputs) {
        const int c = g.tensors[t].shape[2];
        for (int p = 0; p < pixels; ++p)
          for (int k = 0; k < c; ++k) out[p * o.shape[2] + off + k] = store<T>(r, t)[p * c + k];
        off += c;
      }
      break;
    }
    case OpType::kSplit: {
      const int pixels = x.shape[0] * x.shape[1];
      int off = 0;
      for (int t : n.outputs) {
        const int c = g.tensors[t].shape[2];
        std::vector<T>& out = store<T>(r, t);
        out.assign(static_cast<size_t>(pixels) * c, T{});
        for (int p = 0; p < pixels; ++p)
          for (int k = 0; k < c; ++k)
            out[p * c + k] = store<T>(r, n.inputs[0])[p * x.shape[2] + off + k];
        off += c;
      }
      break;
    }
    case OpType::kMaxPool: {
      const TensorDesc& o = g.tensors[n.outputs[0]];
      std::vector<T>& out = store<T>(r, n.outputs[0]);
      out.assign(o.elements(), T{});
      const PoolAttrs& p = n.pool;
      for (int oy = 0; oy < o.shape[0]; ++oy)
        for (int ox = 0; ox < o.shape[1]; ++ox)
          for (int c = 0; c < o.shape[2]; ++c) {
            bool any = false;
            T best{};
            for (int ky = 0; ky < p.kernel; ++ky)
              for (int kx = 0; kx < p.kernel; ++kx) {
                const int iy = oy * p.stride - p.pad + ky, ix = ox * p.stride - p.pad + kx;
                if (iy < 0 || ix < 0 || iy >= x.shape[0] || ix >= x.shape[1]) continue;
                const T v = store<T>(r, n.inputs[0])[(iy * x.shape[1] + ix) * x.shape[2] + c];
                if (!any || v > best) best = v;
                any = true;
              }
            out[(oy * o.shape[1] + ox) * o.shape[2] + c] = best;
          }
      break;
    }
    case OpType::kUpsample: {
      const TensorDesc& o = g.tensors[n.outputs[0]];
      std::vector<T>& out = store<T>(r, n.outputs[0]);
      out.assign(o.elements(), T{});
      const int f = n.upsample_factor;
      for (int oy = 0; oy < o.shape[0]; ++oy)
        for (int ox = 0; ox < o.shape[1]; ++ox)
          for (int c = 0; c < o.shape[2]; ++c)
            out[(oy * o.shape[1] + ox) * o.shape[2] + c] =
                store<T>(r, n.inputs[0])[((oy / f) * x.shape[1] + ox / f) * x.shape[2] + c];
      break;
    }
    default:
      FAIL("not a layout op");
  }
}

float ref_sigmoid(float v) {
  return 1.0f / (1.0f + std::exp(-v));
}

void ref_detect_v8(const Graph& g, const Node& n, Reference& r) {
  const TensorDesc& o = g.tensors[n.outputs[0]];
  std::vector<float>& out = r.f[n.outputs[0]];
  out.assign(o.elements(), 0.0f);
  const int nc = n.v8.num_classes, R = n.v8.reg_max;
  int row = 0;
  for (size_t l = 0; l < n.v8.strides.size(); ++l) {
    const TensorDesc& bt = g.tensors[n.inputs[2 * l]];
    const std::vector<float>& box = r.f[n.inputs[2 * l]];
    const std::vector<float>& cls = r.f[n.inputs[2 * l + 1]];
    for (int y = 0; y < bt.shape[0]; ++y)
      for (int x = 0; x < bt.shape[1]; ++x, ++row) {
        const int cell = y * bt.shape[1] + x;
        double d[4];
        for (int s = 0; s < 4; ++s) {
          double mx = -1e30, sum = 0, e = 0;
          for (int i = 0; i < R; ++i)
            mx = std::max(mx, static_cast<double>(box[cell * 4 * R + s * R + i]));
          for (int i = 0; i < R; ++i) {
            const double p = std::exp(box[cell * 4 * R + s * R + i] - mx);
            sum += p;
            e += p * i;
          }
          d[s] = e / sum;
        }
        const float st = n.v8.strides[l];
        float* o_row = &out[static_cast<size_t>(row) * (4 + nc)];
        o_row[0] = static_cast<float>((x + 0.5 - d[0]) * st);
        o_row[1] = static_cast<float>((y + 0.5 - d[1]) * st);
        o_row[2] = static_cast<float>((x + 0.5 + d[2]) * st);
        o_row[3] = static_cast<float>((y + 0.5 + d[3]) * st);
        for (int c = 0; c < nc; ++c) o_row[4 + c] = ref_sigmoid(cls[cell * nc + c]);
      }
  }
}

std::vector<Detection> ref_nms(const std::vector<float>& rows, int cols, const NmsAttrs& a) {
  struct Cand {
    Detection d;
    size_t index;
  };
  std::vector<Cand> c;
  for (size_t i = 0; i * cols < rows.size(); ++i) {
    const float* row = &rows[i * cols];
    int best = 0;
    for (int k = 1; k < cols - 4; ++k)
      if (row[4 + k] > row[4 + best]) best = k;
    if (row[4 + best] > a.score_threshold)
      c.push_back({{row[0], row[1], row[2], row[3], row[4 + best], best}, i});
  }
  std::sort(c.begin(), c.end(), [](const Cand& x, const Cand& y) {
    return x.d.score != y.d.score ? x.d.score > y.d.score : x.index < y.index;
  });
  std::vector<Detection> keep;
  for (const Cand& k : c) {
    bool ok = true;
    for (const Detection& d : keep) {
      if (a.class_aware && d.class_id != k.d.class_id) continue;
      const float iw = std::min(d.x2, k.d.x2) - std::max(d.x1, k.d.x1);
      const float ih = std::min(d.y2, k.d.y2) - std::max(d.y1, k.d.y1);
      if (iw <= 0 || ih <= 0) continue;
      const float inter = iw * ih;
      const float u = (d.x2 - d.x1) * (d.y2 - d.y1) + (k.d.x2 - k.d.x1) * (k.d.y2 - k.d.y1) - inter;
      if (inter / u > a.iou_threshold) ok = false;
    }
    if (ok && static_cast<int>(keep.size()) < a.max_detections) keep.push_back(k.d);
  }
  return keep;
}

Reference run_reference(const Graph& g, const uint8_t* input_bytes) {
  Reference r;
  r.f.resize(g.tensors.size());
  r.q.resize(g.tensors.size());
  const TensorDesc& in = g.tensors[g.input.tensor];
  if (in.is_float())
    r.f[g.input.tensor].assign(reinterpret_cast<const float*>(input_bytes),
                               reinterpret_cast<const float*>(input_bytes) + in.elements());
  else
    r.q[g.input.tensor].assign(input_bytes, input_bytes + in.elements());
  for (const Node& n : g.nodes) {
    switch (n.op) {
      case OpType::kConv2d:
        ref_conv(g, n, r);
        break;
      case OpType::kConcat:
      case OpType::kSplit:
      case OpType::kMaxPool:
      case OpType::kUpsample:
        if (g.tensors[n.inputs[0]].is_float())
          ref_layout<float>(g, n, r);
        else
          ref_layout<uint8_t>(g, n, r);
        break;
      case OpType::kDetectV8:
        ref_detect_v8(g, n, r);
        break;
      case OpType::kNms: {
        const TensorDesc& x = g.tensors[n.inputs[0]];
        const std::vector<Detection> d = ref_nms(r.f[n.inputs[0]], x.shape[1], n.nms);
        std::vector<float>& out = r.f[n.outputs[0]];
        out.assign(static_cast<size_t>(n.nms.max_detections) * 6, 0.0f);
        for (int i = 0; i < n.nms.max_detections; ++i) {
          float* row = &out[i * 6];
          if (i < static_cast<int>(d.size()))
            row[0] = d[i].x1, row[1] = d[i].y1, row[2] = d[i].x2, row[3] = d[i].y2,
            row[4] = d[i].score, row[5] = static_cast<float>(d[i].class_id);
          else
            row[5] = -1;
        }
        break;
      }
      default:
        FAIL("op not used by the YOLO graph: " << op_type_name(n.op));
    }
  }
  return r;
}

struct Compare {
  int64_t code_mismatches = 0;
  int64_t codes = 0;
  double worst_float = 0;  // max |a - b| / (1 + |b|) over float tensors before the decode
};

Compare compare_tensors(const Graph& g, const Session& s, const Reference& r) {
  Compare c;
  for (size_t t = 0; t < g.tensors.size(); ++t) {
    const TensorDesc& d = g.tensors[t];
    if (d.kind != TensorKind::kActivation) continue;
    bool decoded = false;  // tensors after the Detect decode are compared as detections
    for (const Node& n : g.nodes)
      if ((n.op == OpType::kDetectV8 || n.op == OpType::kNms) &&
          n.outputs[0] == static_cast<int>(t))
        decoded = true;
    if (decoded) continue;
    const std::vector<uint8_t> bytes = s.tensor_bytes(static_cast<int>(t));
    const uint8_t* data = bytes.data();
    if (d.is_float()) {
      const float* v = reinterpret_cast<const float*>(data);
      for (int64_t i = 0; i < d.elements(); ++i)
        c.worst_float = std::max(c.worst_float, std::fabs(static_cast<double>(v[i]) - r.f[t][i]) /
                                                    (1.0 + std::fabs(r.f[t][i])));
    } else {
      for (int64_t i = 0; i < d.elements(); ++i) c.code_mismatches += data[i] != r.q[t][i];
      c.codes += d.elements();
    }
  }
  return c;
}

void require_same_detections(const std::vector<Detection>& a, const std::vector<Detection>& b,
                             float box_tol, float score_tol) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("detection " << i);
    CHECK(a[i].class_id == b[i].class_id);
    CHECK(std::fabs(a[i].score - b[i].score) <= score_tol);
    CHECK(std::fabs(a[i].x1 - b[i].x1) <= box_tol);
    CHECK(std::fabs(a[i].y1 - b[i].y1) <= box_tol);
    CHECK(std::fabs(a[i].x2 - b[i].x2) <= box_tol);
    CHECK(std::fabs(a[i].y2 - b[i].y2) <= box_tol);
  }
}

// The outputs of a planned session equal those of the keep-all one bit for bit: with the head
// decoded in its convs the six raw head outputs are left out (HeadMemory::kTable), and the decoded
// table too when it is held compactly (kDetections, the default); the rest are the same bits.
void require_same_outputs(const std::vector<RawOutput>& got, const std::vector<RawOutput>& all,
                          HeadMemory head) {
  const size_t left_out = head == HeadMemory::kRaw ? 0 : head == HeadMemory::kTable ? 6 : 7;
  REQUIRE(got.size() == all.size() - left_out);
  size_t k = left_out;
  for (size_t i = 0; i < got.size(); ++i, ++k) {
    INFO("output " << all[k].name);
    REQUIRE(got[i].name == all[k].name);
    CHECK(std::memcmp(got[i].values.data(), all[k].values.data(), all[k].values.size() * 4) == 0);
  }
}

std::vector<Detection> rows_to_detections(const std::vector<float>& rows) {
  std::vector<Detection> d;
  for (size_t i = 0; i + 6 <= rows.size() && rows[i + 5] >= 0; i += 6)
    d.push_back({rows[i], rows[i + 1], rows[i + 2], rows[i + 3], rows[i + 4],
                 static_cast<int>(rows[i + 5])});
  return d;
}

void run_end_to_end(bool int8) {
  testing::YoloOptions o;
  o.int8 = int8;
  o.imgsz = 128;  // keeps the naive reference fast enough under qemu
  const Graph graph = testing::make_yolov8n_graph(o);
  const std::string bytes = serialize_package(graph);
  const auto model = Model::from_bytes(bytes.data(), bytes.size(), "yolov8n-test.mxr");
  const std::vector<uint8_t> image = testing::make_test_image(240, 180, 3);
  const ImageView view{image.data(), 240, 180, 0};

  SessionOptions keep_all;
  keep_all.arena = ArenaStrategy::kNoReuse;
  keep_all.threads = 2;
  Session s(model, keep_all);
  const LetterboxInfo info = s.set_input_image(view);
  s.run_graph();
  const Reference ref = run_reference(model->graph(), s.tensor_bytes(graph.input.tensor).data());
  const Compare c = compare_tensors(model->graph(), s, ref);
  INFO("code mismatches " << c.code_mismatches << " of " << c.codes << ", worst float "
                          << c.worst_float);
  if (int8) {
    CHECK(c.codes > 300000);
    CHECK(c.code_mismatches == 0);
    CHECK(c.worst_float == 0.0);  // int convs with float sinks: same float ops, same bits
  } else {
    CHECK(c.codes == 0);
    CHECK(c.worst_float < 1e-3);
  }
  // The decoded table and the detections.
  const std::vector<RawOutput> outs = s.outputs();
  const RawOutput& decoded = outs[outs.size() - 2];
  const std::vector<float>& ref_decoded = ref.f[model->graph().output.tensors[outs.size() - 2]];
  double worst = 0;
  for (size_t i = 0; i < decoded.values.size(); ++i)
    worst = std::max(worst, std::fabs(static_cast<double>(decoded.values[i]) - ref_decoded[i]) /
                                (1.0 + std::fabs(ref_decoded[i])));
  CHECK(worst < (int8 ? 1e-4 : 1e-3));  // float softmax/exp vs the double reference
  const std::vector<Detection> dets = s.detections();
  const std::vector<Detection> ref_dets =
      rows_to_detections(ref.f[model->graph().output.tensors.back()]);
  CHECK(ref_dets.size() >= 5);
  require_same_detections(dets, ref_dets, int8 ? 1e-3f : 0.05f, int8 ? 1e-5f : 1e-3f);

  // The planned arena (with the poisoning check), 1 and 2 threads, the head decoded in its convs
  // or not: the same bits as above.
  for (int threads : {1, 2})
    for (HeadMemory head : {HeadMemory::kDetections, HeadMemory::kTable, HeadMemory::kRaw}) {
      INFO("threads " << threads << " head memory " << static_cast<int>(head));
      SessionOptions planned;
      planned.threads = threads;
      planned.check_memory = true;
      planned.head = head;
      Session p(model, planned);
      const std::vector<Detection> mapped = p.run(view);
      require_same_outputs(p.outputs(), outs, head);
      REQUIRE(mapped.size() == dets.size());
      for (size_t i = 0; i < dets.size(); ++i) {
        const Detection m = map_to_original(dets[i], info);
        CHECK(mapped[i].x1 == m.x1);
        CHECK(mapped[i].y2 == m.y2);
        CHECK(mapped[i].x2 <= 240.0f);
        CHECK(mapped[i].y2 <= 180.0f);
      }
      CHECK(p.memory().arena_bytes < s.memory().arena_bytes / 4);
    }
}

}  // namespace

TEST_CASE("YOLOv8n-shaped int8 graph matches the naive reference exactly", "[runtime][e2e]") {
  run_end_to_end(true);
}

TEST_CASE("YOLOv8n-shaped fp32 graph matches the naive reference", "[runtime][e2e]") {
  run_end_to_end(false);
}

// Low-bit graphs: codes held packed in the arena (codes.h) or one byte each are a storage choice,
// not a numeric one: both match the naive reference code for code, and the packed arena is smaller.
TEST_CASE("YOLOv8n-shaped W4A4, W2A2, W1A2 graphs: packed and byte arenas match the reference",
          "[runtime][e2e][packed]") {
  for (const auto& [w_bits, a_bits] : {std::pair{4, 4}, std::pair{2, 2}, std::pair{1, 2}}) {
    INFO("W" << w_bits << "A" << a_bits);
    testing::YoloOptions o;
    o.imgsz = 96;
    o.w_bits = w_bits;
    o.a_bits = a_bits;
    const Graph graph = testing::make_yolov8n_graph(o);
    const std::string bytes = serialize_package(graph);
    const auto model = Model::from_bytes(bytes.data(), bytes.size(), "yolov8n-lowbit.mxr");
    int packed_tensors = 0;
    for (int sb : model->memory_plan().storage_bits) packed_tensors += sb > 0 && sb < 8;
    CHECK(packed_tensors > 50);
    const std::vector<uint8_t> image = testing::make_test_image(160, 120, 7);
    const ImageView view{image.data(), 160, 120, 0};

    SessionOptions keep_all;  // packed, every intermediate readable
    keep_all.arena = ArenaStrategy::kNoReuse;
    Session s(model, keep_all);
    s.set_input_image(view);
    s.run_graph();
    const Reference ref = run_reference(model->graph(), s.tensor_bytes(graph.input.tensor).data());
    const Compare c = compare_tensors(model->graph(), s, ref);
    CHECK(c.codes > 100000);
    CHECK(c.code_mismatches == 0);
    CHECK(c.worst_float == 0.0);

    const std::vector<RawOutput> outs = s.outputs();
    for (bool pack : {true, false})
      for (int threads : {1, 2})
        for (HeadMemory head : {HeadMemory::kDetections, HeadMemory::kTable, HeadMemory::kRaw}) {
          INFO("pack " << pack << " threads " << threads << " head " << static_cast<int>(head));
          SessionOptions planned;
          planned.threads = threads;
          planned.check_memory = true;
          planned.pack_activations = pack;
          planned.head = head;
          Session p(model, planned);
          p.run(view);
          require_same_outputs(p.outputs(), outs, head);
        }
    // The code tensors (one buffer each) shrink when packed; the head's raw logits, decoded in
    // their convs, take no arena at all, and the compact table less than the whole one.
    SessionOptions byte_codes, raw_head, table;
    byte_codes.pack_activations = false;
    raw_head.head = HeadMemory::kRaw;
    table.head = HeadMemory::kTable;
    const MemoryReport packed = Session(model).memory(),
                       unpacked = Session(model, byte_codes).memory(),
                       whole = Session(model, table).memory(),
                       raw = Session(model, raw_head).memory();
    INFO("arena packed " << packed.arena_bytes << " bytes " << unpacked.arena_bytes << " table "
                         << whole.arena_bytes << " raw head " << raw.arena_bytes);
    CHECK(packed.sum_tensor_bytes < unpacked.sum_tensor_bytes);
    CHECK(packed.arena_bytes <= unpacked.arena_bytes);
    CHECK(packed.arena_bytes < whole.arena_bytes);
    CHECK(whole.arena_bytes < raw.arena_bytes);
    Session decoded(model);
    decoded.run(view);
    const std::vector<int>& outs_t = model->graph().output.tensors;
    const int box = outs_t[0], table_t = outs_t[outs_t.size() - 2];  // level 0's box logits
    REQUIRE(model->memory_plan().decoded_by_conv[box]);
    REQUIRE(model->memory_plan().compact_table[table_t]);
    CHECK_THROWS_WITH(decoded.tensor_bytes(box), Catch::Contains("HeadMemory::kRaw"));
    CHECK_THROWS_WITH(decoded.tensor_bytes(table_t), Catch::Contains("compactly"));
  }
}

TEST_CASE("The every-op graph runs and agrees with the reference kernels", "[runtime][e2e]") {
  const auto model = Model::from_graph(testing::make_all_ops_graph());
  SessionOptions fast, ref, planned;
  fast.arena = ref.arena = ArenaStrategy::kNoReuse;
  ref.reference_kernels = true;
  planned.check_memory = true;
  Session a(model, fast), b(model, ref), c(model, planned);
  const std::vector<uint8_t> image = testing::make_test_image(16, 16, 5);
  for (Session* s : {&a, &b, &c}) {
    s->set_input_codes(image.data(), image.size());
    s->run_graph();
  }
  // The planned session holds the head compactly: its outputs are those of the keep-all one
  // without the head's raw logits and decoded table (the detections among them), same values.
  const std::vector<RawOutput> ca = a.outputs(), cc = c.outputs();
  REQUIRE(!cc.empty());
  REQUIRE(cc.size() < ca.size());
  for (const RawOutput& x : cc) {
    INFO("output " << x.name);
    const auto same =
        std::find_if(ca.begin(), ca.end(), [&](const RawOutput& y) { return y.name == x.name; });
    REQUIRE(same != ca.end());
    CHECK(same->values == x.values);
  }
  const Graph& g = model->graph();
  for (size_t t = 0; t < g.tensors.size(); ++t) {
    if (g.tensors[t].kind != TensorKind::kActivation) continue;
    INFO("tensor " << g.tensors[t].name);
    const std::vector<uint8_t> xa = a.tensor_bytes(static_cast<int>(t)),
                               xb = b.tensor_bytes(static_cast<int>(t));
    if (g.tensors[t].is_float()) {
      const float* x = reinterpret_cast<const float*>(xa.data());
      const float* y = reinterpret_cast<const float*>(xb.data());
      for (size_t i = 0; i < xa.size() / 4; ++i)
        CHECK(std::fabs(x[i] - y[i]) <= 1e-4f * (1 + std::fabs(y[i])));
    } else {
      CHECK(xa == xb);
    }
  }
  CHECK_THROWS_AS(a.set_input(nullptr, 3), mixnas::Error);
  CHECK_THROWS_AS(a.set_input_codes(image.data(), 5), mixnas::Error);
}

TEST_CASE("Profiler: per-node times, totals, and the same results on every run", "[runtime][e2e]") {
  const auto model = Model::from_graph(testing::make_all_ops_graph());
  Session s(model);
  const std::vector<uint8_t> image = testing::make_test_image(16, 16, 9);
  s.set_input_codes(image.data(), image.size());
  s.run_graph();
  const std::vector<RawOutput> once = s.outputs();
  s.set_input_codes(image.data(), image.size());
  const Profile p = s.profile(4, 2);
  CHECK(p.total.runs == 4);
  CHECK(p.warmup == 2);
  REQUIRE(p.nodes.size() == model->graph().nodes.size());
  CHECK(p.nodes[0].op == "Conv2d");
  CHECK_FALSE(p.nodes[0].kernel.empty());
  CHECK(p.nodes[1].kernel.empty());
  CHECK(p.total.min_ms <= p.total.median_ms);
  CHECK(p.total.median_ms <= p.total.p90_ms);
  CHECK(p.memory.arena_bytes == s.memory().arena_bytes);
  CHECK(p.memory.peak_bytes >= p.memory.arena_bytes + p.memory.resident_weight_bytes);
  CHECK(p.memory.weight_bytes == model->weight_bytes());
  const std::string table = format_profile(p);
  CHECK(table.find("c3_residual") != std::string::npos);
  CHECK(table.find("median") != std::string::npos);
  // Every profiled run started from the same input: the outputs equal those of the single run.
  const std::vector<RawOutput> after = s.outputs();
  for (size_t i = 0; i < once.size(); ++i) CHECK(after[i].values == once[i].values);
  CHECK_THROWS_AS(s.profile(0, 0), mixnas::Error);
}

TEST_CASE("Corrupted packages that still load also run safely", "[runtime][e2e][corrupt]") {
  // Flipped bytes that keep a package valid (weights, scales, attributes within range...) must
  // give a graph the executor runs, or a mixnas::Error; never a crash (the asan preset checks).
  const std::string bytes = serialize_package(testing::make_all_ops_graph());
  const std::vector<uint8_t> image = testing::make_test_image(20, 12, 1);
  int ran = 0;
  for (size_t pos = 0; pos < bytes.size(); pos += 5) {
    std::string bad = bytes;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x5A);
    try {
      const auto model = Model::from_bytes(bad.data(), bad.size());
      SessionOptions o;
      o.check_memory = true;
      Session s(model, o);
      s.run({image.data(), 20, 12, 0});
      ++ran;
    } catch (const mixnas::Error&) {
    }
  }
  CHECK(ran > 10);
}
