// .mxr packages: pack/unpack of every layout, graph round trips, and hostile input.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include "core/error.h"
#include "deploy/runtime/builder.h"
#include "deploy/runtime/package.h"
#include "deploy/runtime/packing.h"
#include "tests/runtime/frame_graphs.h"

using namespace mixnas::rt;

namespace {

std::vector<int8_t> random_codes(size_t n, int bits, uint32_t seed) {
  std::vector<int8_t> codes(n);
  uint32_t s = seed;
  for (auto& c : codes) {
    s = s * 1664525u + 1013904223u;
    const int lo = DenseCodesLayout::min_code(bits), hi = DenseCodesLayout::max_code(bits);
    int q = lo + static_cast<int>((s >> 8) % static_cast<uint32_t>(hi - lo + 1));
    if (bits == 1) q = q <= 0 ? -1 : 1;
    c = static_cast<int8_t>(q);
  }
  return codes;
}

Graph parse(const std::string& bytes) {
  return parse_package(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

void require_same(const Graph& a, const Graph& b) {
  REQUIRE(a.producer == b.producer);
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const TensorDesc &x = a.tensors[i], &y = b.tensors[i];
    CHECK(x.name == y.name);
    CHECK(x.kind == y.kind);
    CHECK(x.shape == y.shape);
    CHECK(x.bits == y.bits);
    CHECK(x.scale == y.scale);
    CHECK(x.zero_point == y.zero_point);
    CHECK(x.buffer == y.buffer);
  }
  REQUIRE(a.buffers.size() == b.buffers.size());
  for (size_t i = 0; i < a.buffers.size(); ++i) {
    CHECK(a.buffers[i].layout == b.buffers[i].layout);
    CHECK(a.buffers[i].bits == b.buffers[i].bits);
    CHECK(a.buffers[i].count == b.buffers[i].count);
    CHECK(a.buffers[i].data == b.buffers[i].data);
  }
  REQUIRE(a.nodes.size() == b.nodes.size());
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    const Node &x = a.nodes[i], &y = b.nodes[i];
    CHECK(x.name == y.name);
    CHECK(x.op == y.op);
    CHECK(x.inputs == y.inputs);
    CHECK(x.outputs == y.outputs);
    CHECK(std::memcmp(&x.conv, &y.conv, sizeof(ConvAttrs)) == 0);
    CHECK(x.pool.kernel == y.pool.kernel);
    CHECK(x.pool.stride == y.pool.stride);
    CHECK(x.pool.pad == y.pool.pad);
    CHECK(x.upsample_factor == y.upsample_factor);
    CHECK(x.v8.strides == y.v8.strides);
    CHECK(x.v8.reg_max == y.v8.reg_max);
    CHECK(x.v8.num_classes == y.v8.num_classes);
    CHECK(x.v5.anchors == y.v5.anchors);
    CHECK(x.v5.num_anchors == y.v5.num_anchors);
    CHECK(x.nms.score_threshold == y.nms.score_threshold);
    CHECK(x.nms.iou_threshold == y.nms.iou_threshold);
    CHECK(x.nms.max_detections == y.nms.max_detections);
    CHECK(x.nms.class_aware == y.nms.class_aware);
  }
  CHECK(a.input.tensor == b.input.tensor);
  CHECK(a.input.height == b.input.height);
  CHECK(a.input.width == b.input.width);
  CHECK(a.input.letterbox == b.input.letterbox);
  CHECK(a.input.pad_value == b.input.pad_value);
  CHECK(a.input.pixel_scale == b.input.pixel_scale);
  CHECK(a.input.mean == b.input.mean);
  CHECK(a.input.std == b.input.std);
  CHECK(a.output.tensors == b.output.tensors);
  CHECK(a.output.decode == b.output.decode);
  CHECK(a.output.strides == b.output.strides);
  CHECK(a.output.reg_max == b.output.reg_max);
  CHECK(a.output.class_names == b.output.class_names);
  CHECK(a.output.detections == b.output.detections);
}

// Parsing must either succeed with a valid graph or throw mixnas::Error; anything else fails.
bool rejected(const std::string& bytes) {
  try {
    parse(bytes);
    return false;
  } catch (const mixnas::Error&) {
    return true;
  }
}

}  // namespace

