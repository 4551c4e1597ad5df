// Conv kernels: every row of the kernel tables that this CPU runs, against the scalar reference,
// over one shape list (partial tiles, odd channels, kernels 1/3/5/6, strides, padding, dilation,
// depthwise, 1x1 up to 160x160, a 3x3x1024 reduction), with every activation, residuals, several
// sinks, row strides larger than the channel count, and 1 vs 2 threads. Integer kernels must match
// bit for bit. Run with MIXNAS_CPU_DISABLE variants by ctest (tests/runtime/CMakeLists.txt).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "deploy/runtime/codes.h"
#include "deploy/runtime/cpu_features.h"
#include "deploy/runtime/kernels/conv.h"

using namespace mixnas::rt;

namespace {

struct Shape {
  int in_h, in_w, in_c, out_c, kh, kw, stride, pt, pl, pb, pr, dil, groups;
};

ConvGeometry geometry(const Shape& s) {
  ConvGeometry g;
  g.in_h = s.in_h, g.in_w = s.in_w, g.in_c = s.in_c, g.out_c = s.out_c;
  g.kernel_h = s.kh, g.kernel_w = s.kw, g.stride_h = g.stride_w = s.stride;
  g.pad_top = s.pt, g.pad_left = s.pl, g.pad_bottom = s.pb, g.pad_right = s.pr;
  g.dilation_h = g.dilation_w = s.dil;
  g.groups = s.groups;
  return g;
}

// The one shape list of the conv families.
const Shape kShapes[] = {
    {8, 8, 16, 16, 1, 1, 1, 0, 0, 0, 0, 1, 1},      // 1x1, tile-aligned (direct A rows)
    {8, 8, 3, 16, 3, 3, 2, 1, 1, 1, 1, 1, 1},       // stem: 3 channels, stride 2
    {7, 9, 5, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1},        // odd everything
    {10, 10, 17, 33, 5, 5, 1, 2, 2, 2, 2, 1, 1},    // kernel 5, channels past a tile
    {12, 12, 8, 19, 6, 6, 2, 2, 2, 2, 2, 1, 1},     // kernel 6 stride 2 (YOLOv5 stem)
    {9, 9, 13, 37, 1, 1, 2, 0, 0, 0, 0, 1, 1},      // 1x1 stride 2
    {11, 10, 12, 20, 3, 3, 2, 1, 1, 0, 0, 1, 1},    // asymmetric padding
    {9, 9, 6, 10, 3, 3, 1, 2, 2, 2, 2, 2, 1},       // dilation 2
    {20, 20, 32, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1},    //
    {40, 40, 64, 64, 1, 1, 1, 0, 0, 0, 0, 1, 1},    // 1x1 40x40
    {160, 160, 16, 16, 1, 1, 1, 0, 0, 0, 0, 1, 1},  // 1x1 160x160
    {5, 4, 1024, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1},    // deep reduction K = 9216
    {10, 10, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 32},   // depthwise
    {9, 9, 19, 19, 5, 5, 2, 2, 2, 2, 2, 1, 19},     // depthwise, odd channels, stride 2
    {8, 8, 7, 7, 3, 3, 1, 2, 2, 2, 2, 2, 7},        // depthwise, dilation 2
    {8, 8, 8, 12, 3, 3, 1, 1, 1, 1, 1, 1, 2},       // grouped (reference only)
    // im2col's short-run moves across block boundaries and up to the input's last byte:
    {41, 37, 3, 16, 3, 3, 2, 1, 1, 1, 1, 1, 1},  // stem, 399 pixels (several blocks)
    {30, 29, 3, 8, 5, 5, 1, 2, 2, 2, 2, 1, 1},   // 15-byte runs, 870 pixels
    {26, 26, 4, 8, 3, 3, 1, 0, 0, 0, 0, 1, 1},   // no padding: runs end at the input's end
};

const Activation kActs[] = {
    Activation::kSilu,      Activation::kIdentity,  Activation::kRelu,        Activation::kRelu6,
    Activation::kLeakyRelu, Activation::kHardswish, Activation::kHardsigmoid, Activation::kGeluErf,
    Activation::kGeluTanh,  Activation::kMish,      Activation::kSigmoid,     Activation::kTanh};

ConvWeights random_weights(const ConvGeometry& g, ConvPrecision prec, int w_bits, int a_bits,
                           std::mt19937& rng) {
  ConvWeights w;
  w.geometry = g;
  w.precision = prec;
  w.w_bits = w_bits;
  w.a_bits = a_bits;
  const size_t count = static_cast<size_t>(g.out_c) * g.reduction();
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const float fan = 1.0f / std::sqrt(static_cast<float>(g.reduction()));
  if (prec == ConvPrecision::kF32) {
    for (size_t i = 0; i < count; ++i) w.weights_f32.push_back(u(rng) * 1.7f * fan);
  } else {
    const int lo = w_bits == 1 ? -1 : -(1 << (w_bits - 1)), hi = w_bits == 1 ? 1 : -lo - 1;
    std::uniform_int_distribution<int> q(lo, hi);
    for (size_t i = 0; i < count; ++i) {
      int v = q(rng);
      if (w_bits == 1 && v == 0) v = 1;
      w.weight_codes.push_back(static_cast<int8_t>(v));
    }
    for (int c = 0; c < g.out_c; ++c)
      w.weight_scale.push_back((0.5f + 0.5f * std::fabs(u(rng))) * 3.0f * fan / (hi + 1));
    w.input_scale = 4.0f / ((1 << a_bits) - 1);
    w.input_zero_point = std::uniform_int_distribution<int>(0, (1 << a_bits) - 1)(rng);
  }
  if (g.out_c % 3 != 0)
    for (int c = 0; c < g.out_c; ++c) w.bias.push_back(u(rng));
  return w;
}

struct Buffers {
  std::vector<float> in_f32;
  std::vector<uint8_t> in_codes;
  std::vector<float> residual;
  int in_stride = 0;
};

struct Outputs {
  std::vector<float> f32;
  std::vector<uint8_t> codes;
};

// The thread count compared against one thread: 2, or MIXNAS_TEST_THREADS (e.g. 1 where an
// emulator cannot start threads).
int test_threads() {
  const char* env = std::getenv("MIXNAS_TEST_THREADS");
  return env && std::atoi(env) > 0 ? std::atoi(env) : 2;
}

constexpr float kF32Sentinel = -12345.5f;
constexpr uint8_t kCodeSentinel = 0xA5;

Outputs run_plan(const ConvPlan& plan, const Buffers& b, const ConvEpilogue& templ, int pixels,
                 int threads) {
  Outputs out;
  ConvEpilogue ep = templ;
  const ConvSink& fs = ep.sinks[0];
  const ConvSink& cs = ep.sinks[1];
  out.f32.assign(static_cast<size_t>(pixels) * fs.row_stride, kF32Sentinel);
  out.codes.assign(static_cast<size_t>(pixels) * cs.row_stride, kCodeSentinel);
  ep.sinks[0].data = out.f32.data();
  ep.sinks[1].data = out.codes.data();
  ConvInputView in;
  in.f32 = b.in_f32.empty() ? nullptr : b.in_f32.data();
  in.codes = b.in_codes.empty() ? nullptr : b.in_codes.data();
  in.row_stride = b.in_stride;
  plan.run(in, ep, threads);
  return out;
}

// Channels outside [offset, offset + out_c) of every pixel keep the sentinel.
void check_untouched(const Outputs& o, const ConvEpilogue& ep, int out_c, int pixels) {
  for (int p = 0; p < pixels; ++p) {
    for (int c = 0; c < ep.sinks[0].row_stride; ++c) {
      if (c >= ep.sinks[0].channel_offset && c < ep.sinks[0].channel_offset + out_c) continue;
      REQUIRE(o.f32[static_cast<size_t>(p) * ep.sinks[0].row_stride + c] == kF32Sentinel);
    }
    for (int c = 0; c < ep.sinks[1].row_stride; ++c) {
      if (c >= ep.sinks[1].channel_offset && c < ep.sinks[1].channel_offset + out_c) continue;
      REQUIRE(o.codes[static_cast<size_t>(p) * ep.sinks[1].row_stride + c] == kCodeSentinel);
    }
  }
}

// The table-lookup row of 2-bit weights (aarch64) and the bound of its 16-bit sums.
constexpr int kTblMaxGroups = 1092;
bool is_tbl_row(const ConvKernelInfo& k) {
  return k.name.find("_tbl_") != std::string::npos;
}
int tbl_groups(const ConvGeometry& g) {
  return (g.reduction() + 3) / 4;
}

bool row_family_fits(const ConvKernelInfo& k, const ConvWeights& w) {
  const bool dw = w.geometry.is_depthwise();
  if ((k.family == "depthwise") != dw) return false;
  if (!dw && w.geometry.groups != 1) return false;
  if (k.precision != w.precision) return false;
  if (w.precision == ConvPrecision::kInt && (w.w_bits < k.min_w_bits || w.w_bits > k.max_w_bits ||
                                             w.a_bits < k.min_a_bits || w.a_bits > k.max_a_bits))
    return false;
  return true;
}

void check_all_kernels_on(const Shape& s, int index, ConvPrecision prec, int w_bits, int a_bits) {
  std::mt19937 rng(1234 + index * 17 + w_bits * 3 + a_bits);
  const ConvGeometry g = geometry(s);
  const ConvWeights w = random_weights(g, prec, w_bits, a_bits, rng);
  const int pixels = g.out_h() * g.out_w();
  Buffers b;
  b.in_stride = g.in_c + (index % 2 ? 3 : 0);
  const size_t in_size = static_cast<size_t>(g.in_h) * g.in_w * b.in_stride;
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  if (prec == ConvPrecision::kF32) {
    for (size_t i = 0; i < in_size; ++i) b.in_f32.push_back(u(rng));
  } else {
    std::uniform_int_distribution<int> q(0, (1 << a_bits) - 1);
    for (size_t i = 0; i < in_size; ++i) b.in_codes.push_back(static_cast<uint8_t>(q(rng)));
  }
  ConvEpilogue ep;
  ep.act = {kActs[index % 12], 0.1f};
  if (index % 3 == 1) {
    ep.residual_row_stride = g.out_c + 2;
    for (size_t i = 0; i < static_cast<size_t>(pixels) * ep.residual_row_stride; ++i)
      b.residual.push_back(u(rng));
    ep.residual = b.residual.data();
  }
  ConvSink fs;
  fs.kind = ConvSink::kF32;
  fs.row_stride = g.out_c + 5;
  fs.channel_offset = 2;
  ConvSink cs;
  cs.kind = ConvSink::kCodes;
  cs.row_stride = g.out_c + 3;
  cs.channel_offset = 1;
  cs.bits = index % 2 ? 8 : 4;
  cs.scale = 6.0f / ((1 << cs.bits) - 1);
  cs.zero_point = (1 << cs.bits) / 3;
  ep.sinks = {fs, cs};

  auto ref_plan = make_conv_plan_reference(w);
  const Outputs ref = run_plan(*ref_plan, b, ep, pixels, 1);
  check_untouched(ref, ep, g.out_c, pixels);

  int kernels_run = 0;
  for (const ConvKernelInfo& k : conv_kernel_table(cpu_features())) {
    if (!k.available || !row_family_fits(k, w)) continue;
    if (is_tbl_row(k) && tbl_groups(g) > kTblMaxGroups) {  // too deep for its 16-bit sums
      CHECK_THROWS_WITH(make_conv_plan_named(w, k.name),
                        Catch::Matchers::Contains("deeper than 4368"));
      continue;
    }
    ++kernels_run;
    auto plan = make_conv_plan_named(w, k.name);
    INFO("shape #" << index << " kernel " << k.name << " w_bits " << w_bits << " a_bits " << a_bits
                   << " act " << activation_name(ep.act.kind));
    REQUIRE(std::string(plan->kernel_name()) == k.name);
    CHECK(plan->packed_weight_bytes() > 0);
    const Outputs one = run_plan(*plan, b, ep, pixels, 1);
    const Outputs two = run_plan(*plan, b, ep, pixels, test_threads());
    CHECK(std::memcmp(one.f32.data(), two.f32.data(), one.f32.size() * 4) == 0);
    CHECK(one.codes == two.codes);
    check_untouched(one, ep, g.out_c, pixels);
    if (prec == ConvPrecision::kInt) {
      CHECK(std::memcmp(one.f32.data(), ref.f32.data(), one.f32.size() * 4) == 0);
      CHECK(one.codes == ref.codes);
    } else {
      size_t code_diffs = 0;
      for (size_t i = 0; i < one.f32.size(); ++i) {
        const float tol = 1e-4f * (1.0f + std::fabs(ref.f32[i]));
        if (!(std::fabs(one.f32[i] - ref.f32[i]) <= tol)) {
          FAIL("f32 output " << i << ": " << one.f32[i] << " vs reference " << ref.f32[i]);
        }
      }
      for (size_t i = 0; i < one.codes.size(); ++i) {
        const int d = std::abs(int(one.codes[i]) - int(ref.codes[i]));
        REQUIRE(d <= 1);
        code_diffs += d;
      }
      CHECK(code_diffs * 1000 <= one.codes.size());  // one code apart on <= 0.1% of outputs
    }
  }
  // The automatic choice runs a kernel (not the reference) whenever a row fits.
  auto chosen = make_conv_plan(w);
  if (kernels_run > 0)
    CHECK(std::string(chosen->kernel_name()).find("reference") == std::string::npos);
}

}  // namespace

