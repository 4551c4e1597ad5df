// Low-bit conv rows (deploy/runtime/kernels/conv_lowbit.h): bit-plane pack/unpack, then every
// bit-serial row this CPU runs, for every (w_bits, a_bits) pair, against the scalar reference over
// the kernel test shape list plus odd channel counts and the deepest reduction make_conv_plan
// accepts (K = 65792). Integer results must match bit for bit (float and code sinks compared
// exactly; the epilogue is shared). Also: bit-plane sinks and bit-plane input, error paths.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "deploy/runtime/kernels/conv.h"
#include "deploy/runtime/kernels/conv_lowbit.h"

using namespace mixnas::rt;

namespace {

struct Shape {
  int in_h, in_w, in_c, out_c, kh, kw, stride, pt, pl, pb, pr, dil;
};

// tests/runtime/kernels/test_kernels_conv.cpp's dense shapes, odd channel counts, channels across
// 64-bit words, and the deepest reduction.
const Shape kShapes[] = {
    {8, 8, 16, 16, 1, 1, 1, 0, 0, 0, 0, 1},   {8, 8, 3, 16, 3, 3, 2, 1, 1, 1, 1, 1},
    {7, 9, 5, 7, 3, 3, 1, 1, 1, 1, 1, 1},     {10, 10, 17, 33, 5, 5, 1, 2, 2, 2, 2, 1},
    {12, 12, 8, 19, 6, 6, 2, 2, 2, 2, 2, 1},  {9, 9, 13, 37, 1, 1, 2, 0, 0, 0, 0, 1},
    {11, 10, 12, 20, 3, 3, 2, 1, 1, 0, 0, 1}, {9, 9, 6, 10, 3, 3, 1, 2, 2, 2, 2, 2},
    {20, 20, 32, 40, 3, 3, 1, 1, 1, 1, 1, 1}, {40, 40, 64, 64, 1, 1, 1, 0, 0, 0, 0, 1},
    {64, 64, 16, 16, 1, 1, 1, 0, 0, 0, 0, 1}, {5, 4, 1024, 32, 3, 3, 1, 1, 1, 1, 1, 1},
    {6, 5, 71, 9, 3, 3, 1, 1, 1, 1, 1, 1},    {5, 5, 131, 3, 3, 3, 1, 0, 1, 1, 0, 1},
    {4, 4, 80, 80, 3, 3, 1, 1, 1, 1, 1, 1},   {3, 3, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1},
};

ConvGeometry geometry(const Shape& s) {
  ConvGeometry g;
  g.in_h = s.in_h, g.in_w = s.in_w, g.in_c = s.in_c, g.out_c = s.out_c;
  g.kernel_h = s.kh, g.kernel_w = s.kw, g.stride_h = g.stride_w = s.stride;
  g.pad_top = s.pt, g.pad_left = s.pl, g.pad_bottom = s.pb, g.pad_right = s.pr;
  g.dilation_h = g.dilation_w = s.dil;
  return g;
}

int w_lo(int b) {
  return b == 1 ? -1 : -(1 << (b - 1));
}
int w_hi(int b) {
  return b == 1 ? 1 : (1 << (b - 1)) - 1;
}

ConvWeights random_weights(const ConvGeometry& g, int wb, int ab, std::mt19937& rng) {
  ConvWeights w;
  w.geometry = g;
  w.precision = ConvPrecision::kInt;
  w.w_bits = wb, w.a_bits = ab;
  const size_t count = static_cast<size_t>(g.out_c) * g.reduction();
  std::uniform_int_distribution<int> q(w_lo(wb), w_hi(wb));
  for (size_t i = 0; i < count; ++i) {
    int v = q(rng);
    if (wb == 1 && v == 0) v = 1;
    w.weight_codes.push_back(static_cast<int8_t>(v));
  }
  std::uniform_real_distribution<float> u(0.5f, 1.0f);
  for (int c = 0; c < g.out_c; ++c)
    w.weight_scale.push_back(u(rng) * 3.0f / std::sqrt(float(g.reduction())) / (w_hi(wb) + 1));
  if (g.out_c % 3 != 0)
    for (int c = 0; c < g.out_c; ++c) w.bias.push_back(u(rng) - 0.75f);
  w.input_scale = 4.0f / ((1 << ab) - 1);
  w.input_zero_point = std::uniform_int_distribution<int>(0, (1 << ab) - 1)(rng);
  return w;
}

struct Out {
  std::vector<float> f32;
  std::vector<uint8_t> codes;
};

// Identity activation, float sink with scale folded so that y is float(acc) * s + b, plus a
// 4-bit code sink. in_stride > in_c exercises the row stride.
Out run(const ConvPlan& plan, const std::vector<uint8_t>& in, int in_stride, int threads,
        Activation act) {
  const ConvGeometry& g = plan.weights().geometry;
  const int pixels = g.out_h() * g.out_w();
  Out o;
  o.f32.assign(static_cast<size_t>(pixels) * g.out_c, -1.0f);
  o.codes.assign(static_cast<size_t>(pixels) * g.out_c, 0xA5);
  ConvEpilogue ep;
  ep.act.kind = act;
  ConvSink f;
  f.data = o.f32.data();
  f.row_stride = g.out_c;
  ConvSink c;
  c.kind = ConvSink::kCodes;
  c.data = o.codes.data();
  c.row_stride = g.out_c;
  c.scale = 0.05f;
  c.zero_point = 7;
  c.bits = 4;
  ep.sinks = {f, c};
  ConvInputView v;
  v.codes = in.data();
  v.row_stride = in_stride;
  plan.run(v, ep, threads);
  return o;
}

std::vector<std::string> available_rows() {
  std::vector<std::string> names;
  for (const ConvKernelInfo& k : conv_lowbit_kernel_table())
    if (k.available && k.min_w_bits == 1 && k.min_a_bits == 1) {
      // one name per ISA: strip the pair, re-add per pair below
      names.push_back(k.name.substr(k.name.find("__")));
    }
  return names;
}

std::string row(const std::string& isa_suffix, int wb, int ab) {
  return "conv_bitserial_w" + std::to_string(wb) + "a" + std::to_string(ab) + isa_suffix;
}

// The thread count compared against one thread: 2, or MIXNAS_TEST_THREADS (1 under an emulator
// that cannot start threads, as for test_kernels_conv).
int test_threads() {
  const char* env = std::getenv("MIXNAS_TEST_THREADS");
  return env && std::atoi(env) > 0 ? std::atoi(env) : 2;
}

const int kPairs[][2] = {{1, 1}, {1, 2}, {1, 3}, {1, 4}, {2, 1}, {2, 2}, {2, 3}, {2, 4},
                         {3, 1}, {3, 2}, {3, 3}, {3, 4}, {4, 1}, {4, 2}, {4, 3}, {4, 4},
                         {1, 8}, {2, 8}, {3, 8}, {4, 8}, {8, 1}, {8, 2}, {8, 3}, {8, 4}};

}  // namespace

