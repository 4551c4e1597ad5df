// The frame's ops against answers worked out by hand.
#include <catch2/catch.hpp>

#include <cmath>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "deploy/runtime/codes.h"
#include "deploy/runtime/ops.h"
#include "deploy/runtime/session.h"

using namespace mixnas::rt;

TEST_CASE("DFL decode: softmax expectation per side, anchor at the cell centre", "[runtime][ops]") {
  // One cell, reg_max 4, stride 8. Sides (left, top, right, bottom):
  //   left   logits 0,0,0,0        -> uniform         -> 1.5
  //   top    bin 2 dominates       -> 2
  //   right  0, ln3, 0, 0          -> (0 + 3 + 2 + 3) / 6 = 4/3
  //   bottom 0, 0, -100, -100      -> 0.5
  const float box[16] = {0, 0, 0, 0, -100, -100, 100, -100, 0, std::log(3.0f),
                         0, 0, 0, 0, -100, -100};
  const float cls[2] = {0.0f, std::log(3.0f)};
  float out[6];
  decode_yolov8_level(box, cls, 1, 1, 4, 2, 8.0f, out);
  CHECK(out[0] == Approx((0.5f - 1.5f) * 8));      // -8
  CHECK(out[1] == Approx((0.5f - 2.0f) * 8));      // -12
  CHECK(out[2] == Approx((0.5f + 4.0f / 3) * 8));  // 14.667
  CHECK(out[3] == Approx((0.5f + 0.5f) * 8));      // 8
  CHECK(out[4] == Approx(0.5f));
  CHECK(out[5] == Approx(0.75f));
}

TEST_CASE("DFL decode: rows in row-major cell order", "[runtime][ops]") {
  // reg_max 1: every distance is 0, so the box collapses to the anchor point times the stride.
  std::vector<float> box(2 * 3 * 4, 0.0f), cls(2 * 3, 0.0f), out(2 * 3 * 5);
  decode_yolov8_level(box.data(), cls.data(), 2, 3, 1, 1, 16.0f, out.data());
  const float* row = &out[5 * 5];  // cell y=1, x=2
  CHECK(row[0] == Approx(2.5f * 16));
  CHECK(row[1] == Approx(1.5f * 16));
  CHECK(row[2] == Approx(2.5f * 16));
  CHECK(row[3] == Approx(1.5f * 16));
}

TEST_CASE("YOLOv5 anchor decode", "[runtime][ops]") {
  // na 2, nc 1, h 2, w 3, stride 8; anchors (10, 20), (30, 40). All logits 0: p = 0.5, so
  // cx = (0.5 + x) * 8, w = (2 * 0.5)^2 * anchor_w, score = obj * cls = 0.25.
  const int na = 2, nc = 1, h = 2, w = 3, no = 5 + nc;
  std::vector<float> x(h * w * na * no, 0.0f), out(na * h * w * (4 + nc));
  // Cell (1, 2), anchor 1: x logit +100 -> p = 1 -> cx = (2 - 0.5 + 2) * 8 = 28.
  x[(1 * w + 2) * na * no + 1 * no + 0] = 100.0f;
  const float anchors[4] = {10, 20, 30, 40};
  decode_yolov5_level(x.data(), h, w, na, nc, 8.0f, anchors, out.data());
  const float* r0 = &out[((0 * h + 1) * w + 2) * (4 + nc)];  // anchor 0, cell (1, 2)
  CHECK(r0[0] == Approx(20 - 5));
  CHECK(r0[1] == Approx(12 - 10));
  CHECK(r0[2] == Approx(20 + 5));
  CHECK(r0[3] == Approx(12 + 10));
  CHECK(r0[4] == Approx(0.25f));
  const float* r1 = &out[((1 * h + 1) * w + 2) * (4 + nc)];  // anchor 1, cell (1, 2)
  CHECK(r1[0] == Approx(28 - 15));
  CHECK(r1[2] == Approx(28 + 15));
  CHECK(r1[1] == Approx(12 - 20));
  CHECK(r1[3] == Approx(12 + 20));
}

