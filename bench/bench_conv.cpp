// mixnas-bench-conv: every conv of YOLOv8n (width 0.25, depth 0.33) at 320x320, one thread,
// mixnas fp32 / int8 / low-bit kernels against LibTorch's fp32 conv (oneDNN) and quantized convs
// (oneDNN, fbgemm/x86 and QNNPACK engines, whichever this LibTorch has), measured in the same run.
// Prints one table row per layer (median thread CPU time of repeats, microseconds):
//   mix_f32, onednn_f32           floats in and out
//   mix_int8, <engine>_i8, qnnpack_i8   uint8 codes in, requantized uint8 codes out
//   w1a1, w2a2, w4a4              what make_conv_plan runs for that layer at those bit-widths (a
//                                 low-bit row where the kernel table's rule picks one, else the
//                                 int8 kernel on the same codes), codes in and out
//   bs11, bs22, bs44              the bit-serial row of this CPU's best ISA, forced (its input
//                                 planes packed from codes inside run())
//   bs22p                         the forced W2A2 row reading bit planes, as a producer conv's
//                                 kBitPlanes sink writes them (no packing pass)
//   pick                          b(it-serial) or i(nt8) for w1a1/w2a2/w4a4
// then a TOTAL row, a FORCED-BITSERIAL line (the forced rows' ratios), a PACKED line (totals over
// the layers of W4A4 / W2A2 as a low-bit model holds them, codes.h: input and output codes packed,
// against W8A8 byte codes: resident weight bytes, the one-conv graphs' arena bytes, time of the
// kernel make_conv_plan picks) and LAST the line
//   GEOMEAN fp32/onednn_fp32=<r> int8/onednn_int8=<r> int8/qnnpack_int8=<r>
//           w2a2/onednn_int8=<r> w2a2/onednn_fp32=<r> w1a1/onednn_int8=<r> w4a4/mixnas_int8=<r>
// (one line) with throughput ratios, geometric means over the layers (> 1: mixnas faster).
//
// Options: --repeats N (default 9), --min-ms M (minimum time per repeat, default 2),
//          --filter SUBSTRING (only layers whose name contains it),
//          --packed: instead, the PACKED line alone (no peers measured; rows as above),
//          --lowbit-pairs: instead, the table the low-bit selection rule is derived from
//          (docs/kernels.md): per layer the int8 time and, for every (w_bits, a_bits) pair, the
//          forced bit-serial time over it, '*' where make_conv_plan picks the bit-serial row;
//          MIXNAS_CPU_DISABLE selects the ISA (e.g. avx512f,avx512bw,avx512vl,avx512vnni for AVX2).
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "deploy/runtime/builder.h"
#include "deploy/runtime/codes.h"
#include "deploy/runtime/cpu_features.h"
#include "deploy/runtime/kernels/conv.h"
#include "deploy/runtime/kernels/conv_lowbit.h"
#include "deploy/runtime/planner.h"
#include "tests/runtime/frame_graphs.h"

using namespace mixnas::rt;

namespace {

using Layer = testing::ConvShape;

int g_repeats = 9;
double g_min_ms = 2.0;

// CPU time of the calling thread (every timed call runs on it: mixnas and LibTorch both get one
// thread), in microseconds. Unlike wall time it does not count time the thread waits while other
// processes share the cores.
double thread_cpu_us() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

// Median over repeats of the thread CPU time per call (microseconds); each repeat runs enough
// calls to last at least g_min_ms.
double time_us(const std::function<void()>& fn) {
  fn();
  double t0 = thread_cpu_us();
  fn();
  double one = thread_cpu_us() - t0;
  const int calls = std::max(1, static_cast<int>(g_min_ms * 1000.0 / std::max(one, 1e-3)));
  std::vector<double> samples;
  for (int r = 0; r < g_repeats; ++r) {
    const double start = thread_cpu_us();
    for (int i = 0; i < calls; ++i) fn();
    samples.push_back((thread_cpu_us() - start) / calls);
  }
  std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
  return samples[samples.size() / 2];
}

const char* engine_name(at::QEngine e) {
  switch (e) {
    case at::QEngine::FBGEMM:
      return "fbgemm";
    case at::QEngine::QNNPACK:
      return "qnnpack";
    case at::QEngine::ONEDNN:
      return "onednn";
    case at::QEngine::X86:
      return "x86";
    default:
      return "none";
  }
}

// LibTorch quantized conv through the dispatcher (prepack once, then quantized::conv2d.new).
struct TorchQConv {
  c10::IValue packed;
  at::Tensor qx;
  double out_scale;
  int64_t out_zp;
  bool ok = false;
  std::string error;

