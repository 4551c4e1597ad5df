// mixnas-bench-devicemodel: the device model against measurement where a core can be measured.
// 1. Per layer: every conv of YOLOv8n at 320x320 (int8 and W4A4, as tests/runtime/frame_graphs.h
//    builds it) predicted for this CPU through LLVM's Zen 3 model (configs/devices/
//    x86-znver3-model.yaml; AVX2 rows, AVX-512 masked) and measured here as one-layer graphs. The
//    model's coefficients (fit.h) are fitted on these layers by least squares; the reported MAPE is
//    leave-one-shape-out: each conv shape (int8 and W4A4 together) predicted by a fit without it.
// 2. Whole models: the sum of those held-out layer predictions, calibrated as latency tables are
//    (LatencyTable::calibrate) on the *other* model's whole measurement, against the measured
//    whole graph (the uncalibrated sum is printed beside it).
// 3. Cortex-A72 (configs/devices/rpi4-model.yaml): predicted W2A2 and W1A1 per-layer speed-ups
//    over int8 (geomean of int8 time / low-bit time).
// `--table-timing configs/devices/X-model.yaml` times a 1000-signature table instead;
// `--rules configs/devices/X-model.yaml` prints instead, per (w, a) pair, the selection rule the
// model predicts for that core (docs/device_models.md). Times are thread CPU time (one thread),
// medians. Last line:
//   DEVICEMODEL x86_layer_mape=<pct> x86_model_mape=<pct> a72_w2a2_vs_int8=<r> a72_w1a1_vs_int8=<r>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <vector>

#include "core/error.h"
#include "deploy/runtime/kernels/activation.h"
#include "deploy/runtime/session.h"
#include "evaluators/device_model/device_model.h"
#include "evaluators/device_model/fit.h"
#include "evaluators/measure.h"
#include "tests/runtime/frame_graphs.h"

using namespace mixnas;
namespace devmodel = mixnas::eval::devmodel;