TEST_CASE("NMS: threshold, class-aware suppression, max detections", "[runtime][ops]") {
  // Rows: x1 y1 x2 y2 score(class0) score(class1).
  const std::vector<float> rows = {
      0,  0,  10, 10, 0.9f, 0.1f,  // A class 0
      1,  1,  11, 11, 0.8f, 0.0f,  // B class 0, IoU(A,B) = 81/119 = 0.68 -> suppressed
      1,  1,  11, 11, 0.0f, 0.7f,  // C class 1: kept when class aware
      20, 20, 30, 30, 0.6f, 0.0f,  // D class 0, far away
      40, 40, 50, 50, 0.2f, 0.1f,  // E below the 0.25 threshold
  };
  NmsAttrs a{0.25f, 0.5f, 10, true};
  std::vector<Detection> d = nms(rows.data(), 5, 6, a);
  REQUIRE(d.size() == 3);
  CHECK(d[0].score == Approx(0.9f));
  CHECK(d[0].class_id == 0);
  CHECK(d[1].class_id == 1);
  CHECK(d[1].x1 == 1);
  CHECK(d[2].x1 == 20);
  a.class_aware = false;
  d = nms(rows.data(), 5, 6, a);
  REQUIRE(d.size() == 2);  // C now suppressed by A (IoU 0.68)
  CHECK(d[1].x1 == 20);
  a.class_aware = true;
  a.max_detections = 2;
  CHECK(nms(rows.data(), 5, 6, a).size() == 2);
  a.iou_threshold = 0.7f;  // 0.68 no longer suppresses B
  a.max_detections = 10;
  CHECK(nms(rows.data(), 5, 6, a).size() == 4);
  CHECK(box_iou({0, 0, 10, 10, 0, 0}, {1, 1, 11, 11, 0, 0}) == Approx(81.0f / 119.0f));
  CHECK(box_iou({0, 0, 1, 1, 0, 0}, {2, 2, 3, 3, 0, 0}) == 0.0f);
}

TEST_CASE("MaxPool with padding: padded cells do not take part", "[runtime][ops]") {
  const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  float out[4];
  maxpool2d(x, 3, 3, 1, 3, 2, 1, out, 1);
  CHECK(std::vector<float>(out, out + 4) == std::vector<float>{5, 6, 8, 9});
  const float neg[9] = {-1, -2, -3, -4, -5, -6, -7, -8, -9};
  maxpool2d(neg, 3, 3, 1, 3, 2, 1, out, 1);
  CHECK(std::vector<float>(out, out + 4) == std::vector<float>{-1, -2, -4, -5});
  // SPPF: 5x5, stride 1, pad 2 keeps the size; on codes it equals the float path.
  std::vector<uint8_t> codes(6 * 5 * 3);
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>((i * 37) % 251);
  std::vector<uint8_t> pooled(codes.size());
  maxpool2d(codes.data(), 6, 5, 3, 5, 1, 2, pooled.data(), 2);
  const Grid g = Grid::codes(8, 0.1f, 40);
  std::vector<float> f(codes.size()), fp(codes.size()), deq(codes.size());
  dequantize(codes.data(), codes.size(), g, f.data(), 1);
  maxpool2d(f.data(), 6, 5, 3, 5, 1, 2, fp.data(), 1);
  dequantize(pooled.data(), pooled.size(), g, deq.data(), 1);
  CHECK(deq == fp);
  CHECK(pooled[0] == std::max({codes[0], codes[3], codes[6], codes[15], codes[18], codes[21],
                               codes[30], codes[33], codes[36]}));
}