TEST_CASE("bit planes: known answer and round trip", "[lowbit]") {
  // 3 channels of 2-bit codes {1, 2, 3}: plane 0 = channels 0 and 2 -> 0b101, plane 1 -> 0b110.
  const uint8_t codes[3] = {1, 2, 3};
  BitPlaneLayout l{3, 2};
  std::vector<uint64_t> planes(l.words_per_pixel(), 0xdead);
  pack_bit_planes(codes, 1, 3, l, planes.data());
  REQUIRE(planes == std::vector<uint64_t>{0b101, 0b110});
  uint8_t back[3] = {};
  unpack_bit_planes(planes.data(), 1, l, back, 3);
  REQUIRE(std::memcmp(back, codes, 3) == 0);

  std::mt19937 rng(3);
  for (int bits : {1, 2, 3, 4, 8})
    for (int ch : {1, 7, 64, 65, 130}) {
      const int pixels = 5, stride = ch + 3;
      std::vector<uint8_t> in(pixels * stride), out(pixels * stride, 0);
      for (auto& c : in) c = static_cast<uint8_t>(rng() & ((1u << bits) - 1));
      BitPlaneLayout lay{ch, bits};
      std::vector<uint64_t> p(static_cast<size_t>(pixels) * lay.words_per_pixel());
      pack_bit_planes(in.data(), pixels, stride, lay, p.data());
      for (int px = 0; px < pixels; ++px)  // bits past the last channel are zero
        if (ch % 64)
          for (int b = 0; b < bits; ++b)
            REQUIRE((p[px * lay.words_per_pixel() + b * lay.words_per_plane() +
                       lay.words_per_plane() - 1] >>
                     (ch % 64)) == 0);
      unpack_bit_planes(p.data(), pixels, lay, out.data(), stride);
      for (int px = 0; px < pixels; ++px)
        for (int c = 0; c < ch; ++c) REQUIRE(out[px * stride + c] == in[px * stride + c]);
    }
  const uint8_t bad[2] = {1, 4};
  uint64_t sink[2];
  REQUIRE_THROWS_AS(pack_bit_planes(bad, 1, 2, BitPlaneLayout{2, 2}, sink), mixnas::Error);
}

