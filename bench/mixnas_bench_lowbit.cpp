// mixnas-bench-lowbit: the low-bit conv rows (deploy/runtime/kernels/conv_lowbit.h) on every conv of
// YOLOv8n (width 0.25, depth 0.33) at 320x320, one thread, against mixnas' int8 kernel and
// LibTorch's fp32 conv (oneDNN) and quantized conv (oneDNN/x86/fbgemm engine), measured in the
// same run. Per layer (thread CPU time, median of repeats, microseconds):
//   int8      mixnas int8 kernel (make_conv_plan without the low-bit rows), uint8 codes in/out
//   bs_w1a1, bs_w2a2, bs_w4a4   the bit-serial row of the best ISA, forced, codes in/out (the
//                               activations are packed into planes inside run())
//   bs_w2a2p  the same W2A2 plan reading bit planes a producer wrote (no packing pass)
//   pick_w2a2 / pick_w1a1 / pick_w4a4  what the table runs for that layer (low-bit row where the
//                               rule says it wins, else int8)
// Last line: the throughput ratios (geometric mean over the convs, > 1: mixnas faster)
//   LOWBIT w2a2/onednn_int8=<r> w2a2/onednn_fp32=<r> w1a1/onednn_int8=<r> w4a4/mixnas_int8=<r>
// computed from the pick_* columns (what the runtime does), and before it the same for the forced
// bit-serial rows.
// Options: --repeats N (default 7), --min-ms M (default 2), --filter SUBSTRING.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "deploy/runtime/cpu_features.h"
#include "deploy/runtime/kernels/conv.h"
#include "deploy/runtime/kernels/conv_lowbit.h"

using namespace mixnas::rt;

