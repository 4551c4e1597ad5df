// mixnas-bench-conv: every conv of YOLOv8n (width 0.25, depth 0.33) at 320x320, one thread,
// mixnas fp32 / int8 kernels against LibTorch's fp32 conv (oneDNN) and quantized convs (oneDNN,
// fbgemm/x86 and QNNPACK engines, whichever this LibTorch has), measured in the same run.
// Prints one table row per layer (median time of repeats, microseconds) and LAST the line
//   GEOMEAN fp32/onednn_fp32=<r> int8/onednn_int8=<r> int8/qnnpack_int8=<r>
// with throughput ratios (> 1: mixnas faster).
//
// Options: --repeats N (default 9), --min-ms M (minimum time per repeat, default 2),
//          --filter SUBSTRING (only layers whose name contains it).
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

using namespace mixnas::rt;

namespace {

struct Layer {
  std::string name;
  int hw, cin, cout, k, stride;
};

// YOLOv8n (ultralytics yolov8.yaml, scale n: depth 0.33, width 0.25) at 320x320.
std::vector<Layer> yolov8n_convs() {
  std::vector<Layer> L;
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
      auto zps = at::zeros({l.cout}, at::kLong);
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
                   "usage: mixnas-bench-conv [--repeats N] [--min-ms M] [--filter SUBSTRING]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
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
  std::printf("%-24s %-22s %10s %10s %10s %10s %10s %8s %8s %8s\n", "layer", "shape", "mix_f32",
              "onednn_f32", "mix_int8", (std::string(engine_name(q_main)) + "_i8").c_str(),
              "qnnpack_i8", "f32x", "i8x", "qnnx");

  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  double log_f32 = 0, log_q = 0, log_qnn = 0;
  int n_f32 = 0, n_q = 0, n_qnn = 0;
  double tot[5] = {0, 0, 0, 0, 0};
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
    const size_t wcount = static_cast<size_t>(l.cout) * l.cin * l.k * l.k;

    at::Tensor w =
        at::randn({l.cout, l.cin, l.k, l.k}) * (1.0 / std::sqrt(double(l.cin * l.k * l.k)));
    at::Tensor b = at::randn({l.cout}) * 0.1;
    at::Tensor x = at::rand({1, l.cin, l.hw, l.hw}) * 4.0 - 2.0;
    at::Tensor x_nhwc = x.permute({0, 2, 3, 1}).contiguous();  // mixnas input (NHWC)

    // mixnas fp32
    ConvWeights wf;
    wf.geometry = g;
    wf.precision = ConvPrecision::kF32;
    wf.weights_f32.assign(w.data_ptr<float>(), w.data_ptr<float>() + wcount);
    wf.bias.assign(b.data_ptr<float>(), b.data_ptr<float>() + l.cout);
    auto plan_f32 = make_conv_plan(wf);
    std::vector<float> out_f32(static_cast<size_t>(oh) * ow * l.cout);
    ConvEpilogue ep_f32;
    ConvSink sf;
    sf.data = out_f32.data();
    sf.row_stride = l.cout;
    ep_f32.sinks = {sf};
    ConvInputView in_f32;
    in_f32.f32 = x_nhwc.data_ptr<float>();
    in_f32.row_stride = l.cin;

    // mixnas int8 (per-channel weight codes, per-tensor activation codes, as the peers)
    ConvWeights wq;
    wq.geometry = g;
    wq.precision = ConvPrecision::kInt;
    auto wmax = w.abs().amax({1, 2, 3});
    for (int o = 0; o < l.cout; ++o)
      wq.weight_scale.push_back(std::max(wmax[o].item<float>() / 127.0f, 1e-8f));
    const float* wp = w.data_ptr<float>();
    for (size_t i = 0; i < wcount; ++i) {
      const int o = static_cast<int>(i / (wcount / l.cout));
      wq.weight_codes.push_back(static_cast<int8_t>(
          std::clamp<float>(std::nearbyint(wp[i] / wq.weight_scale[o]), -128, 127)));
    }
    wq.bias = wf.bias;
    wq.input_scale = 4.0f / 255;
    wq.input_zero_point = 128;
    auto plan_q = make_conv_plan(wq);
    std::vector<uint8_t> in_codes(static_cast<size_t>(l.hw) * l.hw * l.cin);
    for (auto& c : in_codes) c = static_cast<uint8_t>(rng() & 255);
    std::vector<uint8_t> out_codes(static_cast<size_t>(oh) * ow * l.cout);
    ConvEpilogue ep_q;
    ConvSink sq;
    sq.kind = ConvSink::kCodes;
    sq.data = out_codes.data();
    sq.row_stride = l.cout;
    sq.scale = 0.05f;
    sq.zero_point = 128;
    ep_q.sinks = {sq};
    ConvInputView in_q;
    in_q.codes = in_codes.data();
    in_q.row_stride = l.cin;

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

    char shape[64];
    std::snprintf(shape, sizeof shape, "%dx%dx%d>%d k%d s%d", l.hw, l.hw, l.cin, l.cout, l.k,
                  l.stride);
    const double f32x = r.torch_f32 / r.mix_f32, i8x = r.torch_q / r.mix_int8,
                 qnnx = r.torch_qnn / r.mix_int8;
    std::printf("%-24s %-22s %10.1f %10.1f %10.1f %10.1f %10.1f %8.2f %8.2f %8.2f\n",
                l.name.c_str(), shape, r.mix_f32, r.torch_f32, r.mix_int8, r.torch_q, r.torch_qnn,
                f32x, i8x, qnnx);
    std::fflush(stdout);
    log_f32 += std::log(f32x), ++n_f32;
    if (std::isfinite(i8x)) log_q += std::log(i8x), ++n_q;
    if (std::isfinite(qnnx)) log_qnn += std::log(qnnx), ++n_qnn;
    const double v[5] = {r.mix_f32, r.torch_f32, r.mix_int8, r.torch_q, r.torch_qnn};
    for (int i = 0; i < 5; ++i) tot[i] += v[i];
  }
  std::printf("%-24s %-22s %10.1f %10.1f %10.1f %10.1f %10.1f %8.2f %8.2f %8.2f\n", "TOTAL (us)",
              "", tot[0], tot[1], tot[2], tot[3], tot[4], tot[1] / tot[0], tot[3] / tot[2],
              tot[4] / tot[2]);
  auto gm = [](double s, int n) { return n ? std::exp(s / n) : NAN; };
  std::printf("GEOMEAN fp32/onednn_fp32=%.3f int8/onednn_int8=%.3f int8/qnnpack_int8=%.3f\n",
              gm(log_f32, n_f32), gm(log_q, n_q), gm(log_qnn, n_qnn));
  return 0;
}