  TorchQConv(at::QEngine engine, const at::Tensor& w, const at::Tensor& b, const Layer& l,
             const at::Tensor& x) {
    try {
      at::globalContext().setQEngine(engine);
      auto scales = (w.abs().amax({1, 2, 3}) / 127.0).clamp_min(1e-8).to(at::kDouble);
      auto zps = at::zeros({l.out_c}, at::kLong);
      at::Tensor qw;
      try {
        qw = at::quantize_per_channel(w, scales, zps, 0, at::kQInt8);
        packed = prepack(qw, b, l);
      } catch (const std::exception&) {  // engines without per-channel weights
        qw = at::quantize_per_tensor(w, scales.max().item<double>(), 0, at::kQInt8);
        packed = prepack(qw, b, l);
      }
      qx = at::quantize_per_tensor(x.contiguous(at::MemoryFormat::ChannelsLast), 4.0 / 255, 128,
                                   at::kQUInt8);
      out_scale = 0.05;
      out_zp = 128;
      run();
      ok = true;
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  static c10::IValue prepack(const at::Tensor& qw, const at::Tensor& b, const Layer& l) {
    static auto op =
        c10::Dispatcher::singleton().findSchemaOrThrow("quantized::conv2d_prepack", "");
    const int64_t p = l.k / 2;
    std::vector<c10::IValue> stack{qw,
                                   c10::optional<at::Tensor>(b),
                                   std::vector<int64_t>{l.stride, l.stride},
                                   std::vector<int64_t>{p, p},
                                   std::vector<int64_t>{1, 1},
                                   int64_t{1}};
    op.callBoxed(&stack);
    return stack[0];
  }
  at::Tensor run() const {
    static auto op = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::conv2d", "new");
    std::vector<c10::IValue> stack{qx, packed, out_scale, out_zp};
    op.callBoxed(&stack);
    return stack[0].toTensor();
  }
};

struct Row {
  double mix_f32, mix_int8, torch_f32, torch_q, torch_qnn;
};

ConvGeometry geometry_of(const Layer& l) {
  ConvGeometry g;
  g.in_h = g.in_w = l.hw;
  g.in_c = l.in_c;
  g.out_c = l.out_c;
  g.kernel_h = g.kernel_w = l.k;
  g.stride_h = g.stride_w = l.stride;
  g.pad_top = g.pad_left = g.pad_bottom = g.pad_right = l.k / 2;
  return g;
}

// The bit-serial row of the best ISA this CPU has (first available in table order).
std::string best_bitserial_row(int wb, int ab) {
  for (const ConvKernelInfo& k : conv_lowbit_kernel_table())
    if (k.available && k.min_w_bits == wb && k.min_a_bits == ab) return k.name;
  return "";
}

bool is_bitserial(const ConvPlan& p) {
  return std::strstr(p.kernel_name(), "bitserial") != nullptr;
}

// A low-bit layer: random weight codes of w_bits (1-bit: +-1), random input codes of a_bits with
// the zero point mid-range, codes out (8-bit, as the int8 columns).
struct LowbitLayer {
  ConvWeights w;
  std::vector<uint8_t> in;
  std::vector<uint8_t> out;
  ConvEpilogue ep;

  LowbitLayer(const Layer& l, int wb, int ab, std::mt19937& rng) {
    const ConvGeometry g = geometry_of(l);
    w.geometry = g;
    w.precision = ConvPrecision::kInt;
    w.w_bits = wb, w.a_bits = ab;
    const int lo = wb == 1 ? -1 : -(1 << (wb - 1)), hi = wb == 1 ? 1 : (1 << (wb - 1)) - 1;
    std::uniform_int_distribution<int> q(lo, hi);
    const size_t count = static_cast<size_t>(g.out_c) * g.reduction();
    w.weight_codes.resize(count);
    for (auto& c : w.weight_codes) {
      int v = q(rng);
      if (wb == 1 && v == 0) v = 1;
      c = static_cast<int8_t>(v);
    }
    w.weight_scale.assign(g.out_c, 0.01f);
    w.bias.assign(g.out_c, 0.1f);
    w.input_scale = 0.1f;
    w.input_zero_point = (1 << ab) / 2;
    in.resize(static_cast<size_t>(l.hw) * l.hw * l.in_c);
    for (auto& c : in) c = static_cast<uint8_t>(rng() & ((1u << ab) - 1));
    out.resize(static_cast<size_t>(g.out_h()) * g.out_w() * l.out_c);
    ConvSink s;
    s.kind = ConvSink::kCodes;
    s.data = out.data();
    s.row_stride = l.out_c;
    s.scale = 0.05f;
    s.zero_point = 128;
    ep.sinks = {s};
  }
  double time(const ConvPlan& plan) const {
    ConvInputView v;
    v.codes = in.data();
    v.row_stride = w.geometry.in_c;
    return time_us([&] { plan.run(v, ep, 1); });
  }
  // The plan reading the input as bit planes (dense BitPlaneLayout).
  double time_planes(const ConvPlan& plan) const {
    const BitPlaneLayout lay{w.geometry.in_c, w.a_bits};
    const int pixels = w.geometry.in_h * w.geometry.in_w;
    std::vector<uint64_t> planes(static_cast<size_t>(pixels) * lay.words_per_pixel());
    pack_bit_planes(in.data(), pixels, w.geometry.in_c, lay, planes.data());
    ConvInputView v;
    v.bit_planes = planes.data();
    v.row_stride = lay.words_per_pixel();
    v.plane_stride = lay.words_per_plane();
    return time_us([&] { plan.run(v, ep, 1); });
  }
};

// A layer as a low-bit model holds it (codes.h): its input and its output codes packed at
// code_storage_bits(bits) per code (bits 8: one byte each), the plan made for the packed input.
struct PackedLayer {
  LowbitLayer base;
  std::vector<uint8_t> in_packed, out_packed;
  std::unique_ptr<ConvPlan> plan;
  int storage;

  // As the planner decides (planner.h): packed where pixel rows start on bytes.
  static int storage_of(int bits, int channels) {
    const int s = code_storage_bits(bits);
    return channels * s % 8 == 0 ? s : 8;
  }
  PackedLayer(const Layer& l, int wb, int ab, std::mt19937& rng)
      : base(l, wb, ab, rng), storage(storage_of(ab, l.in_c)) {
    base.w.input_storage_bits = storage;
    plan = make_conv_plan(base.w);
    in_packed.resize(code_stream_bytes(static_cast<int64_t>(base.in.size()), storage));
    pack_codes(base.in.data(), static_cast<int64_t>(base.in.size()), storage, in_packed.data(), 0);
    ConvSink& s = base.ep.sinks[0];
    s.bits = ab;
    s.zero_point = (1 << ab) / 2;
    s.storage_bits = storage_of(ab, l.out_c);
    out_packed.resize(code_stream_bytes(static_cast<int64_t>(base.out.size()), s.storage_bits));
    s.data = out_packed.data();
  }
  double time() const {
    ConvInputView v;
    v.codes = in_packed.data();
    v.row_stride = base.w.geometry.in_c;
    v.code_storage_bits = storage;
    return time_us([&] { plan->run(v, base.ep, 1); });
  }
  // The arena of the one-conv graph (input and output live together), as the planner sizes it.
  int64_t arena_bytes() const {
    const ConvGeometry& g = base.w.geometry;
    const int bits = base.w.a_bits;
    GraphBuilder b("bench");
    const int x = b.add_input("x", g.in_h, g.in_w, Grid::codes(bits, 0.1f, 0), g.in_c);
    ConvLayer c = ConvLayer::square(g.out_c, g.kernel_h, g.stride_h, 0);
    c.w_bits = base.w.w_bits;
    c.weight_codes = base.w.weight_codes;
    c.weight_scale = base.w.weight_scale;
    const std::vector<int> y = b.add_conv("conv", x, c, {Grid::codes(bits, 0.05f, 0)});
    b.set_outputs(y);
    return plan_memory(b.graph()).arena_bytes;
  }
};

// PACKED: sums over the layers of the packed W4A4 / W2A2 forms against W8A8 (bytes, us).
struct PackedTotals {
  double w4 = 0, w8 = 0, a4 = 0, a8 = 0, t44 = 0, t22 = 0, t88 = 0;
  void add(const Layer& l, std::mt19937& rng) {
    const PackedLayer q44(l, 4, 4, rng), q22(l, 2, 2, rng), q88(l, 8, 8, rng);
    w4 += static_cast<double>(q44.plan->packed_weight_bytes());
    w8 += static_cast<double>(q88.plan->packed_weight_bytes());
    a4 += static_cast<double>(q44.arena_bytes());
    a8 += static_cast<double>(q88.arena_bytes());
    const double t44p = q44.time(), t22p = q22.time(), t88p = q88.time();
    if (std::getenv("MIXNAS_BENCH_PACKED_ROWS"))
      std::printf("  packed %-22s w4a4 %8.1f w2a2 %8.1f w8a8 %8.1f\n", l.name.c_str(), t44p, t22p,
                  t88p);
    t44 += t44p;
    t22 += t22p;
    t88 += t88p;
  }
  // Totals over the layer list (not geomeans): what a whole W4A4 / W2A2 model holds and takes.
  void print() const {
    std::printf(
        "PACKED w4_resident/int8=%.3f a4_arena/int8=%.3f w4a4_time/int8=%.3f "
        "w2a2_time/int8=%.3f\n",
        w4 / w8, a4 / a8, t44 / t88, t22 / t88);
  }
};

// --packed: the PACKED line alone (no peers), its rows with MIXNAS_BENCH_PACKED_ROWS.
int packed_table(const std::string& filter) {
  std::mt19937 rng(7);
  PackedTotals packed;
  for (const Layer& l : testing::yolov8n_conv_shapes())
    if (filter.empty() || l.name.find(filter) != std::string::npos) packed.add(l, rng);
  packed.print();
  return 0;
}

// --lowbit-pairs: per layer, the int8 kernel's time and every pair's forced bit-serial time over
// it.
int lowbit_pairs_table(const std::string& filter) {
  const int pairs[][2] = {{1, 1}, {1, 2}, {2, 1}, {2, 2}, {1, 3}, {3, 1}, {1, 4}, {4, 1},
                          {2, 3}, {3, 2}, {2, 4}, {4, 2}, {3, 3}, {3, 4}, {4, 3}, {4, 4},
                          {1, 8}, {8, 1}, {2, 8}, {8, 2}, {3, 8}, {8, 3}, {4, 8}, {8, 4}};
  const CpuFeatures& cpu = cpu_features();
  std::printf(
      "# mixnas-bench-conv --lowbit-pairs: forced bit-serial time / int8 kernel time per "
      "layer and (w_bits, a_bits); '*': make_conv_plan picks the bit-serial row\n");
  std::printf("# cpu: %s; int8: ", cpu.model_name.c_str());
  for (const auto& line : conv_kernel_names_for(cpu)) std::printf("[%s] ", line.c_str());
  std::printf("\n%-22s %-20s %6s %5s %9s", "layer", "shape", "K", "out_c", "int8_us");
  for (const auto& p : pairs) std::printf("   w%da%d", p[0], p[1]);
  std::printf("\n");
  std::mt19937 rng(7);
  int picked = 0, slower = 0, missed = 0;
  for (const Layer& l : testing::yolov8n_conv_shapes()) {
    if (!filter.empty() && l.name.find(filter) == std::string::npos) continue;
    const ConvGeometry g = geometry_of(l);
    char shape[64];
    std::snprintf(shape, sizeof shape, "%dx%dx%d>%d k%d s%d", l.hw, l.hw, l.in_c, l.out_c, l.k,
                  l.stride);
    // The int8 kernel's time does not depend on the codes' bit-width: time it once on W8A8.
    const LowbitLayer l8(l, 8, 8, rng);
    const double t8 = l8.time(*make_conv_plan(l8.w));
    std::printf("%-22s %-20s %6d %5d %9.1f", l.name.c_str(), shape, g.reduction(), l.out_c, t8);
    for (const auto& p : pairs) {
      const LowbitLayer lb(l, p[0], p[1], rng);
      const double r =
          lb.time(*make_conv_plan_lowbit_named(lb.w, best_bitserial_row(p[0], p[1]))) / t8;
      const bool pick = is_bitserial(*make_conv_plan(lb.w));
      picked += pick;
      slower += pick && r > 1.0;
      missed += !pick && r < 0.9;
      std::printf(" %6.2f%s", r, pick ? "*" : " ");
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  std::printf("RULE picked=%d picked_slower_than_int8=%d missed_wins_over_10pct=%d\n", picked,
              slower, missed);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string filter;
  bool pairs = false, packed_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--lowbit-pairs") {
      pairs = true;
    } else if (a == "--packed") {
      packed_only = true;
    } else if (a == "--repeats" && i + 1 < argc) {
      g_repeats = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--min-ms" && i + 1 < argc) {
      g_min_ms = std::atof(argv[++i]);
    } else if (a == "--filter" && i + 1 < argc) {
      filter = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: mixnas-bench-conv [--repeats N] [--min-ms M] [--filter SUBSTRING] "
                   "[--lowbit-pairs] [--packed]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (pairs) return lowbit_pairs_table(filter);
  if (packed_only) return packed_table(filter);
  at::set_num_threads(1);
  at::init_num_threads();
  torch::NoGradGuard no_grad;

  // Quantized engines: oneDNN-class (x86 > onednn > fbgemm, all VNNI-capable on x86) and QNNPACK.
  const auto engines = at::globalContext().supportedQEngines();
  auto has = [&](at::QEngine e) {
    return std::find(engines.begin(), engines.end(), e) != engines.end();
  };
  at::QEngine q_main = at::QEngine::NoQEngine;
  for (at::QEngine e : {at::QEngine::ONEDNN, at::QEngine::X86, at::QEngine::FBGEMM})
    if (q_main == at::QEngine::NoQEngine && has(e)) q_main = e;
  const bool has_qnnpack = has(at::QEngine::QNNPACK);
  std::string engine_list;
  for (auto e : engines)
    if (e != at::QEngine::NoQEngine) engine_list += std::string(engine_name(e)) + " ";

  const CpuFeatures& cpu = cpu_features();
  std::printf(
      "# mixnas-bench-conv: YOLOv8n 320x320 convs, 1 thread, thread CPU time in us, median of %d "
      "repeats (>= %.1f ms each)\n",
      g_repeats, g_min_ms);
  std::printf("# cpu: %s; mixnas kernels: ", cpu.model_name.c_str());
  for (const auto& line : conv_kernel_names_for(cpu)) std::printf("[%s] ", line.c_str());
  std::printf(
      "\n# LibTorch %s: fp32 peer = best of at::conv2d NCHW, at::conv2d channels_last and "
      "at::mkldnn_convolution (oneDNN); "
      "quantized engines available: %s; int8 peer = %s; qnnpack = %s\n",
      TORCH_VERSION, engine_list.c_str(), engine_name(q_main), has_qnnpack ? "qnnpack" : "MISSING");
  std::printf(
      "# mixnas int8: uint8 codes in, requantized uint8 codes out (as quantized::conv2d); "
      "fp32: floats in and out; identity activation, bias on.\n");
  const std::string r11 = best_bitserial_row(1, 1), r22 = best_bitserial_row(2, 2),
                    r44 = best_bitserial_row(4, 4);
  std::printf(
      "# low-bit: w1a1/w2a2/w4a4 = make_conv_plan's pick (random codes, z_a mid-range); "
      "forced rows %s %s %s\n",
      r11.c_str(), r22.c_str(), r44.c_str());
  std::printf(
      "%-24s %-22s %9s %9s %9s %9s %9s %6s %6s %6s | %8s %8s %8s | %8s %8s %8s %8s | %8s %8s | "
      "%s\n",
      "layer", "shape", "mix_f32", "onednn_f32", "mix_int8",
      (std::string(engine_name(q_main)) + "_i8").c_str(), "qnnpack_i8", "f32x", "i8x", "qnnx",
      "w1a1", "w2a2", "w4a4", "bs11", "bs22", "bs22p", "bs44", "lut11", "lut22", "pick");

  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  double log_f32 = 0, log_q = 0, log_qnn = 0;
  int n_f32 = 0, n_q = 0, n_qnn = 0;
  // Low-bit ratios (w2a2/onednn_int8, w2a2/onednn_fp32, w1a1/onednn_int8, w4a4/mixnas_int8):
  // picked plans and forced bit-serial rows.
  double log_pick[4] = {0, 0, 0, 0}, log_forced[4] = {0, 0, 0, 0}, log_lut[3] = {0, 0, 0};
  int n_low = 0;
  double tot[14] = {};
  PackedTotals packed;
  for (const Layer& l : testing::yolov8n_conv_shapes()) {
    if (!filter.empty() && l.name.find(filter) == std::string::npos) continue;
    const int pad = l.k / 2;
    const ConvGeometry g = geometry_of(l);
    const int oh = g.out_h(), ow = g.out_w();
    const size_t wcount = static_cast<size_t>(l.out_c) * l.in_c * l.k * l.k;

    at::Tensor w =
        at::randn({l.out_c, l.in_c, l.k, l.k}) * (1.0 / std::sqrt(double(l.in_c * l.k * l.k)));
    at::Tensor b = at::randn({l.out_c}) * 0.1;
    at::Tensor x = at::rand({1, l.in_c, l.hw, l.hw}) * 4.0 - 2.0;
    at::Tensor x_nhwc = x.permute({0, 2, 3, 1}).contiguous();  // mixnas input (NHWC)

    // mixnas fp32
    ConvWeights wf;
    wf.geometry = g;
    wf.precision = ConvPrecision::kF32;
    wf.weights_f32.assign(w.data_ptr<float>(), w.data_ptr<float>() + wcount);
    wf.bias.assign(b.data_ptr<float>(), b.data_ptr<float>() + l.out_c);
    auto plan_f32 = make_conv_plan(wf);
    std::vector<float> out_f32(static_cast<size_t>(oh) * ow * l.out_c);
    ConvEpilogue ep_f32;
    ConvSink sf;
    sf.data = out_f32.data();
    sf.row_stride = l.out_c;
    ep_f32.sinks = {sf};
    ConvInputView in_f32;
    in_f32.f32 = x_nhwc.data_ptr<float>();
    in_f32.row_stride = l.in_c;

    // mixnas int8 (per-channel weight codes, per-tensor activation codes, as the peers)
    ConvWeights wq;
    wq.geometry = g;
    wq.precision = ConvPrecision::kInt;
    auto wmax = w.abs().amax({1, 2, 3});
    for (int o = 0; o < l.out_c; ++o)
      wq.weight_scale.push_back(std::max(wmax[o].item<float>() / 127.0f, 1e-8f));
    const float* wp = w.data_ptr<float>();
    for (size_t i = 0; i < wcount; ++i) {
      const int o = static_cast<int>(i / (wcount / l.out_c));
      wq.weight_codes.push_back(static_cast<int8_t>(
          std::clamp<float>(std::nearbyint(wp[i] / wq.weight_scale[o]), -128, 127)));
    }
    wq.bias = wf.bias;
    wq.input_scale = 4.0f / 255;
    wq.input_zero_point = 128;
    auto plan_q = make_conv_plan(wq);
    std::vector<uint8_t> in_codes(static_cast<size_t>(l.hw) * l.hw * l.in_c);
    for (auto& c : in_codes) c = static_cast<uint8_t>(rng() & 255);
    std::vector<uint8_t> out_codes(static_cast<size_t>(oh) * ow * l.out_c);
    ConvEpilogue ep_q;
    ConvSink sq;
    sq.kind = ConvSink::kCodes;
    sq.data = out_codes.data();
    sq.row_stride = l.out_c;
    sq.scale = 0.05f;
    sq.zero_point = 128;
    ep_q.sinks = {sq};
    ConvInputView in_q;
    in_q.codes = in_codes.data();
    in_q.row_stride = l.in_c;

    Row r{};
    r.mix_f32 = time_us([&] { plan_f32->run(in_f32, ep_f32, 1); });
    r.mix_int8 = time_us([&] { plan_q->run(in_q, ep_q, 1); });
    const at::Tensor x_cl = x.contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor w_cl = w.contiguous(at::MemoryFormat::ChannelsLast);
    const double t_nchw = time_us([&] { at::conv2d(x, w, b, {l.stride, l.stride}, {pad, pad}); });
    const double t_nhwc = time_us([&] {
      at::conv2d(x_cl, w_cl, b, {l.stride, l.stride}, {pad, pad});
    });
    const double t_mkldnn = time_us([&] {
      at::mkldnn_convolution(x, w, b, {pad, pad}, {l.stride, l.stride}, {1, 1}, 1);
    });
    r.torch_f32 = std::min({t_nchw, t_nhwc, t_mkldnn});
    r.torch_q = r.torch_qnn = NAN;
    if (q_main != at::QEngine::NoQEngine) {
      TorchQConv q(q_main, w, b, l, x);
      if (q.ok) r.torch_q = time_us([&] { q.run(); });
    }
    if (has_qnnpack) {
      TorchQConv q(at::QEngine::QNNPACK, w, b, l, x);
      if (q.ok) r.torch_qnn = time_us([&] { q.run(); });
      if (!q.ok)
        std::fprintf(stderr, "qnnpack failed on %s: %s\n", l.name.c_str(), q.error.c_str());
    }
    if (q_main != at::QEngine::NoQEngine) at::globalContext().setQEngine(q_main);

    // Low bits: what the kernel table picks, and the bit-serial rows forced.
    const LowbitLayer l11(l, 1, 1, rng), l22(l, 2, 2, rng), l44(l, 4, 4, rng);
    auto p11 = make_conv_plan(l11.w), p22 = make_conv_plan(l22.w), p44 = make_conv_plan(l44.w);
    const double t11 = l11.time(*p11), t22 = l22.time(*p22), t44 = l44.time(*p44);
    auto forced = [&](const LowbitLayer& lb, const ConvPlan& picked, double t_picked,
                      const std::string& row) {
      if (is_bitserial(picked)) return t_picked;
      return lb.time(*make_conv_plan_lowbit_named(lb.w, row));
    };
    const double f11 = forced(l11, *p11, t11, r11), f22 = forced(l22, *p22, t22, r22),
                 f44 = forced(l44, *p44, t44, r44);
    const double f22p = l22.time_planes(*make_conv_plan_lowbit_named(l22.w, r22));
    // The table-lookup rows forced (NAN where the CPU lacks them or the layer does not fit).
    auto lut = [&](const LowbitLayer& lb, const char* row) {
      try {
        auto p = make_conv_plan_lowbit_named(lb.w, row);
        return p ? lb.time(*p) : NAN;
      } catch (const mixnas::Error&) {
        return static_cast<double>(NAN);
      }
    };
    const double u11 = lut(l11, "conv_lut_w1a1__avx512vbmi"),
                 u22 = lut(l22, "conv_lut_w2a2__avx512vbmi");
    const std::string pick = std::string(is_bitserial(*p11) ? "b" : "i") +
                             (is_bitserial(*p22) ? "b" : "i") + (is_bitserial(*p44) ? "b" : "i");

    char shape[64];
    std::snprintf(shape, sizeof shape, "%dx%dx%d>%d k%d s%d", l.hw, l.hw, l.in_c, l.out_c, l.k,
                  l.stride);
    const double f32x = r.torch_f32 / r.mix_f32, i8x = r.torch_q / r.mix_int8,
                 qnnx = r.torch_qnn / r.mix_int8;
    std::printf(
        "%-24s %-22s %9.1f %9.1f %9.1f %9.1f %9.1f %6.2f %6.2f %6.2f | %8.1f %8.1f %8.1f | %8.1f "
        "%8.1f %8.1f %8.1f | %8.1f %8.1f | %s\n",
        l.name.c_str(), shape, r.mix_f32, r.torch_f32, r.mix_int8, r.torch_q, r.torch_qnn, f32x,
        i8x, qnnx, t11, t22, t44, f11, f22, f22p, f44, u11, u22, pick.c_str());
    std::fflush(stdout);
    log_f32 += std::log(f32x), ++n_f32;
    if (std::isfinite(i8x)) log_q += std::log(i8x), ++n_q;
    if (std::isfinite(qnnx)) log_qnn += std::log(qnnx), ++n_qnn;
    if (std::isfinite(r.torch_q)) {
      const double pk[4] = {r.torch_q / t22, r.torch_f32 / t22, r.torch_q / t11, r.mix_int8 / t44};
      const double fc[4] = {r.torch_q / f22, r.torch_f32 / f22, r.torch_q / f11, r.mix_int8 / f44};
      for (int i = 0; i < 4; ++i) log_pick[i] += std::log(pk[i]), log_forced[i] += std::log(fc[i]);
      const double lu[3] = {r.torch_q / u22, r.torch_f32 / u22, r.torch_q / u11};
      for (int i = 0; i < 3; ++i) log_lut[i] += std::log(std::isfinite(lu[i]) ? lu[i] : 0.0);
      ++n_low;
    }
    packed.add(l, rng);
    const double v[14] = {r.mix_f32, r.torch_f32, r.mix_int8, r.torch_q, r.torch_qnn, t11, t22,
                          t44,       f11,         f22,        f22p,      f44,         u11, u22};
    for (int i = 0; i < 14; ++i) tot[i] += v[i];
  }
  std::printf(
      "%-24s %-22s %9.1f %9.1f %9.1f %9.1f %9.1f %6.2f %6.2f %6.2f | %8.1f %8.1f %8.1f | %8.1f "
      "%8.1f %8.1f %8.1f | %8.1f %8.1f |\n",
      "TOTAL (us)", "", tot[0], tot[1], tot[2], tot[3], tot[4], tot[1] / tot[0], tot[3] / tot[2],
      tot[4] / tot[2], tot[5], tot[6], tot[7], tot[8], tot[9], tot[10], tot[11], tot[12], tot[13]);
  auto gm = [](double s, int n) { return n ? std::exp(s / n) : NAN; };
  std::printf(
      "FORCED-BITSERIAL w2a2/onednn_int8=%.3f w2a2/onednn_fp32=%.3f w1a1/onednn_int8=%.3f "
      "w4a4/mixnas_int8=%.3f\n",
      gm(log_forced[0], n_low), gm(log_forced[1], n_low), gm(log_forced[2], n_low),
      gm(log_forced[3], n_low));
  std::printf("FORCED-LUT w2a2/onednn_int8=%.3f w2a2/onednn_fp32=%.3f w1a1/onednn_int8=%.3f\n",
              gm(log_lut[0], n_low), gm(log_lut[1], n_low), gm(log_lut[2], n_low));
  packed.print();
  std::printf(
      "GEOMEAN fp32/onednn_fp32=%.3f int8/onednn_int8=%.3f int8/qnnpack_int8=%.3f "
      "w2a2/onednn_int8=%.3f w2a2/onednn_fp32=%.3f w1a1/onednn_int8=%.3f w4a4/mixnas_int8=%.3f\n",
      gm(log_f32, n_f32), gm(log_q, n_q), gm(log_qnn, n_qnn), gm(log_pick[0], n_low),
      gm(log_pick[1], n_low), gm(log_pick[2], n_low), gm(log_pick[3], n_low));
  return 0;
}