TEST_CASE("every available conv kernel matches the reference over the shape list", "[conv]") {
  for (const CpuFeatures* f : {&cpu_features()}) {
    for (const auto& line : conv_kernel_names_for(*f)) INFO(line);
  }
  int index = 0;
  for (const Shape& s : kShapes) {
    check_all_kernels_on(s, index, ConvPrecision::kF32, 0, 8);
    check_all_kernels_on(s, index, ConvPrecision::kInt, 8, 8);
    ++index;
  }
}

TEST_CASE("integer kernels take any w_bits / a_bits of 1..8", "[conv]") {
  const int indices[] = {1, 3, 12};
  for (int i : indices) {
    check_all_kernels_on(kShapes[i], i, ConvPrecision::kInt, 1, 8);
    check_all_kernels_on(kShapes[i], i, ConvPrecision::kInt, 4, 4);
    check_all_kernels_on(kShapes[i], i, ConvPrecision::kInt, 2, 2);
  }
}

// Codes of 1..4 bits are held packed by the GEMM and depthwise rows (conv_wpack.h) and unpacked
// per block; 5 bits are held as bytes (GEMM) or int8 (depthwise), 8 bits by the first case.
TEST_CASE("integer kernels stay exact with packed weight storage over the shape list", "[conv]") {
  int index = 0;
  for (const Shape& s : kShapes) {
    for (int w_bits : {1, 2, 3, 4, 5})
      check_all_kernels_on(s, index, ConvPrecision::kInt, w_bits, w_bits == 5 ? 8 : w_bits);
    ++index;
  }
}