TEST_CASE("bit-serial rows match the reference bit for bit", "[lowbit]") {
  const auto isas = available_rows();
  REQUIRE(!isas.empty());
  std::mt19937 rng(11);
  int checked = 0;
  for (const auto& pair : kPairs) {
    const int wb = pair[0], ab = pair[1];
    for (const Shape& s : kShapes) {
      const ConvGeometry g = geometry(s);
      const ConvWeights w = random_weights(g, wb, ab, rng);
      const int in_stride = s.in_c + (s.in_c % 2);
      std::vector<uint8_t> in(static_cast<size_t>(s.in_h) * s.in_w * in_stride);
      for (auto& c : in) c = static_cast<uint8_t>(rng() & ((1u << ab) - 1));
      const Activation act = (checked % 2) ? Activation::kSilu : Activation::kIdentity;
      const Out ref = run(*make_conv_plan_reference(w), in, in_stride, 1, act);
      for (const auto& isa : isas) {
        auto plan = make_conv_plan_lowbit_named(w, row(isa, wb, ab));
        REQUIRE(plan);
        INFO(plan->kernel_name() << " shape " << s.in_h << "x" << s.in_w << "x" << s.in_c << ">"
                                 << s.out_c << " k" << s.kh);
        for (int threads : {1, test_threads()}) {
          const Out got = run(*plan, in, in_stride, threads, act);
          REQUIRE(got.codes == ref.codes);
          REQUIRE(std::memcmp(got.f32.data(), ref.f32.data(), got.f32.size() * 4) == 0);
        }
        ++checked;
      }
    }
  }
  REQUIRE(checked == static_cast<int>(isas.size() * std::size(kPairs) * std::size(kShapes)));
}

TEST_CASE("deepest reduction: extreme codes, exact accumulators", "[lowbit]") {
  // K = 3 * 3 * 7310 = 65790 (make_conv_plan accepts up to 65792): every weight at its most
  // negative code, every activation at its largest code, z_a = 0, so acc = K * q_w * q_a exactly:
  // W4A4: 65790 * -8 * 15 = -7894800 (exact in float); the bit-serial sums R = K * 0 * 15 and
  // S_a = K * 15, so any lost count or byte-counter overflow changes the result.
  for (const auto& pair : {std::pair<int, int>{4, 4}, {1, 1}, {2, 2}, {1, 4}, {4, 1}, {3, 3}}) {
    const int wb = pair.first, ab = pair.second;
    ConvGeometry g;
    g.in_h = g.in_w = 3, g.in_c = 7310, g.out_c = 2, g.kernel_h = g.kernel_w = 3;
    ConvWeights w;
    w.geometry = g;
    w.precision = ConvPrecision::kInt;
    w.w_bits = wb, w.a_bits = ab;
    w.weight_codes.assign(static_cast<size_t>(2) * g.reduction(), static_cast<int8_t>(w_lo(wb)));
    for (size_t i = 0; i < w.weight_codes.size(); i += 2)  // channel 1: largest positive code
      if (i >= static_cast<size_t>(g.reduction()))
        w.weight_codes[i] = static_cast<int8_t>(w_hi(wb));
    w.weight_scale = {1.0f, 1.0f};
    std::vector<uint8_t> in(static_cast<size_t>(9) * g.in_c, static_cast<uint8_t>((1 << ab) - 1));
    const Out ref = run(*make_conv_plan_reference(w), in, g.in_c, 1, Activation::kIdentity);
    REQUIRE(ref.f32[0] == static_cast<float>(int64_t{65790} * w_lo(wb) * ((1 << ab) - 1)));
    for (const auto& isa : available_rows()) {
      auto plan = make_conv_plan_lowbit_named(w, row(isa, wb, ab));
      INFO(plan->kernel_name());
      const Out got = run(*plan, in, g.in_c, test_threads(), Activation::kIdentity);
      REQUIRE(got.f32 == ref.f32);
    }
  }
}