namespace {

double thread_cpu_ms() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

// Median thread CPU time of fn over 7 repeats of >= 3 ms each.
double time_ms(const std::function<void()>& fn) {
  fn();
  const double t0 = thread_cpu_ms();
  fn();
  const int calls = std::max(1, static_cast<int>(3.0 / std::max(thread_cpu_ms() - t0, 1e-4)));
  std::vector<double> s;
  for (int r = 0; r < 7; ++r) {
    const double a = thread_cpu_ms();
    for (int i = 0; i < calls; ++i) fn();
    s.push_back((thread_cpu_ms() - a) / calls);
  }
  std::nth_element(s.begin(), s.begin() + 3, s.end());
  return s[3];
}

double run_ms(const rt::Graph& g) {
  rt::SessionOptions so;
  so.threads = 1;
  rt::Session session(rt::Model::from_graph(g), so);
  eval::set_deterministic_input(session, 1);
  return time_ms([&] { session.run_graph(); });
}

double geomean(const std::vector<double>& r) {
  double s = 0;
  for (double x : r) s += std::log(x);
  return std::exp(s / r.size());
}

rt::Graph yolo(int bits) {
  rt::testing::YoloOptions o;
  o.imgsz = 320;
  o.w_bits = o.a_bits = bits;
  return rt::testing::make_yolov8n_graph(o);
}

// The forced bit-serial row of (w, a) over the int8 kernel on the same codes, per conv, on one
// core; then the single rule "K >= min_k and in_c >= min_in_c" that picks the most layers while
// every layer it picks is predicted <= kRuleMaxRatio of int8 (the x86 rules keep ~10%).
constexpr double kRuleMaxRatio = 0.9;

using RuleRows = std::vector<std::pair<eval::LayerSignature, double>>;

// The single rule "K >= min_k and <channel> >= min_c" (channel: in_c or out_c, as `channel_of`
// reads it) that picks the most of `rows` (signature, predicted ratio to int8) while every row it
// picks is <= kRuleMaxRatio; printed as a RULE line for `what` on `core`.
void print_best_rule(const std::string& core, const std::string& what, const RuleRows& rows,
                     const char* channel, int (*channel_of)(const eval::LayerSignature&)) {
  auto k_of = [](const eval::LayerSignature& s) { return s.kernel * s.kernel * s.in_c; };
  int best_n = 0, best_k = 0, best_c = 0;
  double best_lo = 0, best_hi = 0;
  for (const auto& [ks, unused1] : rows)
    for (const auto& [cs, unused2] : rows) {
      const int min_k = k_of(ks), min_c = channel_of(cs);
      int n = 0;
      bool ok = true;
      double lo = 1e9, hi = 0;
      for (const auto& [s, r] : rows)
        if (k_of(s) >= min_k && channel_of(s) >= min_c)
          ++n, ok = ok && r <= kRuleMaxRatio, lo = std::min(lo, r), hi = std::max(hi, r);
      if (ok && n > best_n) best_n = n, best_k = min_k, best_c = min_c, best_lo = lo, best_hi = hi;
    }
  double all_lo = 1e9, all_hi = 0;
  for (const auto& [s, r] : rows) all_lo = std::min(all_lo, r), all_hi = std::max(all_hi, r);
  const std::string rule = best_n ? "K >= " + std::to_string(best_k) + " and " + channel +
                                        " >= " + std::to_string(best_c)
                                  : "none";
  std::printf(
      "RULE core=%s %s %s picked=%d/%zu predicted_ratio=%.2f-%.2f (all layers "
      "%.2f-%.2f)\n",
      core.c_str(), what.c_str(), rule.c_str(), best_n, rows.size(), best_lo, best_hi, all_lo,
      all_hi);
}

int in_c_of(const eval::LayerSignature& s) {
  return s.in_c;
}
int out_c_of(const eval::LayerSignature& s) {
  return s.out_c;
}

void derive_tbl_rule(eval::DeviceModel& model, const std::vector<eval::LayerSignature>& base,
                     const std::vector<std::string>& names);

void derive_rules(const std::string& device_yaml, const eval::DeviceModel::Options& opt) {
  auto model = eval::DeviceModel::load(device_yaml, opt);
  const auto base = eval::conv_signatures(yolo(8));
  const bool dot = model.spec().core == "cortex-a55" || model.spec().core == "cortex-a76";
  const std::string isa = dot ? "__neondot" : "__neon";
  const std::string int8 = dot ? "conv_qu8_gemm_4x16c4__neondot" : "conv_qu8_gemm_8x8__neon";
  const int pairs[][2] = {{1, 1}, {1, 2}, {2, 1}, {2, 2}, {1, 3}, {3, 1}, {1, 4}, {4, 1}};
  // Per conv, the ratios of every pair as a C++ row (tests/runtime/kernels/test_lowbit.cpp).
  const rt::Graph g = yolo(8);
  std::vector<std::string> names;
  for (const rt::Node& n : g.nodes)
    if (n.op == rt::OpType::kConv2d) names.push_back(n.name);
  for (size_t i = 0; i < base.size(); ++i) {
    const auto& b = base[i];
    if (b.in_c < 8) continue;
    std::printf("TABLE {\"%s\", %d, %d, %d, %d, %d, {", names[i].c_str(), b.in_h, b.in_c, b.out_c,
                b.kernel, b.stride);
    for (const auto& pr : pairs) {
      auto s = b;
      s.w_bits = pr[0], s.a_bits = pr[1];
      const std::string bs =
          "conv_bitserial_w" + std::to_string(pr[0]) + "a" + std::to_string(pr[1]) + isa;
      std::printf(
          "%s%.2f", &pr == &pairs[0] ? "" : ", ",
          model.predict_forced(s, bs).latency_ms / model.predict_forced(s, int8).latency_ms);
    }
    std::printf("}},\n");
  }
  for (const auto& pr : pairs) {
    RuleRows rows;
    for (auto s : base) {
      if (s.in_c < 8) continue;  // the stem stays 8-bit in every search space
      s.w_bits = pr[0], s.a_bits = pr[1];
      const std::string bs =
          "conv_bitserial_w" + std::to_string(pr[0]) + "a" + std::to_string(pr[1]) + isa;
      rows.push_back(
          {s, model.predict_forced(s, bs).latency_ms / model.predict_forced(s, int8).latency_ms});
    }
    print_best_rule(model.spec().core, "w" + std::to_string(pr[0]) + "a" + std::to_string(pr[1]),
                    rows, "in_c", in_c_of);
  }
  if (!dot) derive_tbl_rule(model, base, names);
}

// Cores without sdot: the 2-bit table-lookup row over the int8 kernel on W2A8 codes, per conv, and
// the single rule "K >= min_k and out_c >= min_out_c" that picks the most layers while every layer
// it picks is predicted <= kRuleMaxRatio of int8 (a table of 16 channels' lookups per pixel and
// group is built once and read by every panel, so narrow layers pay it with few panels).
void derive_tbl_rule(eval::DeviceModel& model, const std::vector<eval::LayerSignature>& base,
                     const std::vector<std::string>& names) {
  const std::string tbl = "conv_qu8_tbl_w2_1x16__neon", int8 = "conv_qu8_gemm_8x8__neon";
  RuleRows rows;
  for (size_t i = 0; i < base.size(); ++i) {
    auto s = base[i];
    if (s.in_c < 8) continue;  // the stem stays 8-bit in every search space
    s.w_bits = 2, s.a_bits = 8;
    const double r =
        model.predict_forced(s, tbl).latency_ms / model.predict_forced(s, int8).latency_ms;
    rows.push_back({s, r});
    std::printf("TABLE-TBL {\"%s\", %d, %d, %d, %d, %d, %.2f},\n", names[i].c_str(), s.in_h, s.in_c,
                s.out_c, s.kernel, s.stride, r);
  }
  print_best_rule(model.spec().core, "tbl_w2", rows, "out_c", out_c_of);
}

// CPU seconds of this process and its finished children (compiler, llvm-mca, the pick helper):
// what the table costs the machine, whatever else shares it.
double cpu_s() {
  double s = 0;
  for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    rusage u;
    getrusage(who, &u);
    s += u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
  }
  return s;
}