namespace {

struct Layer {
  std::string name;
  int hw, cin, cout, k, stride;
};

// YOLOv8n (ultralytics yolov8.yaml, scale n: depth 0.33, width 0.25) at 320x320: the list of
// bench/bench_conv.cpp.
std::vector<Layer> yolov8n_convs() {
  std::vector<Layer> L;
  auto conv = [&](const std::string& n, int hw, int ci, int co, int k, int s) {
    L.push_back({n, hw, ci, co, k, s});
  };
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

int g_repeats = 7;
double g_min_ms = 2.0;

double thread_cpu_us() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

// Median over repeats of the thread CPU time per call (us); each repeat lasts >= g_min_ms.
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

// LibTorch quantized conv through the dispatcher (prepack once, then quantized::conv2d.new).
struct TorchQConv {
  c10::IValue packed;
  at::Tensor qx;
  bool ok = false;
  TorchQConv(at::QEngine engine, const at::Tensor& w, const at::Tensor& b, const Layer& l,
             const at::Tensor& x) {
    try {
      at::globalContext().setQEngine(engine);
      auto scales = (w.abs().amax({1, 2, 3}) / 127.0).clamp_min(1e-8).to(at::kDouble);
      auto zps = at::zeros({l.cout}, at::kLong);
      at::Tensor qw;
      try {
        qw = at::quantize_per_channel(w, scales, zps, 0, at::kQInt8);
        packed = prepack(qw, b, l);
      } catch (const std::exception&) {
        qw = at::quantize_per_tensor(w, scales.max().item<double>(), 0, at::kQInt8);
        packed = prepack(qw, b, l);
      }
      qx = at::quantize_per_tensor(x.contiguous(at::MemoryFormat::ChannelsLast), 4.0 / 255, 128,
                                   at::kQUInt8);
      run();
      ok = true;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "quantized conv failed on %s: %s\n", l.name.c_str(), e.what());
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
    std::vector<c10::IValue> stack{qx, packed, 0.05, int64_t{128}};
    op.callBoxed(&stack);
    return stack[0].toTensor();
  }
};

// The bit-serial row of the best ISA this CPU has (first available in table order).
std::string best_row(int wb, int ab) {
  for (const ConvKernelInfo& k : conv_lowbit_kernel_table())
    if (k.available && k.min_w_bits == wb && k.min_a_bits == ab) return k.name;
  return "";
}

ConvWeights int_weights(const ConvGeometry& g, int wb, int ab, std::mt19937& rng) {
  ConvWeights w;
  w.geometry = g;
  w.precision = ConvPrecision::kInt;
  w.w_bits = wb, w.a_bits = ab;
  const int lo = wb == 1 ? -1 : -(1 << (wb - 1)), hi = wb == 1 ? 1 : (1 << (wb - 1)) - 1;
  std::uniform_int_distribution<int> q(lo, hi);
  const size_t count = static_cast<size_t>(g.out_c) * g.reduction();
  for (size_t i = 0; i < count; ++i) {
    int v = q(rng);
    if (wb == 1 && v == 0) v = 1;
    w.weight_codes.push_back(static_cast<int8_t>(v));
  }
  w.weight_scale.assign(g.out_c, 0.01f);
  w.bias.assign(g.out_c, 0.1f);
  w.input_scale = 0.1f;
  w.input_zero_point = (1 << ab) / 2;
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  std::string filter;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--repeats" && i + 1 < argc) {
      g_repeats = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--min-ms" && i + 1 < argc) {
      g_min_ms = std::atof(argv[++i]);
    } else if (a == "--filter" && i + 1 < argc) {
      filter = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: mixnas-bench-lowbit [--repeats N] [--min-ms M] [--filter SUBSTRING]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  at::set_num_threads(1);
  at::init_num_threads();
  torch::NoGradGuard no_grad;
  const auto engines = at::globalContext().supportedQEngines();
  at::QEngine q_main = at::QEngine::NoQEngine;
  for (at::QEngine e : {at::QEngine::ONEDNN, at::QEngine::X86, at::QEngine::FBGEMM})
    if (q_main == at::QEngine::NoQEngine &&
        std::find(engines.begin(), engines.end(), e) != engines.end())
      q_main = e;

  const std::string r11 = best_row(1, 1), r22 = best_row(2, 2), r44 = best_row(4, 4);
  std::printf("# mixnas-bench-lowbit: YOLOv8n 320x320 convs, 1 thread, thread CPU us, median of %d\n",
              g_repeats);
  std::printf("# cpu: %s; rows: %s %s %s\n", cpu_features().model_name.c_str(), r11.c_str(),
              r22.c_str(), r44.c_str());
  for (const auto& line : conv_lowbit_kernel_names_for()) std::printf("# %s\n", line.c_str());
  std::printf("%-22s %-20s %9s %9s %9s %9s %9s %9s %9s %9s | %-8s %-8s %-8s\n", "layer", "shape",
              "onednn32", "onednn8", "int8", "bs_w1a1", "bs_w2a2", "bs_w2a2p", "bs_w4a4",
              "pick_w2a2", "w1a1", "w2a2", "w4a4");

  std::mt19937 rng(7);
  // log sums: forced bit-serial and picked, per ratio
  double lf[4] = {0, 0, 0, 0}, lp[4] = {0, 0, 0, 0};
  int n = 0;
  for (const Layer& l : yolov8n_convs()) {
    if (!filter.empty() && l.name.find(filter) == std::string::npos) continue;
    const int pad = l.k / 2;
    ConvGeometry g;
    g.in_h = g.in_w = l.hw;
    g.in_c = l.cin;
    g.out_c = l.cout;
    g.kernel_h = g.kernel_w = l.k;
    g.stride_h = g.stride_w = l.stride;
    g.pad_top = g.pad_left = g.pad_bottom = g.pad_right = pad;
    const int oh = g.out_h(), ow = g.out_w();
    at::Tensor w = at::randn({l.cout, l.cin, l.k, l.k}) * (1.0 / std::sqrt(double(l.cin * l.k * l.k)));
    at::Tensor b = at::randn({l.cout}) * 0.1;
    at::Tensor x = at::rand({1, l.cin, l.hw, l.hw}) * 4.0 - 2.0;

    // Peers.
    const at::Tensor x_cl = x.contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor w_cl = w.contiguous(at::MemoryFormat::ChannelsLast);
    const double t_nchw = time_us([&] { at::conv2d(x, w, b, {l.stride, l.stride}, {pad, pad}); });
    const double t_nhwc =
        time_us([&] { at::conv2d(x_cl, w_cl, b, {l.stride, l.stride}, {pad, pad}); });
    const double t_mkl = time_us(
        [&] { at::mkldnn_convolution(x, w, b, {pad, pad}, {l.stride, l.stride}, {1, 1}, 1); });
    const double t_f32 = std::min({t_nchw, t_nhwc, t_mkl});
    double t_q8 = NAN;
    if (q_main != at::QEngine::NoQEngine) {
      TorchQConv q(q_main, w, b, l, x);
      if (q.ok) t_q8 = time_us([&] { q.run(); });
    }

    // mixnas: codes in, 8-bit codes out.
    std::vector<uint8_t> out_codes(static_cast<size_t>(oh) * ow * l.cout);
    ConvEpilogue ep;
    ConvSink s;
    s.kind = ConvSink::kCodes;
    s.data = out_codes.data();
    s.row_stride = l.cout;
    s.scale = 0.05f;
    s.zero_point = 128;
    ep.sinks = {s};
    auto codes_for = [&](int ab) {
      std::vector<uint8_t> c(static_cast<size_t>(l.hw) * l.hw * l.cin);
      for (auto& v : c) v = static_cast<uint8_t>(rng() & ((1u << ab) - 1));
      return c;
    };
    auto time_plan = [&](const ConvPlan& plan, const std::vector<uint8_t>& in) {
      ConvInputView v;
      v.codes = in.data();
      v.row_stride = l.cin;
      return time_us([&] { plan.run(v, ep, 1); });
    };
    const auto in2 = codes_for(2), in1 = codes_for(1), in4 = codes_for(4), in8 = codes_for(8);
    const ConvWeights w8 = int_weights(g, 8, 8, rng), w11 = int_weights(g, 1, 1, rng),
                      w22 = int_weights(g, 2, 2, rng), w44 = int_weights(g, 4, 4, rng);
    const double t_int8 = time_plan(*make_conv_plan(w8), in8);
    const double t11 = time_plan(*make_conv_plan_lowbit_named(w11, r11), in1);
    auto p22 = make_conv_plan_lowbit_named(w22, r22);
    const double t22 = time_plan(*p22, in2);
    const double t44 = time_plan(*make_conv_plan_lowbit_named(w44, r44), in4);
    // W2A2 reading planes (as a kBitPlanes producer writes them).
    BitPlaneLayout lay{l.cin, 2};
    std::vector<uint64_t> planes(static_cast<size_t>(l.hw) * l.hw * lay.words_per_pixel());
    pack_bit_planes(in2.data(), l.hw * l.hw, l.cin, lay, planes.data());
    ConvInputView pv;
    pv.bit_planes = planes.data();
    pv.row_stride = lay.words_per_pixel();
    pv.plane_stride = lay.words_per_plane();
    const double t22p = time_us([&] { p22->run(pv, ep, 1); });
    // What the table picks (low-bit row where the rule wins, else the int8 kernel).
    auto pick = [&](const ConvWeights& wq, const std::vector<uint8_t>& in, std::string* name) {
      auto p = make_conv_plan_lowbit(wq);
      if (!p) p = make_conv_plan(wq);
      *name = p->kernel_name();
      const bool lowbit = name->find("bitserial") != std::string::npos;
      return lowbit ? time_plan(*p, in) : t_int8;  // int8 kernel: same time for any bits
    };
    std::string n11, n22, n44;
    const double q11 = pick(w11, in1, &n11), q22 = pick(w22, in2, &n22), q44 = pick(w44, in4, &n44);
    auto tag = [](const std::string& name) {
      return name.find("bitserial") != std::string::npos ? "bs" : "int8";
    };

    char shape[64];
    std::snprintf(shape, sizeof shape, "%dx%dx%d>%d k%d s%d", l.hw, l.hw, l.cin, l.cout, l.k,
                  l.stride);
    std::printf("%-22s %-20s %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f | %-8s %-8s %-8s\n",
                l.name.c_str(), shape, t_f32, t_q8, t_int8, t11, t22, t22p, t44, q22, tag(n11),
                tag(n22), tag(n44));
    std::fflush(stdout);
    lf[0] += std::log(t_q8 / t22), lf[1] += std::log(t_f32 / t22), lf[2] += std::log(t_q8 / t11),
        lf[3] += std::log(t_int8 / t44);
    lp[0] += std::log(t_q8 / q22), lp[1] += std::log(t_f32 / q22), lp[2] += std::log(t_q8 / q11),
        lp[3] += std::log(t_int8 / q44);
    ++n;
  }
  auto gm = [&](double s) { return n ? std::exp(s / n) : NAN; };
  std::printf("FORCED-BITSERIAL w2a2/onednn_int8=%.3f w2a2/onednn_fp32=%.3f w1a1/onednn_int8=%.3f "
              "w4a4/mixnas_int8=%.3f\n",
              gm(lf[0]), gm(lf[1]), gm(lf[2]), gm(lf[3]));
  std::printf("LOWBIT w2a2/onednn_int8=%.3f w2a2/onednn_fp32=%.3f w1a1/onednn_int8=%.3f "
              "w4a4/mixnas_int8=%.3f\n",
              gm(lp[0]), gm(lp[1]), gm(lp[2]), gm(lp[3]));
  return 0;
}