TEST_CASE("bit-plane sink feeds bit-plane input", "[lowbit]") {
  std::mt19937 rng(5);
  const ConvGeometry g1 = geometry({9, 7, 24, 70, 3, 3, 1, 1, 1, 1, 1, 1});
  // conv 1 (any int plan) writes 2-bit codes twice: bytes, and bit planes at channel offset 3 of a
  // 80-channel tensor (bits of other channels must survive).
  const int pixels = 9 * 7, bits = 2, words = 2, plane_stride = words + 1,
            row_stride = bits * plane_stride + 1;
  std::vector<uint8_t> in1(static_cast<size_t>(9 * 7 * 24));
  for (auto& c : in1) c = static_cast<uint8_t>(rng());
  std::vector<uint8_t> codes(static_cast<size_t>(pixels) * 70);
  std::vector<uint64_t> planes(static_cast<size_t>(pixels) * row_stride, 0x5555555555555555ull);
  const std::vector<uint64_t> before = planes;
  ConvEpilogue ep;
  ep.act.kind = Activation::kSilu;
  ConvSink c;
  c.kind = ConvSink::kCodes, c.data = codes.data(), c.row_stride = 70, c.scale = 0.3f,
  c.zero_point = 1, c.bits = bits;
  ConvSink p = c;
  p.kind = ConvSink::kBitPlanes, p.data = planes.data(), p.row_stride = row_stride,
  p.plane_stride = plane_stride, p.channel_offset = 3;
  ep.sinks = {c, p};
  ConvInputView v;
  v.codes = in1.data(), v.row_stride = 24;
  // conv 1: a 1-bit-weight, 8-bit-activation bit-serial plan writes both sinks through the
  // shared epilogue.
  ConvWeights w1b = random_weights(g1, 1, 8, rng);
  auto plan1 = make_conv_plan_lowbit_named(w1b, "conv_bitserial_w1a8__scalar");
  plan1->run(v, ep, test_threads());
  for (int px = 0; px < pixels; ++px)
    for (int ch = 0; ch < 80; ++ch)
      for (int b = 0; b < bits; ++b) {
        const uint64_t word = planes[px * row_stride + b * plane_stride + ch / 64];
        const int bit = static_cast<int>(word >> (ch % 64) & 1);
        if (ch >= 3 && ch < 73) {
          REQUIRE(bit == (codes[px * 70 + ch - 3] >> b & 1));
        } else {
          REQUIRE(bit ==
                  static_cast<int>(
                      before[px * row_stride + b * plane_stride + ch / 64] >> (ch % 64) & 1));
        }
      }
  // Words outside the planes are untouched.
  for (int px = 0; px < pixels; ++px) {
    REQUIRE(planes[px * row_stride + words] == before[px * row_stride + words]);
    REQUIRE(planes[px * row_stride + row_stride - 1] == before[px * row_stride + row_stride - 1]);
  }

  // conv 2 reads the 80-channel tensor's planes directly vs its byte codes.
  const ConvGeometry g2 = geometry({9, 7, 80, 33, 3, 3, 2, 1, 1, 1, 1, 1});
  std::vector<uint8_t> codes80(static_cast<size_t>(pixels) * 80);
  for (int px = 0; px < pixels; ++px)
    for (int ch = 0; ch < 80; ++ch) {
      int q = 0;
      for (int b = 0; b < bits; ++b)
        q |= static_cast<int>(planes[px * row_stride + b * plane_stride + ch / 64] >> (ch % 64) & 1)
             << b;
      codes80[px * 80 + ch] = static_cast<uint8_t>(q);
    }
  for (const auto& isa : available_rows()) {
    const ConvWeights w2 = random_weights(g2, 2, bits, rng);
    auto plan2 = make_conv_plan_lowbit_named(w2, row(isa, 2, bits));
    const Out ref = run(*make_conv_plan_reference(w2), codes80, 80, 1, Activation::kRelu);
    const int out_pixels = g2.out_h() * g2.out_w();
    Out got;
    got.f32.assign(static_cast<size_t>(out_pixels) * 33, -1.0f);
    got.codes.assign(static_cast<size_t>(out_pixels) * 33, 0xA5);
    ConvEpilogue ep2;
    ep2.act.kind = Activation::kRelu;
    ConvSink f;
    f.data = got.f32.data(), f.row_stride = 33;
    ConvSink cc;
    cc.kind = ConvSink::kCodes, cc.data = got.codes.data(), cc.row_stride = 33, cc.scale = 0.05f,
    cc.zero_point = 7, cc.bits = 4;
    ep2.sinks = {f, cc};
    ConvInputView v2;
    v2.bit_planes = planes.data(), v2.row_stride = row_stride, v2.plane_stride = plane_stride;
    plan2->run(v2, ep2, test_threads());
    INFO(plan2->kernel_name());
    REQUIRE(got.codes == ref.codes);
    REQUIRE(got.f32 == ref.f32);
    // Strides too small for the planes are rejected.
    v2.plane_stride = 1;
    REQUIRE_THROWS_AS(plan2->run(v2, ep2, 1), mixnas::Error);
  }
}