TEST_CASE("reference conv follows the numerics.md formulas (worked example)", "[conv]") {
  // 2x2 input, 1 channel, 2 output channels, 2x2 kernel with padding 1 on the bottom/right:
  // outputs 2x2; pixel (1,1) sees only input (1,1) plus three padding pixels (= z_a).
  ConvWeights w;
  w.geometry.in_h = w.geometry.in_w = 2;
  w.geometry.in_c = 1;
  w.geometry.out_c = 2;
  w.geometry.kernel_h = w.geometry.kernel_w = 2;
  w.geometry.pad_bottom = w.geometry.pad_right = 1;
  w.precision = ConvPrecision::kInt;
  w.weight_codes = {1, 2, 3, 4, -128, 127, -1, 0};  // OIHW
  w.weight_scale = {0.5f, 0.25f};
  w.bias = {0.0f, -1.0f};
  w.input_scale = 0.5f;
  w.input_zero_point = 10;
  const std::vector<uint8_t> codes = {10, 12, 14, 255};  // values (q - 10) * 0.5: 0, 1, 2, 122.5
  // acc[0] at (0,0) = 1*0 + 2*2 + 3*4 + 4*245 = 996; y = 0.25 * 996 = 249 (relu keeps it).
  // acc[1] at (0,0) = -128*0 + 127*2 - 1*4 + 0 = 250; y = 0.125 * 250 - 1 = 30.25.
  // acc[0] at (1,1) = 1 * 245 = 245; y = 61.25. acc[1] at (1,1) = -128 * 245 = -31360;
  // y = -3921 -> relu 0.
  std::vector<float> out(8, -1.0f);
  std::vector<uint8_t> q(8, 0);
  ConvEpilogue ep;
  ep.act = {Activation::kRelu, 0.1f};
  ConvSink fs;
  fs.data = out.data();
  fs.row_stride = 2;
  ConvSink cs;
  cs.kind = ConvSink::kCodes;
  cs.data = q.data();
  cs.row_stride = 2;
  cs.scale = 0.5f;
  cs.zero_point = 3;
  ep.sinks = {fs, cs};
  ConvInputView in;
  in.codes = codes.data();
  in.row_stride = 1;
  for (auto* plan : {make_conv_plan_reference(w).release(), make_conv_plan(w).release()}) {
    std::unique_ptr<ConvPlan> owned(plan);
    INFO(plan->kernel_name());
    plan->run(in, ep, 1);
    CHECK(out[0] == 249.0f);
    CHECK(out[1] == 30.25f);
    CHECK(out[6] == 61.25f);
    CHECK(out[7] == 0.0f);
    CHECK(q[0] == 255);  // 249 / 0.5 + 3 clamps
    CHECK(q[1] == 63);   // 30.25 / 0.5 = 60.5 rounds half to even: 60, + zero point 3
    CHECK(q[7] == 3);    // zero -> zero point
  }
}