TEST_CASE("Nearest upsample, concat and split", "[runtime][ops]") {
  const float x[4] = {1, 2, 3, 4};
  float up[16];
  upsample_nearest(x, 2, 2, 1, 2, up, 1);
  CHECK(std::vector<float>(up, up + 16) ==
        std::vector<float>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  const uint8_t a[4] = {1, 2, 3, 4};  // 2 pixels x 2 channels
  const uint8_t b[2] = {9, 8};        // 2 pixels x 1 channel
  uint8_t cat[6];
  concat_channels<uint8_t>({a, b}, {2, 1}, 2, cat, 1);
  CHECK(std::vector<uint8_t>(cat, cat + 6) == std::vector<uint8_t>{1, 2, 9, 3, 4, 8});
  uint8_t a2[4], b2[2];
  split_channels<uint8_t>(cat, {2, 1}, 2, {a2, b2}, 2);
  CHECK(std::vector<uint8_t>(a2, a2 + 4) == std::vector<uint8_t>(a, a + 4));
  CHECK(std::vector<uint8_t>(b2, b2 + 2) == std::vector<uint8_t>(b, b + 2));
}

TEST_CASE("Quantize rounds half to even and clamps to the code range", "[runtime][ops]") {
  const Grid g = Grid::codes(8, 0.5f, 10);
  CHECK(quantize_value(0.25f, g) == 10);   // 0.5 -> 0
  CHECK(quantize_value(0.75f, g) == 12);   // 1.5 -> 2
  CHECK(quantize_value(-0.25f, g) == 10);  // -0.5 -> 0
  CHECK(quantize_value(1000.0f, g) == 255);
  CHECK(quantize_value(-1000.0f, g) == 0);
  CHECK(quantize_value(std::nanf(""), g) == 0);
  CHECK(quantize_value(100.0f, Grid::codes(4, 1.0f, 3)) == 15);
  float back;
  const uint8_t q = 12;
  dequantize(&q, 1, g, &back, 1);
  CHECK(back == 1.0f);
}

TEST_CASE("Letterbox keeps the aspect ratio and boxes map back", "[runtime][ops]") {
  // 200 x 100 image into 64 x 64: r = 0.32, resized 64 x 32, top = round(16 - 0.1) = 16.
  const int w = 200, h = 100;
  std::vector<uint8_t> img(w * h * 3);
  for (size_t i = 0; i < img.size(); i += 3) img[i] = 10, img[i + 1] = 20, img[i + 2] = 30;
  InputSpec spec;
  spec.height = spec.width = 64;
  std::vector<uint8_t> out(64 * 64 * 3);
  const LetterboxInfo info = letterbox({img.data(), w, h, 0}, spec, out.data());
  CHECK(info.scale_x == Approx(0.32f));
  CHECK(info.pad_top == 16);
  CHECK(info.pad_left == 0);
  CHECK(out[(15 * 64 + 5) * 3] == 114);  // padding above
  CHECK(out[(48 * 64 + 5) * 3] == 114);  // padding below
  CHECK(out[(16 * 64 + 5) * 3 + 0] == 10);
  CHECK(out[(47 * 64 + 63) * 3 + 2] == 30);
  const Detection d = map_to_original({0, 16, 64, 48, 0.5f, 1}, info);
  CHECK(d.x1 == Approx(0));
  CHECK(d.y1 == Approx(0));
  CHECK(d.x2 == Approx(200));
  CHECK(d.y2 == Approx(100));
  const Detection c = map_to_original({32, 32, 40, 100, 0.5f, 1}, info);
  CHECK(c.x1 == Approx(100));
  CHECK(c.y1 == Approx(50));
  CHECK(c.y2 == Approx(100));  // clipped to the image
  // Stretching instead of letterboxing scales each axis on its own.
  spec.letterbox = false;
  const LetterboxInfo s = letterbox({img.data(), w, h, 0}, spec, out.data());
  CHECK(s.scale_x == Approx(0.32f));
  CHECK(s.scale_y == Approx(0.64f));
  CHECK(map_to_original({32, 32, 64, 64, 0, 0}, s).y1 == Approx(50));
  CHECK_THROWS_AS(letterbox({nullptr, 0, 0, 0}, spec, out.data()), mixnas::Error);
}

TEST_CASE("Bilinear resize interpolates between pixels", "[runtime][ops]") {
  // 2 x 1 image (0 and 200) stretched to 4 x 1: half-pixel centres sample at -0.25 (clamped to
  // 0), 0.25, 0.75, 1.25 (clamped to 1) -> 0, 50, 150, 200.
  const uint8_t img[6] = {0, 0, 0, 200, 200, 200};
  InputSpec spec;
  spec.height = 1;
  spec.width = 4;
  spec.letterbox = false;
  uint8_t out[12];
  letterbox({img, 2, 1, 0}, spec, out);
  CHECK(out[0] == 0);
  CHECK(out[3] == 50);
  CHECK(out[6] == 150);
  CHECK(out[9] == 200);
}

TEST_CASE("Latency statistics", "[runtime][ops]") {
  LatencyStats s = latency_stats({5, 1, 4, 2, 3});
  CHECK(s.min_ms == 1);
  CHECK(s.median_ms == 3);
  CHECK(s.mean_ms == 3);
  CHECK(s.p90_ms == 5);  // nearest rank ceil(0.9 * 5) = 5
  CHECK(s.std_ms == Approx(std::sqrt(2.0)));
  s = latency_stats({4, 1, 3, 2});
  CHECK(s.median_ms == 2.5);
  CHECK(s.p90_ms == 4);
  CHECK(latency_stats({}).runs == 0);
}

TEST_CASE("Packed codes: known bytes, round trips at every offset, neighbours kept",
          "[runtime][ops][packed]") {
  CHECK(code_storage_bits(1) == 1);
  CHECK(code_storage_bits(2) == 2);
  CHECK(code_storage_bits(3) == 4);
  CHECK(code_storage_bits(4) == 4);
  CHECK(code_storage_bits(5) == 8);
  CHECK(code_storage_bits(8) == 8);
  // Little-endian within a byte: the first code in the lowest bits.
  const uint8_t nibbles[4] = {0x1, 0xF, 0x7, 0x3};
  uint8_t stream[2] = {0, 0};
  pack_codes(nibbles, 4, 4, stream, 0);
  CHECK(stream[0] == 0xF1);
  CHECK(stream[1] == 0x37);
  const uint8_t crumbs[4] = {3, 0, 2, 1};
  pack_codes(crumbs, 4, 2, stream, 0);
  CHECK(stream[0] == 0x63);  // 0b01'10'00'11
  const uint8_t bits[8] = {1, 0, 0, 1, 1, 1, 0, 1};
  pack_codes(bits, 8, 1, stream, 0);
  CHECK(stream[0] == 0xB9);  // 0b1011'1001

  uint32_t seed = 99;
  const auto rnd = [&](int n) {
    seed = seed * 1103515245u + 12345u;
    return static_cast<int>((seed >> 8) % static_cast<uint32_t>(n));
  };
  for (int s : {1, 2, 4, 8}) {
    for (int trial = 0; trial < 200; ++trial) {
      const int count = 1 + rnd(300), first = rnd(70);
      std::vector<uint8_t> codes(count), before(code_stream_bytes(first + count + 70, s));
      for (auto& c : codes) c = static_cast<uint8_t>(rnd(1 << s));
      for (auto& b : before) b = static_cast<uint8_t>(rnd(256));
      std::vector<uint8_t> after = before;
      pack_codes(codes.data(), count, s, after.data(), first);
      std::vector<uint8_t> back(count);
      unpack_codes(after.data(), s, first, count, back.data());
      INFO("storage " << s << " first " << first << " count " << count);
      REQUIRE(back == codes);
      // Codes outside [first, first + count) are untouched.
      const int64_t total = static_cast<int64_t>(before.size()) * 8 / s;
      std::vector<uint8_t> all_before(total), all_after(total);
      unpack_codes(before.data(), s, 0, total, all_before.data());
      unpack_codes(after.data(), s, 0, total, all_after.data());
      for (int64_t e = 0; e < total; ++e)
        if (e < first || e >= first + count) REQUIRE(all_before[e] == all_after[e]);
    }
  }
}

TEST_CASE("Packed max-pool, quantize and dequantize equal their byte forms",
          "[runtime][ops][packed]") {
  uint32_t seed = 5;
  const auto rnd = [&](int n) {
    seed = seed * 1103515245u + 12345u;
    return static_cast<int>((seed >> 8) % static_cast<uint32_t>(n));
  };
  for (int s : {1, 2, 4}) {
    const int h = 7, w = 9, c = 16;  // c * s is a whole number of bytes
    std::vector<uint8_t> x(h * w * c);
    for (auto& v : x) v = static_cast<uint8_t>(rnd(1 << s));
    std::vector<uint8_t> packed(code_stream_bytes(x.size(), s));
    pack_codes(x.data(), static_cast<int64_t>(x.size()), s, packed.data(), 0);
    for (const auto& [k, st, p] : {std::tuple{5, 1, 2}, std::tuple{3, 2, 1}, std::tuple{2, 2, 0}}) {
      const int oh = (h + 2 * p - k) / st + 1, ow = (w + 2 * p - k) / st + 1;
      std::vector<uint8_t> ref(oh * ow * c), out(code_stream_bytes(ref.size(), s)), got(ref.size());
      maxpool2d(x.data(), h, w, c, k, st, p, ref.data(), 1);
      for (int threads : {1, 2}) {
        maxpool2d_packed(packed.data(), s, h, w, c, k, st, p, out.data(), threads);
        unpack_codes(out.data(), s, 0, static_cast<int64_t>(got.size()), got.data());
        INFO("storage " << s << " kernel " << k << " stride " << st << " threads " << threads);
        CHECK(got == ref);
      }
    }
    const Grid grid = Grid::codes(s, 0.25f, (1 << s) / 2);
    std::vector<float> f(10000);  // more than one 4096-code chunk
    for (auto& v : f) v = 0.01f * static_cast<float>(rnd(1000) - 500);
    std::vector<uint8_t> q(f.size()), qp(code_stream_bytes(f.size(), s)), qb(f.size());
    quantize(f.data(), f.size(), grid, q.data(), 1);
    quantize_packed(f.data(), f.size(), grid, s, qp.data(), 2);
    unpack_codes(qp.data(), s, 0, static_cast<int64_t>(qb.size()), qb.data());
    CHECK(qb == q);
    std::vector<float> d(f.size()), dp(f.size());
    dequantize(q.data(), q.size(), grid, d.data(), 1);
    dequantize_packed(qp.data(), s, q.size(), grid, dp.data(), 2);
    CHECK(d == dp);
  }
}
