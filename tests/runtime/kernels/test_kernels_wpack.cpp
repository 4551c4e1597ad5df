// Weight codes held at their bit-width (conv_wpack.h): the layout's round trip through the packer,
// the reference decode and the vector unpack the kernels run (instantiated here for this build's
// baseline ISA; the AVX2 / AVX-512 / dot-product instantiations are checked bit for bit through
// the conv kernels in test_kernels_conv), and the bytes an integer plan holds.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "deploy/runtime/cpu_features.h"
#include "deploy/runtime/kernels/conv.h"
#include "deploy/runtime/kernels/conv_wpack.h"

#define MIXNAS_KERNEL_ISA isa_test_wpack
#include "deploy/runtime/kernels/conv_impl.h"
#undef MIXNAS_KERNEL_ISA

using namespace mixnas::rt;

namespace {

std::vector<int8_t> random_codes(size_t n, int w_bits, std::mt19937& rng) {
  const int lo = w_bits == 1 ? -1 : -(1 << (w_bits - 1)), hi = w_bits == 1 ? 1 : -lo - 1;
  std::uniform_int_distribution<int> q(lo, hi);
  std::vector<int8_t> codes(n);
  for (auto& c : codes) {
    int v = q(rng);
    if (w_bits == 1 && v == 0) v = -1;
    c = static_cast<int8_t>(v);
  }
  return codes;
}

template <class T>
void check_vector_unpack(const std::vector<uint8_t>& packed, const std::vector<int8_t>& codes,
                         int s) {
  const size_t n = codes.size();
  std::vector<T> out(wpack_unpacked_codes(n, s) + 1, T(99));
  isa_test_wpack::unpack_weight_codes(packed.data(), s, n, out.data());
  for (size_t i = 0; i < n; ++i) REQUIRE(out[i] == codes[i]);
  CHECK(out.back() == T(99));  // whole chunks and not one value more
}

ConvWeights int_weights(int hw, int cin, int cout, int k, int stride, int groups, int w_bits) {
  ConvWeights w;
  ConvGeometry& g = w.geometry;
  g.in_h = g.in_w = hw;
  g.in_c = cin, g.out_c = cout, g.groups = groups;
  g.kernel_h = g.kernel_w = k;
  g.stride_h = g.stride_w = stride;
  g.pad_top = g.pad_left = g.pad_bottom = g.pad_right = k / 2;
  w.precision = ConvPrecision::kInt;
  w.w_bits = w_bits;
  w.a_bits = 8;
  std::mt19937 rng(7);
  w.weight_codes = random_codes(static_cast<size_t>(cout) * g.reduction(), w_bits, rng);
  w.weight_scale.assign(cout, 0.01f);
  w.input_scale = 0.02f;
  return w;
}

// The integer GEMM and depthwise rows of this CPU.
// The integer rows of a family that take every bit-width (not the 2-bit table-lookup row).
std::vector<std::string> int_rows(const std::string& family) {
  std::vector<std::string> rows;
  for (const ConvKernelInfo& k : conv_kernel_table(cpu_features()))
    if (k.available && k.family == family && k.precision == ConvPrecision::kInt &&
        k.min_w_bits == 1 && k.max_w_bits == 8)
      rows.push_back(k.name);
  return rows;
}

// The rows of 2-bit weights only (aarch64: conv_qu8_tbl_w2_1x16__neon).
std::vector<std::string> w2_rows() {
  std::vector<std::string> rows;
  for (const ConvKernelInfo& k : conv_kernel_table(cpu_features()))
    if (k.available && k.precision == ConvPrecision::kInt && k.min_w_bits == 2 && k.max_w_bits == 2)
      rows.push_back(k.name);
  return rows;
}

}  // namespace