TEST_CASE("deepest reduction allowed stays exact in int32; deeper is rejected", "[conv]") {
  // K = 3 * 3 * 7296 = 65664 <= 65792: weights -128, codes 255, z = 0 gives
  // acc = -65664 * 128 * 255 = -2143272960, within int32.
  ConvWeights w;
  w.geometry.in_h = w.geometry.in_w = 3;
  w.geometry.in_c = 7296;
  w.geometry.out_c = 3;
  w.geometry.kernel_h = w.geometry.kernel_w = 3;
  w.precision = ConvPrecision::kInt;
  w.weight_codes.assign(static_cast<size_t>(3) * 9 * 7296, -128);
  for (size_t i = 0; i < w.weight_codes.size() / 3; ++i) w.weight_codes[i] = 127;  // channel 0
  w.weight_scale = {1.0f, 1.0f, 1.0f};
  w.input_scale = 1.0f;
  std::vector<uint8_t> codes(9 * 7296, 255);
  std::vector<float> out(3);
  std::vector<uint8_t> q(3);
  ConvEpilogue ep;
  ConvSink fs;
  fs.data = out.data();
  fs.row_stride = 3;
  ConvSink cs;
  cs.kind = ConvSink::kCodes;
  cs.data = q.data();
  cs.row_stride = 3;
  ep.sinks = {fs, cs};
  ConvInputView in;
  in.codes = codes.data();
  in.row_stride = 7296;
  for (const ConvKernelInfo& k : conv_kernel_table()) {
    if (!k.available || k.family != "gemm" || k.precision != ConvPrecision::kInt ||
        k.max_w_bits < 8)
      continue;
    INFO(k.name);
    make_conv_plan_named(w, k.name)->run(in, ep, test_threads());
    CHECK(out[0] == static_cast<float>(65664LL * 127 * 255));
    CHECK(out[1] == static_cast<float>(-2143272960LL));
    CHECK(q[0] == 255);
    CHECK(q[1] == 0);
  }
  make_conv_plan_reference(w)->run(in, ep, 1);
  CHECK(out[1] == static_cast<float>(-2143272960LL));

  w.geometry.in_c = 7320;  // K = 65880 > 65792
  w.weight_codes.assign(static_cast<size_t>(3) * 9 * 7320, 1);
  CHECK_THROWS_AS(make_conv_plan(w), mixnas::Error);
}