TEST_CASE("DenseCodes packs a known bit pattern", "[runtime][package]") {
  const std::vector<int8_t> codes = {1, -1, 7, -8};
  // 4-bit fields, little endian: 0x1 | 0xF << 4, 0x7 | 0x8 << 4.
  CHECK(DenseCodesLayout::pack(codes.data(), codes.size(), 4) == std::vector<uint8_t>{0xF1, 0x87});
  const std::vector<int8_t> bin = {1, -1, -1, 1, 1, 1, -1, -1, 1};
  CHECK(DenseCodesLayout::pack(bin.data(), bin.size(), 1) == std::vector<uint8_t>{0x39, 0x01});
  const std::vector<int8_t> three = {-4, 3, 1};  // 100 011 001 -> bits 0..8
  CHECK(DenseCodesLayout::pack(three.data(), three.size(), 3) == std::vector<uint8_t>{0x5C, 0x00});
}

TEST_CASE("DenseCodes round trips every bit-width and odd counts", "[runtime][package]") {
  for (int bits = 1; bits <= 8; ++bits) {
    for (size_t n : {size_t{1}, size_t{7}, size_t{8}, size_t{13}, size_t{1001}}) {
      const std::vector<int8_t> codes = random_codes(n, bits, static_cast<uint32_t>(bits * 31 + n));
      const std::vector<uint8_t> packed = DenseCodesLayout::pack(codes.data(), n, bits);
      REQUIRE(packed.size() == (n * bits + 7) / 8);
      REQUIRE(packed.size() == packed_bytes(BufferLayout::kDenseCodes, bits, n));
      std::vector<int8_t> back(n);
      DenseCodesLayout::unpack(packed.data(), packed.size(), n, bits, back.data());
      CHECK(back == codes);
    }
    // The extremes of the range survive.
    const std::vector<int8_t> ends = {static_cast<int8_t>(DenseCodesLayout::min_code(bits)),
                                      static_cast<int8_t>(DenseCodesLayout::max_code(bits))};
    std::vector<int8_t> back(2);
    const auto packed = DenseCodesLayout::pack(ends.data(), 2, bits);
    DenseCodesLayout::unpack(packed.data(), packed.size(), 2, bits, back.data());
    CHECK(back == ends);
  }
}

TEST_CASE("DenseCodes rejects codes outside the range and wrong sizes", "[runtime][package]") {
  const std::vector<int8_t> too_big = {8};
  CHECK_THROWS_AS(DenseCodesLayout::pack(too_big.data(), 1, 4), mixnas::Error);
  const std::vector<int8_t> zero = {0};
  CHECK_THROWS_AS(DenseCodesLayout::pack(zero.data(), 1, 1), mixnas::Error);
  std::vector<int8_t> out(10);
  const std::vector<uint8_t> bytes(3);
  CHECK_THROWS_AS(DenseCodesLayout::unpack(bytes.data(), bytes.size(), 10, 4, out.data()),
                  mixnas::Error);
  CHECK_THROWS_AS(packed_bytes(BufferLayout::kDenseCodes, 9, 1), mixnas::Error);
  CHECK_THROWS_AS(packed_bytes(BufferLayout::kF32, 8, 1), mixnas::Error);
  CHECK_THROWS_AS(packed_bytes(BufferLayout::kF32, 32, ~uint64_t{0}), mixnas::Error);
}

TEST_CASE("F32 layout round trips", "[runtime][package]") {
  const std::vector<float> v = {0.0f, -1.5f, 3.25e-20f, 1e30f, -0.0f};
  const auto packed = F32Layout::pack(v.data(), v.size());
  REQUIRE(packed.size() == 20);
  std::vector<float> back(v.size());
  F32Layout::unpack(packed.data(), packed.size(), v.size(), back.data());
  CHECK(std::memcmp(back.data(), v.data(), 20) == 0);
  CHECK_THROWS_AS(F32Layout::unpack(packed.data(), 19, v.size(), back.data()), mixnas::Error);
}