TEST_CASE("packed weight codes round trip, the padded last chunk included", "[conv][wpack]") {
  std::mt19937 rng(11);
  for (int w_bits : {1, 2, 3, 4, 5, 8}) {
    const int s = wpack_storage_bits(w_bits);
    // Exactly one chunk, one code past it, and a short last chunk of an odd length.
    for (size_t n : {wpack_chunk_codes(s), wpack_chunk_codes(s) + 1, 3 * wpack_chunk_codes(s) - 37,
                     size_t{5}}) {
      INFO("w_bits " << w_bits << " codes " << n);
      const std::vector<int8_t> codes = random_codes(n, w_bits, rng);
      std::vector<uint8_t> packed(wpack_bytes(n, s) + 1, 0xEE);
      wpack_codes(codes.data(), n, s, packed.data());
      CHECK(packed.back() == 0xEE);  // wpack_bytes(n, s) bytes written, no more
      std::vector<int8_t> back(n);
      wunpack_codes_reference(packed.data(), n, s, back.data());
      CHECK(back == codes);
      check_vector_unpack<int8_t>(packed, codes, s);
      check_vector_unpack<int16_t>(packed, codes, s);
      check_vector_unpack<int32_t>(packed, codes, s);
    }
  }
}

TEST_CASE("the packed layout puts code g * 64 + i of a chunk in byte i", "[conv][wpack]") {
  // 4-bit: codes 0..127 of a chunk; code i -> low nibble of byte i, code 64 + i -> high nibble.
  std::vector<int8_t> codes(128);
  for (int i = 0; i < 128; ++i) codes[i] = static_cast<int8_t>(i % 16 - 8);
  std::vector<uint8_t> packed(64);
  wpack_codes(codes.data(), codes.size(), 4, packed.data());
  CHECK(packed[0] == 0x88);   // -8 and -8 (code 64: 64 % 16 - 8 = -8)
  CHECK(packed[1] == 0x99);   // -7, -7
  CHECK(packed[15] == 0x77);  // 7, 7
  // 1-bit: +1 is a set bit, -1 a clear one; code 64 * g + i at bit g of byte i.
  std::vector<int8_t> ones(512, -1);
  ones[3] = 1;
  ones[64 * 5 + 3] = 1;
  std::vector<uint8_t> bits(64);
  wpack_codes(ones.data(), ones.size(), 1, bits.data());
  CHECK(bits[3] == 0x21);
  CHECK(bits[4] == 0);
}

TEST_CASE("integer plans hold W4 weights in about half the bytes of W8", "[conv][wpack]") {
  // YOLOv8n (width 0.25) at 320: the distinct conv shapes (hw, in_c, out_c, kernel, stride).
  const int shapes[][5] = {
      {320, 3, 16, 3, 2},   {160, 16, 32, 3, 2},  {80, 32, 32, 1, 1},   {80, 16, 16, 3, 1},
      {80, 48, 32, 1, 1},   {80, 32, 64, 3, 2},   {40, 64, 64, 1, 1},   {40, 32, 32, 3, 1},
      {40, 128, 64, 1, 1},  {40, 64, 128, 3, 2},  {20, 128, 128, 1, 1}, {20, 64, 64, 3, 1},
      {20, 256, 128, 1, 1}, {20, 128, 256, 3, 2}, {10, 256, 256, 1, 1}, {10, 128, 128, 3, 1},
      {10, 384, 256, 1, 1}, {10, 512, 256, 1, 1}, {40, 64, 80, 3, 1},   {40, 80, 80, 3, 1},
      {40, 80, 80, 1, 1},   {20, 128, 80, 3, 1},  {10, 256, 64, 3, 1}};
  for (const std::string& row : int_rows("gemm")) {
    size_t w4_sum = 0, w8_sum = 0;
    for (const auto& s : shapes) {
      INFO(row << " " << s[0] << "x" << s[0] << "x" << s[1] << " -> " << s[2] << " k" << s[3]);
      const size_t w4 = make_conv_plan_named(int_weights(s[0], s[1], s[2], s[3], s[4], 1, 4), row)
                            ->packed_weight_bytes();
      const size_t w8 = make_conv_plan_named(int_weights(s[0], s[1], s[2], s[3], s[4], 1, 8), row)
                            ->packed_weight_bytes();
      // The per-channel constants (scale, bias, offset: 12 bytes a channel) stay: they weigh on
      // the layers of fewer than 16384 weights (a 1x1 32 -> 32: 384 of 1408 bytes at W8).
      if (s[1] * s[2] * s[3] * s[3] >= 16384) CHECK(w4 <= 0.55 * w8);
      w4_sum += w4, w8_sum += w8;
    }
    CHECK(w4_sum <= 0.55 * w8_sum);
  }
  // What make_conv_plan picks (a low-bit row where its rule says so).
  size_t w4_sum = 0, w8_sum = 0;
  for (const auto& s : shapes) {
    w4_sum +=
        make_conv_plan(int_weights(s[0], s[1], s[2], s[3], s[4], 1, 4))->packed_weight_bytes();
    w8_sum +=
        make_conv_plan(int_weights(s[0], s[1], s[2], s[3], s[4], 1, 8))->packed_weight_bytes();
  }
  CHECK(w4_sum <= 0.55 * w8_sum);
}