// The table-lookup row's sums at their bound: K = 4368 (1092 groups of 4, 60 per group in the
// 16-bit sums), every code 255 and the weights at both ends of the 2-bit range.
TEST_CASE("the 2-bit table-lookup row is exact at its deepest reduction", "[conv]") {
  int rows_checked = 0;
  for (const ConvKernelInfo& k : conv_kernel_table()) {
    if (!k.available || !is_tbl_row(k)) continue;
    ++rows_checked;
    for (int in_c : {4368, 4369}) {  // 1x1: K = in_c
      ConvWeights w;
      w.geometry.in_h = w.geometry.in_w = 2;
      w.geometry.in_c = in_c;
      w.geometry.out_c = 17;
      w.precision = ConvPrecision::kInt;
      w.w_bits = 2;
      const size_t per_channel = in_c;
      w.weight_codes.assign(17 * per_channel, -2);
      for (size_t i = 0; i < per_channel; ++i) w.weight_codes[i] = 1;  // channel 0: +1
      for (size_t i = 0; i < per_channel; ++i) w.weight_codes[2 * per_channel + i] = i % 4 - 2;
      w.weight_scale.assign(17, 1.0f);
      w.input_scale = 1.0f;
      std::vector<uint8_t> codes(4 * per_channel, 255);
      std::vector<float> out(4 * 17), ref(4 * 17);
      ConvEpilogue ep;
      ConvSink fs;
      fs.data = out.data();
      fs.row_stride = 17;
      ep.sinks = {fs};
      ConvInputView in;
      in.codes = codes.data();
      in.row_stride = in_c;
      INFO(k.name << " in_c " << in_c);
      if (tbl_groups(w.geometry) > kTblMaxGroups) {
        CHECK_THROWS_WITH(make_conv_plan_named(w, k.name),
                          Catch::Matchers::Contains("deeper than 4368"));
        continue;
      }
      make_conv_plan_named(w, k.name)->run(in, ep, test_threads());
      ConvEpilogue rep = ep;
      rep.sinks[0].data = ref.data();
      make_conv_plan_reference(w)->run(in, rep, 1);
      CHECK(out == ref);
      CHECK(out[0] == static_cast<float>(255 * static_cast<int64_t>(per_channel)));
      CHECK(out[1] == static_cast<float>(-2 * 255 * static_cast<int64_t>(per_channel)));
    }
  }
#if defined(__aarch64__)
  CHECK(rows_checked == 1);  // the row exists on every aarch64 CPU
#else
  CHECK(rows_checked == 0);
#endif
}