// The 1-minute load average, printed beside wall times on a shared machine.
double load_average() {
  double l[1] = {-1};
  getloadavg(l, 1);
  return l[0];
}

double wall_s() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// 1000 distinct signatures of the kind a search space lists (sizes, channels, kernels, strides,
// activations, bits), predicted with an empty cache (compiler, llvm-mca and the pick helper run)
// and again from the cache.
void table_timing(const std::string& device_yaml) {
  std::vector<eval::LayerSignature> sigs;
  const int hws[] = {10, 20, 40, 80}, chans[] = {16, 32, 64, 128, 256};
  const char* acts[] = {"silu", "relu", "hardswish"};
  const int bits[] = {1, 2, 4, 8};
  for (int hw : hws)
    for (int ci : chans)
      for (int k : {1, 3})
        for (const char* act : acts)
          for (int wb : bits)
            for (int ab : bits) {
              if (sigs.size() == 1000) break;
              eval::LayerSignature s;
              s.in_h = s.in_w = hw, s.in_c = ci, s.out_c = ci, s.kernel = k, s.act = act;
              s.w_bits = wb, s.a_bits = ab;
              sigs.push_back(s);
            }
  const std::string cache = "/tmp/mixnas-bench-devicemodel-cache";
  std::filesystem::remove_all(cache);
  eval::DeviceModel::Options opt;
  opt.cache_dir = cache;
  double t0 = wall_s();
  const double c0 = cpu_s();
  auto cold = eval::DeviceModel::load(device_yaml, opt).predict_table(sigs);
  const double cold_s = wall_s() - t0, cold_cpu_s = cpu_s() - c0;
  t0 = wall_s();
  auto warm = eval::DeviceModel::load(device_yaml, opt).predict_table(sigs);
  const double warm_s = wall_s() - t0;
  // 1000 signatures not seen yet (other output widths): kernel figures cached, picks not.
  for (auto& s : sigs) s.out_c = s.in_c * 2;
  t0 = wall_s();
  eval::DeviceModel::load(device_yaml, opt).predict_table(sigs);
  const double new_s = wall_s() - t0;
  std::printf(
      "TABLE-TIMING %s signatures=%zu entries=%zu jobs=%d cold_s=%.1f cold_cpu_s=%.1f "
      "new_signatures_s=%.1f cached_s=%.2f load=%.1f\n",
      device_yaml.c_str(), sigs.size(), warm.size(), opt.jobs, cold_s, cold_cpu_s, new_s, warm_s,
      load_average());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--table-timing") {
    try {
      table_timing(argv[2]);
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "mixnas-bench-devicemodel: %s\n", e.what());
      return 1;
    }
  }
  if (argc == 3 && std::string(argv[1]) == "--rules") {
    try {
      eval::DeviceModel::Options opt;
      opt.cache_dir = std::string(MIXNAS_SOURCE_DIR) + "/.cache/devicemodel";
      derive_rules(argv[2], opt);
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "mixnas-bench-devicemodel: %s\n", e.what());
      return 1;
    }
  }
  // The AVX2 rows: LLVM has no Zen model with AVX-512 timings it could be checked against.
  setenv("MIXNAS_CPU_DISABLE", "avx512f,avx512bw,avx512vl,avx512vnni,avx512vpopcntdq,avx512vbmi",
         1);
  try {
    const std::string root = MIXNAS_SOURCE_DIR;
    eval::DeviceModel::Options opt;
    opt.cache_dir = root + "/.cache/devicemodel";
    auto x86 = eval::DeviceModel::load(root + "/configs/devices/x86-znver3-model.yaml", opt);
    std::vector<devmodel::FitSample> samples;
    std::vector<double> raw_ms;  // the YAML's coefficients
    std::vector<size_t> model_end;
    std::vector<double> whole_ms;
    for (int bits : {8, 4}) {
      const rt::Graph g = yolo(bits);
      const auto sigs = eval::conv_signatures(g);
      const auto pred = x86.predict_layers(sigs);
      for (size_t i = 0; i < sigs.size(); ++i) {
        auto shape = sigs[i];
        shape.w_bits = shape.a_bits = 8;
        samples.push_back({pred[i].micro_ms, pred[i].pass_ms,
                           run_ms(eval::build_layer_graph(sigs[i])), shape.key()});
        raw_ms.push_back(pred[i].latency_ms);
        std::printf("%-40s %-34s model=%8.4f measured=%8.4f\n", sigs[i].key().c_str(),
                    pred[i].kernel.c_str(), pred[i].latency_ms, samples.back().measured_ms);
      }
      model_end.push_back(samples.size());
      whole_ms.push_back(run_ms(g));
    }
    const devmodel::FitResult fit = devmodel::fit_with_held_out(samples);
    double raw_err = 0;
    for (size_t i = 0; i < samples.size(); ++i)
      raw_err += std::fabs(raw_ms[i] - samples[i].measured_ms) / samples[i].measured_ms * 100;
    // Whole models as the latency table predicts them: the sum of the layers, then the table's
    // calibration (LatencyTable::calibrate) made on the other model's whole measurement only.
    std::vector<double> sums;
    for (size_t m = 0, begin = 0; m < model_end.size(); begin = model_end[m++]) {
      sums.push_back(0);
      for (size_t i = begin; i < model_end[m]; ++i) sums.back() += fit.held_out_ms[i];
    }
    double model_err = 0;
    for (size_t m = 0; m < sums.size(); ++m) {
      eval::LatencyTable other;
      other.calibrate({{sums[1 - m], whole_ms[1 - m]}});
      const auto& cal = other.calibration();
      const double predicted = cal.scale * sums[m] + cal.offset_ms;
      const double err = std::fabs(predicted - whole_ms[m]) / whole_ms[m] * 100;
      std::printf(
          "MODEL yolov8n-320 w%da%d layer_sum=%.3f (err %.1f%%) calibrated_on_other=%.3f "
          "measured=%.3f err=%.1f%%\n",
          m == 0 ? 8 : 4, m == 0 ? 8 : 4, sums[m],
          std::fabs(sums[m] - whole_ms[m]) / whole_ms[m] * 100, predicted, whole_ms[m], err);
      model_err += err;
    }
    const auto& c = fit.coefficients;
    std::printf(
        "DEVICEMODEL-FIT micro_scale=%.3f pass_scale=%.3f layer_overhead_us=%.1f layers=%d "
        "shapes=%d fit_mape=%.1f held_out_mape=%.1f yaml_coefficients_mape=%.1f\n",
        c.micro_scale, c.pass_scale, c.layer_overhead_us, fit.n, fit.groups, fit.fit_mape_pct,
        fit.held_out_mape_pct, raw_err / samples.size());
    auto a72 = eval::DeviceModel::load(root + "/configs/devices/rpi4-model.yaml", opt);
    // The same convs at int8 and at W2A2 / W1A1 (the stem and the head's last 1x1 convs stay
    // 8-bit in frame_graphs.h): int8 time over low-bit time per low-bit conv.
    const auto base = eval::conv_signatures(yolo(8));
    std::vector<double> r22, r11;
    for (int bits : {2, 1}) {
      const auto low = eval::conv_signatures(yolo(bits));
      const auto p8 = a72.predict_layers(base), pl = a72.predict_layers(low);
      for (size_t i = 0; i < base.size(); ++i) {
        if (low[i].w_bits == 8) continue;
        (bits == 2 ? r22 : r11).push_back(p8[i].latency_ms / pl[i].latency_ms);
        std::printf("A72 %-40s int8=%8.4f %8.4f %s\n", low[i].key().c_str(), p8[i].latency_ms,
                    pl[i].latency_ms, pl[i].kernel.c_str());
      }
    }
    std::printf(
        "DEVICEMODEL x86_layer_mape=%.1f x86_model_mape=%.1f a72_w2a2_vs_int8=%.2f "
        "a72_w1a1_vs_int8=%.2f\n",
        fit.held_out_mape_pct, model_err / whole_ms.size(), geomean(r22), geomean(r11));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mixnas-bench-devicemodel: %s\n", e.what());
    return 1;
  }
  return 0;
}