TEST_CASE("packed_weight_bytes of a W4 conv, a worked answer", "[conv][wpack]") {
  // 3.conv of YOLOv8n: 3x3, 32 -> 64. k_pad = 288 on every row; the panels (NR = 32, 16 or 8
  // channels) hold 288 * NR codes, a whole number of 128-code chunks: 288 * 64 / 2 = 9216 bytes,
  // plus scale, bias and offset (3 * 4 bytes) per channel: 768.
  for (const std::string& row : int_rows("gemm")) {
    INFO(row);
    CHECK(make_conv_plan_named(int_weights(80, 32, 64, 3, 2, 1, 4), row)->packed_weight_bytes() ==
          9984);
  }
  // Depthwise 3x3 over 32 channels: 9 * 32 = 288 codes. W4: three 128-code chunks (the last one
  // padded), 192 bytes; W8: five 64-code chunks, 320 bytes; plus the constants of 32 channels, 384.
  for (const std::string& row : int_rows("depthwise")) {
    INFO(row);
    CHECK(make_conv_plan_named(int_weights(10, 32, 32, 3, 1, 32, 4), row)->packed_weight_bytes() ==
          192 + 384);
    CHECK(make_conv_plan_named(int_weights(10, 32, 32, 3, 1, 32, 8), row)->packed_weight_bytes() ==
          320 + 384);
  }
  // The table-lookup row: k_pad = 320 (a multiple of 64), 80 groups of 4 codes; per 16 channels
  // and group 16 bytes (two bit planes of 4 weights each), 4 panels: 5120 bytes, 2 bits a weight
  // of the padded reduction, plus the constants, 768.
  for (const std::string& row : w2_rows()) {
    INFO(row);
    auto plan = make_conv_plan_named(int_weights(80, 32, 64, 3, 2, 1, 2), row);
    CHECK(plan->packed_weight_bytes() == 5120 + 768);
    CHECK(plan->weights().weight_codes.empty());
  }
#if defined(__aarch64__)
  CHECK(w2_rows().size() == 1);
#endif
  // The reference holds the OIHW codes as given, one byte each.
  const ConvWeights w = int_weights(8, 32, 64, 3, 1, 1, 4);
  CHECK(make_conv_plan_reference(w)->packed_weight_bytes() == 64 * 288 + 3 * 4 * 64);
}

TEST_CASE("plans drop the unpacked weights once packed", "[conv][wpack]") {
  const ConvWeights w = int_weights(8, 32, 64, 3, 1, 1, 4);
  for (const std::string& row : int_rows("gemm")) {
    auto plan = make_conv_plan_named(w, row);
    CHECK(plan->weights().weight_codes.empty());
    CHECK(plan->weights().geometry.out_c == 64);
  }
  CHECK(make_conv_plan_reference(w)->weights().weight_codes.size() == w.weight_codes.size());
}