TEST_CASE("masked CPU features pick the fallback rows", "[conv]") {
  const CpuFeatures full = cpu_features();
  ConvWeights w;
  w.geometry.in_h = w.geometry.in_w = 6;
  w.geometry.in_c = 8;
  w.geometry.out_c = 8;
  w.precision = ConvPrecision::kInt;
  w.weight_codes.assign(64, 1);
  w.weight_scale.assign(8, 1.0f);
  CpuFeatures none = full;
  none.avx2 = none.fma = none.avx512f = none.avx512bw = none.avx512vl = none.avx512vnni = false;
  none.neon = none.dotprod = false;
  CHECK(std::string(make_conv_plan(w, none)->kernel_name()) == "conv_qu8_reference");
#if defined(__x86_64__)
  if (full.avx2) {
    CpuFeatures avx2 = full;
    avx2.avx512f = avx2.avx512vnni = false;
    CHECK(std::string(make_conv_plan(w, avx2)->kernel_name()) == "conv_qu8_gemm_6x16c2__avx2");
  }
  if (full.avx512vnni)
    CHECK(std::string(make_conv_plan(w, full)->kernel_name()) ==
          "conv_qu8_gemm_8x32c4__avx512vnni");
  w.precision = ConvPrecision::kF32;
  w.weights_f32.assign(64, 0.5f);
  CHECK(std::string(make_conv_plan(w, none)->kernel_name()) == "conv_f32_gemm_4x8__sse2");
#endif
  const auto lines = conv_kernel_names_for(full);
  REQUIRE(lines.size() >= 4);  // 4 family/precision lines, then the low-bit lines
  CHECK(lines[0].rfind("gemm/fp32: conv_f32_", 0) == 0);
}