TEST_CASE("A graph with every op survives serialize -> parse", "[runtime][package]") {
  const Graph g = testing::make_all_ops_graph();
  const std::string bytes = serialize_package(g);
  CHECK(std::string(bytes.data() + 4, 4) == "MXR1");
  const Graph back = parse(bytes);
  require_same(g, back);
  // Weights decode to the codes the builder was given.
  const TensorDesc& w = back.tensors[back.nodes[0].inputs[1]];
  CHECK(unpack_code_buffer(back.buffers[w.buffer]).size() == 8 * 3 * 3 * 3);
  CHECK(serialize_package(back) == bytes);  // deterministic
}

TEST_CASE("The YOLOv8n-shaped graphs survive serialize -> parse", "[runtime][package]") {
  for (bool int8 : {true, false}) {
    testing::YoloOptions o;
    o.int8 = int8;
    o.imgsz = 64;
    const Graph g = testing::make_yolov8n_graph(o);
    const Graph back = parse(serialize_package(g));
    require_same(g, back);
    // The C2f convs whose floats feed a residual write that part only (graph.h ConvAttrs).
    int parts = 0;
    for (const Node& n : back.nodes)
      parts += n.op == OpType::kConv2d && n.conv.f32_channel_begin > 0;
    INFO("int8 " << int8);
    CHECK(parts == (int8 ? 4 : 0));  // fp32: the split's parts are all read as floats  // the cv1
                                     // of every C2f with shortcuts (its chunk 1 is m0's residual)
  }
}

TEST_CASE("Truncated packages are rejected at every length", "[runtime][package][corrupt]") {
  const std::string bytes = serialize_package(testing::make_all_ops_graph());
  for (size_t len = 0; len < bytes.size(); len += (len < 256 ? 1 : 37)) {
    INFO("length " << len);
    CHECK(rejected(bytes.substr(0, len)));
  }
}

TEST_CASE("Flipped bytes never crash the loader", "[runtime][package][corrupt]") {
  const std::string bytes = serialize_package(testing::make_all_ops_graph());
  int rejected_count = 0, tried = 0;
  for (size_t pos = 0; pos < bytes.size(); pos += 3) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xFF}}) {
      std::string bad = bytes;
      bad[pos] = static_cast<char>(bad[pos] ^ mask);
      ++tried;
      try {
        const Graph g = parse(bad);
        validate_graph(g, "reparsed");  // whatever parses is a consistent graph
      } catch (const mixnas::Error&) {
        ++rejected_count;
      }
    }
  }
  // Most flips hit weights or names (harmless); a good share must hit structure.
  CHECK(rejected_count > tried / 50);
}

TEST_CASE("Wrong identifier and schema version are rejected with a clear message",
          "[runtime][package][corrupt]") {
  const std::string bytes = serialize_package(testing::make_all_ops_graph());
  std::string bad = bytes;
  bad[4] = 'X';
  CHECK_THROWS_WITH(parse(bad), Catch::Contains("MXR1"));
  CHECK_THROWS_WITH(parse("garbage"), Catch::Contains("too short"));
  // The version field: rewrite the package with a bumped version by patching the builder output.
  Graph g = testing::make_all_ops_graph();
  std::string v1 = serialize_package(g);
  // Find the uint32 holding kMxrSchemaVersion right after the vtable offset of the root table.
  const uint32_t root = *reinterpret_cast<const uint32_t*>(v1.data());
  int32_t vt_rel;
  std::memcpy(&vt_rel, v1.data() + root, 4);
  const size_t vtable = root - vt_rel;
  uint16_t field_off;
  std::memcpy(&field_off, v1.data() + vtable + 4, 2);  // first field: schema_version
  REQUIRE(field_off != 0);
  uint32_t version;
  std::memcpy(&version, v1.data() + root + field_off, 4);
  REQUIRE(version == kMxrSchemaVersion);
  version = 99;
  std::memcpy(&v1[root + field_off], &version, 4);
  CHECK_THROWS_WITH(parse(v1), Catch::Contains("schema version 99"));
}