TEST_CASE("bit-serial errors: out-of-range codes, wrong bits, unknown names", "[lowbit]") {
  std::mt19937 rng(9);
  const ConvGeometry g = geometry({4, 4, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1});
  const ConvWeights w = random_weights(g, 2, 2, rng);
  auto plan = make_conv_plan_lowbit_named(w, "conv_bitserial_w2a2__scalar");
  std::vector<uint8_t> in(4 * 4 * 8, 1);
  in[17] = 4;  // not a 2-bit code
  REQUIRE_THROWS_AS(run(*plan, in, 8, 1, Activation::kIdentity), mixnas::Error);
  REQUIRE_THROWS_AS(make_conv_plan_lowbit_named(w, "conv_bitserial_w1a1__scalar"), mixnas::Error);
  REQUIRE(make_conv_plan_lowbit_named(w, "conv_bitserial_w9a9__scalar") == nullptr);
  ConvWeights grouped = w;
  grouped.geometry.groups = 2;
  grouped.weight_codes.resize(grouped.weight_codes.size() / 2);
  REQUIRE(make_conv_plan_lowbit(grouped) == nullptr);
  // mixnas info lines exist and name either bit-serial rows or int8.
  const auto lines = conv_lowbit_kernel_names_for();
  REQUIRE(!lines.empty());
  for (const auto& l : lines) REQUIRE(l.rfind("gemm/lowbit: ", 0) == 0);
}

TEST_CASE("make_conv_plan picks low-bit rows only where the rule says they win", "[lowbit]") {
  std::mt19937 rng(13);
  const ConvGeometry deep = geometry({6, 6, 256, 64, 3, 3, 1, 1, 1, 1, 1, 1});
  for (const auto& pair : kPairs) {
    const ConvWeights w = random_weights(deep, pair[0], pair[1], rng);
    auto lowbit = make_conv_plan_lowbit(w);
    auto plan = make_conv_plan(w);
    if (lowbit) {
      REQUIRE(std::string(plan->kernel_name()) == lowbit->kernel_name());
    } else {
      REQUIRE(std::string(plan->kernel_name()).find("bitserial") == std::string::npos);
    }
    // Whatever is picked matches the reference (through the table entry point).
    std::vector<uint8_t> in(static_cast<size_t>(6 * 6 * 256));
    for (auto& c : in) c = static_cast<uint8_t>(rng() & ((1u << pair[1]) - 1));
    const Out ref = run(*make_conv_plan_reference(w), in, 256, 1, Activation::kHardswish);
    const Out got = run(*plan, in, 256, test_threads(), Activation::kHardswish);
    REQUIRE(got.codes == ref.codes);
    REQUIRE(got.f32 == ref.f32);
  }
  // The int8 rows write bit-plane sinks through the same epilogue.
  const ConvWeights w8 = random_weights(geometry({5, 5, 16, 20, 3, 3, 1, 1, 1, 1, 1, 1}), 8, 8, rng);
  std::vector<uint8_t> in(5 * 5 * 16), codes(5 * 5 * 20);
  for (auto& c : in) c = static_cast<uint8_t>(rng());
  std::vector<uint64_t> planes(5 * 5 * 3, 0);
  ConvEpilogue ep;
  ConvSink c;
  c.kind = ConvSink::kCodes, c.data = codes.data(), c.row_stride = 20, c.scale = 0.2f, c.bits = 3;
  ConvSink p = c;
  p.kind = ConvSink::kBitPlanes, p.data = planes.data(), p.row_stride = 3, p.plane_stride = 1;
  ep.sinks = {c, p};
  ConvInputView v;
  v.codes = in.data(), v.row_stride = 16;
  make_conv_plan(w8)->run(v, ep, 1);
  std::vector<uint8_t> back(5 * 5 * 20);
  unpack_bit_planes(planes.data(), 25, BitPlaneLayout{20, 3}, back.data(), 20);
  REQUIRE(back == codes);
  p.plane_stride = 0;
  ep.sinks = {p};
  REQUIRE_THROWS_AS(make_conv_plan(w8)->run(v, ep, 1), mixnas::Error);
}