TEST_CASE("bad weights and run arguments throw mixnas::Error", "[conv]") {
  ConvWeights good;
  good.geometry.in_h = good.geometry.in_w = 4;
  good.geometry.in_c = 2;
  good.geometry.out_c = 2;
  good.geometry.kernel_h = good.geometry.kernel_w = 3;
  good.geometry.pad_top = good.geometry.pad_left = good.geometry.pad_bottom =
      good.geometry.pad_right = 1;
  good.precision = ConvPrecision::kInt;
  good.w_bits = 4;
  good.weight_codes.assign(36, 3);
  good.weight_scale = {0.1f, 0.2f};
  REQUIRE_NOTHROW(make_conv_plan(good));

  auto expect_error = [](ConvWeights w, const char* needle) {
    try {
      make_conv_plan(w);
      FAIL("no error for " << needle);
    } catch (const mixnas::Error& e) {
      CHECK_THAT(e.what(), Catch::Contains(needle));
    }
  };
  ConvWeights w = good;
  w.weight_codes[5] = 8;  // 4-bit codes are -8..7
  expect_error(w, "outside the 4-bit range");
  w = good;
  w.w_bits = 1;
  w.weight_codes.assign(36, 1);
  w.weight_codes[0] = 0;
  expect_error(w, "1-bit codes are -1 or +1");
  w = good;
  w.weight_codes.pop_back();
  expect_error(w, "weight_codes has 35");
  w = good;
  w.weight_scale.pop_back();
  expect_error(w, "weight_scale");
  w = good;
  w.geometry.groups = 3;
  expect_error(w, "groups");
  w = good;
  w.geometry.stride_h = 0;
  expect_error(w, "stride");
  w = good;
  w.geometry.pad_top = w.geometry.pad_bottom = 0;
  w.geometry.in_h = 2;
  expect_error(w, "larger than the padded input");
  w = good;
  w.input_zero_point = 256;
  expect_error(w, "input_zero_point");
  w = good;
  w.bias = {1.0f};
  expect_error(w, "bias has 1");
  w = good;
  w.precision = ConvPrecision::kF32;
  expect_error(w, "weights_f32 has 0");

  auto plan = make_conv_plan(good);
  std::vector<uint8_t> codes(4 * 4 * 2, 0);
  std::vector<float> out(4 * 4 * 2);
  ConvInputView in;
  in.codes = codes.data();
  in.row_stride = 2;
  ConvEpilogue ep;
  ConvSink fs;
  fs.data = out.data();
  fs.row_stride = 2;
  ep.sinks = {fs};
  REQUIRE_NOTHROW(plan->run(in, ep, 1));
  ConvInputView bad = in;
  bad.row_stride = 1;
  CHECK_THROWS_AS(plan->run(bad, ep, 1), mixnas::Error);
  bad = in;
  bad.codes = nullptr;
  CHECK_THROWS_AS(plan->run(bad, ep, 1), mixnas::Error);
  ConvEpilogue e2 = ep;
  e2.sinks.clear();
  CHECK_THROWS_AS(plan->run(in, e2, 1), mixnas::Error);
  e2 = ep;
  e2.sinks[0].channel_offset = 1;
  CHECK_THROWS_AS(plan->run(in, e2, 1), mixnas::Error);
  e2 = ep;
  e2.sinks[0].kind = ConvSink::kCodes;
  e2.sinks[0].bits = 9;
  CHECK_THROWS_AS(plan->run(in, e2, 1), mixnas::Error);
  e2 = ep;
  e2.residual = out.data();
  e2.residual_row_stride = 1;
  CHECK_THROWS_AS(plan->run(in, e2, 1), mixnas::Error);
  CHECK_THROWS_AS(make_conv_plan_named(good, "conv_nonexistent"), mixnas::Error);
}