TEST_CASE("Hostile graphs are rejected by validation", "[runtime][package][corrupt]") {
  const Graph good = testing::make_all_ops_graph();
  const auto expect_rejected = [&](auto mutate, const char* what) {
    Graph g = good;
    mutate(g);
    INFO(what);
    const std::string bytes = serialize_package_unvalidated(g);
    CHECK_THROWS_AS(parse(bytes), mixnas::Error);
    CHECK_THROWS_AS(serialize_package(g), mixnas::Error);
  };
  expect_rejected([](Graph& g) { g.nodes[0].inputs[0] = 9999; }, "input index out of range");
  expect_rejected([](Graph& g) { g.nodes[0].inputs[0] = -1; }, "negative index");
  expect_rejected([](Graph& g) { g.nodes[3].outputs[0] = g.nodes[0].outputs[0]; },
                  "tensor written twice");
  expect_rejected([](Graph& g) { std::swap(g.nodes[0], g.nodes[1]); }, "use before definition");
  expect_rejected([](Graph& g) { g.tensors[0].shape = {1 << 20, 1 << 20, 3}; }, "huge shape");
  expect_rejected([](Graph& g) { g.tensors[0].shape = {0, 16, 3}; }, "zero dim");
  expect_rejected([](Graph& g) { g.buffers[0].count = uint64_t{1} << 62; }, "huge buffer count");
  expect_rejected([](Graph& g) { g.buffers[0].data.pop_back(); }, "short buffer");
  expect_rejected([](Graph& g) { g.tensors[g.nodes[0].outputs[0]].zero_point = {256}; },
                  "zero point out of range");
  expect_rejected([](Graph& g) { g.tensors[g.nodes[0].outputs[0]].bits = 9; }, "bits 9");
  expect_rejected([](Graph& g) { g.tensors[g.nodes[0].outputs[0]].scale = {-1.0f}; },
                  "negative scale");
  expect_rejected([](Graph& g) { g.nodes[0].conv.stride_h = 0; }, "stride 0");
  expect_rejected([](Graph& g) { g.nodes[0].conv.groups = 5; }, "groups");
  expect_rejected([](Graph& g) { g.nodes[0].conv.f32_channel_begin = 3; },
                  "float channels begin without a float output of fewer channels");
  expect_rejected([](Graph& g) { g.nodes[0].conv.pad_top = 100; }, "conv geometry vs output shape");
  expect_rejected([](Graph& g) { g.nodes[0].conv.activation = 200; }, "activation");
  expect_rejected([](Graph& g) { g.nodes[0].inputs.pop_back(); }, "conv arity");
  expect_rejected([](Graph& g) { g.nodes[0].op = OpType::kAdd; },
                  "op with wrong attributes / arity");
  expect_rejected([](Graph& g) { g.input.tensor = 5000; }, "input index");
  expect_rejected([](Graph& g) { g.output.tensors = {}; }, "no outputs");
  expect_rejected([](Graph& g) { g.output.detections = 7; }, "detections index");
  expect_rejected([](Graph& g) { g.tensors[g.nodes[0].inputs[1]].buffer = 77; }, "buffer index");
  for (Node& n : Graph(good).nodes) (void)n;
  expect_rejected(
      [](Graph& g) {
        for (Node& n : g.nodes)
          if (n.op == OpType::kMaxPool) n.pool.pad = n.pool.kernel;
      },
      "maxpool pad >= kernel");
  expect_rejected(
      [](Graph& g) {
        for (Node& n : g.nodes)
          if (n.op == OpType::kConcat) n.inputs.pop_back();
      },
      "concat channels");
  expect_rejected(
      [](Graph& g) {
        for (Node& n : g.nodes)
          if (n.op == OpType::kDetectV5) n.v5.anchors.pop_back();
      },
      "anchors");
  expect_rejected(
      [](Graph& g) {
        for (Node& n : g.nodes)
          if (n.op == OpType::kNms) n.nms.iou_threshold = 2.0f;
      },
      "iou threshold");
}

TEST_CASE("Builder save writes a loadable file", "[runtime][package]") {
  GraphBuilder b;
  const int x = b.add_input("images", 8, 8, Grid::f32());
  const int y = b.add_maxpool("pool", x, 2, 2, 0);
  b.set_outputs({y});
  const std::string path = "test_runtime_package_builder.mxr";
  b.save(path);
  const Graph g = load_package_file(path);
  CHECK(g.tensors[y].shape == std::vector<int>{4, 4, 3});
  std::remove(path.c_str());
  CHECK_THROWS_WITH(load_package_file("/nonexistent/x.mxr"), Catch::Contains("/nonexistent/x.mxr"));
}