TEST_CASE("plans follow the input when its address or row stride changes", "[conv]") {
  // The indirect kernels cache per-tap input pointers; moving the input must not reuse them.
  std::mt19937 rng(99);
  ConvGeometry g = geometry(kShapes[8]);  // 20x20x32 -> 40, 3x3, padding 1
  for (ConvPrecision prec : {ConvPrecision::kF32, ConvPrecision::kInt}) {
    const ConvWeights w = random_weights(g, prec, 8, 8, rng);
    auto plan = make_conv_plan(w);
    auto ref = make_conv_plan_reference(w);
    const int pixels = g.out_h() * g.out_w();
    ConvEpilogue ep;
    ConvSink fs;
    fs.row_stride = g.out_c;
    ep.sinks = {fs};
    for (int stride : {32, 32, 40, 32}) {
      std::vector<float> xf(static_cast<size_t>(g.in_h) * g.in_w * stride);
      std::vector<uint8_t> xq(xf.size());
      for (size_t i = 0; i < xf.size(); ++i) {
        xf[i] = std::uniform_real_distribution<float>(-1, 1)(rng);
        xq[i] = static_cast<uint8_t>(rng() & 255);
      }
      ConvInputView in;
      in.f32 = xf.data();
      in.codes = xq.data();
      in.row_stride = stride;
      std::vector<float> got(static_cast<size_t>(pixels) * g.out_c), want(got.size());
      ep.sinks[0].data = got.data();
      plan->run(in, ep, test_threads());
      ep.sinks[0].data = want.data();
      ref->run(in, ep, 1);
      INFO(plan->kernel_name() << " stride " << stride);
      for (size_t i = 0; i < got.size(); ++i)
        REQUIRE(std::fabs(got[i] - want[i]) <= 1e-4f * (1 + std::fabs(want[i])));
    }
  }
}

// Output codes held packed (ConvSink::storage_bits 4 and 2, codes.h) are a storage choice: each
// kernel writes the codes its byte sink gets, partial vectors at the channel tail included, in a
// slice of wider rows whose other codes keep their bits.
TEST_CASE("packed code sinks hold the byte sink's codes, tails and neighbours kept", "[conv]") {
  int index = 0;
  for (int out_c : {8, 20, 24, 36})
    for (int kernel : {1, 3})
      for (int sb : {4, 2}) {
        const Shape s{6,          7,          12,         out_c,      kernel, kernel, 1,
                      kernel / 2, kernel / 2, kernel / 2, kernel / 2, 1,      1};
        std::mt19937 rng(99 + index++);
        const ConvGeometry g = geometry(s);
        const ConvWeights w = random_weights(g, ConvPrecision::kInt, 4, sb, rng);
        const int pixels = g.out_h() * g.out_w();
        std::vector<uint8_t> in(static_cast<size_t>(g.in_h) * g.in_w * g.in_c);
        for (auto& c : in) c = static_cast<uint8_t>(rng() % (1u << sb));
        ConvInputView view;
        view.codes = in.data();
        view.row_stride = g.in_c;
        ConvSink sink;
        sink.kind = ConvSink::kCodes;
        sink.row_stride = out_c + 8;
        sink.channel_offset = 4;
        sink.bits = sb;
        sink.scale = 0.4f;
        sink.zero_point = (1 << sb) / 2;
        const int64_t codes = static_cast<int64_t>(pixels) * sink.row_stride;
        for (const ConvKernelInfo& k : conv_kernel_table(cpu_features())) {
          if (!k.available || !row_family_fits(k, w)) continue;
          INFO("kernel " << k.name << " out_c " << out_c << " k" << kernel << " bits " << sb);
          auto plan = make_conv_plan_named(w, k.name);
          std::vector<uint8_t> bytes(static_cast<size_t>(codes), kCodeSentinel);
          ConvEpilogue ep;
          ep.sinks.push_back(sink);
          ep.sinks[0].data = bytes.data();
          plan->run(view, ep, 1);
          std::vector<uint8_t> packed(static_cast<size_t>(code_stream_bytes(codes, sb)), 0xA5);
          const std::vector<uint8_t> before = packed;
          ep.sinks[0].storage_bits = sb;
          ep.sinks[0].data = packed.data();
          plan->run(view, ep, test_threads());
          std::vector<uint8_t> got(static_cast<size_t>(codes)), old(static_cast<size_t>(codes));
          unpack_codes(packed.data(), sb, 0, codes, got.data());
          unpack_codes(before.data(), sb, 0, codes, old.data());
          for (int64_t e = 0; e < codes; ++e) {
            const int c = static_cast<int>(e % sink.row_stride);
            const bool inside = c >= sink.channel_offset && c < sink.channel_offset + out_c;
            REQUIRE(int(got[size_t(e)]) == int(inside ? bytes[size_t(e)] : old[size_t(e)]));
          }
        }
      }
}
