// Model-YAML builder: official parameter counts, shapes, strides, sites, YAML errors with
// file:line.
#include <catch2/catch.hpp>

#include <string>

#include "core/error.h"
#include "supernet/model.h"

using namespace mixnas::supernet;

namespace {
const std::string kModels = std::string(MIXNAS_SOURCE_DIR) + "/configs/models/";
const std::string kData = std::string(MIXNAS_TEST_DATA_DIR) + "/models/";

std::string build_error(const std::string& text) {
  try {
    ModelSpec spec = parse_model_spec(text, "bad.yaml", "");
    YoloModel model(spec);
  } catch (const mixnas::Error& e) {
    return e.what();
  }
  return "no error";
}

const char* kTiny = R"(nc: 3
depth_multiple: 0.33
width_multiple: 0.125
backbone:
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, Conv, [128, 3, 2]]
  - [-1, 1, Conv, [256, 3, 2]]
  - [-1, 1, C2f, [256, True]]
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 1], 1, Concat, [1]]
  - [-1, 1, C2f, [128]]
  - [[6, 3], 1, Detect, [nc]]
)";
}  // namespace

TEST_CASE("YOLOv8n builds with the official parameter count", "[model]") {
  // yolov8n.yaml does not exist: yolov8.yaml at scale n.
  YoloModel m = build_model(kModels + "yolov8n.yaml");
  CHECK(m->spec().scale == "n");
  CHECK(m->parameter_count() == 3157200);
  CHECK(m->strides() == std::vector<double>{8, 16, 32});
  ModelSummary s = m->summary(640);
  CHECK(s.params == 3157200);
  CHECK(s.layers.size() == 23);
  CHECK(s.layers[0].params == 464);  // Conv(3, 16, 3, 2): 432 + BN 32
  CHECK(s.gflops == Approx(8.7).margin(0.15));
}

TEST_CASE("YOLOv5n (v5 repository format) builds with the official parameter count", "[model]") {
  YoloModel m = build_model(kData + "yolov5n.yaml");
  CHECK(m->anchor_based());
  CHECK(m->parameter_count() == 1872157);
  CHECK(m->strides() == std::vector<double>{8, 16, 32});
  YoloModel scaled = build_model(kModels + "yolov5n.yaml");
  CHECK(scaled->parameter_count() == 1872157);
}

TEST_CASE("our model files build; the scale letter and nc override apply", "[model]") {
  YoloModel v5v8 = build_model(kModels + "yolov5n-v8head.yaml");
  CHECK(v5v8->spec().scale == "n");
  CHECK_FALSE(v5v8->anchor_based());
  YoloModel pico = build_model(kModels + "yolov8-pico.yaml");
  CHECK(pico->parameter_count() < 1200000);  // 1,174,568 at nc=80 (docs/model_yaml.md)
  BuildOptions o;
  o.nc = 10;
  YoloModel pico10 = build_model(kModels + "yolov8-pico.yaml", o);
  CHECK(pico10->nc() == 10);
  CHECK(pico10->parameter_count() < pico->parameter_count());
}

TEST_CASE("output shapes at several input sizes", "[model]") {
  torch::NoGradGuard no_grad;
  BuildOptions o;
  o.nc = 7;
  YoloModel pico = build_model(kModels + "yolov8-pico.yaml", o);
  YoloModel v5 = build_model(kData + "yolov5n.yaml", o);
  pico->eval();
  v5->eval();
  for (int64_t s : {64, 96, 128}) {
    torch::Tensor x = torch::rand({2, 3, s, s + 32});
    auto out = pico->forward(x);
    REQUIRE(out.raw.size() == 3);
    int64_t anchors = 0;
    for (size_t i = 0; i < 3; ++i) {
      const int64_t stride = int64_t(8) << i;
      CHECK(out.raw[i].sizes() == std::vector<int64_t>{2, 64 + 7, s / stride, (s + 32) / stride});
      anchors += (s / stride) * ((s + 32) / stride);
    }
    REQUIRE(out.predictions);
    CHECK(out.predictions->boxes.sizes() == std::vector<int64_t>{2, anchors, 4});
    CHECK(out.predictions->scores.sizes() == std::vector<int64_t>{2, anchors, 7});
    auto out5 = v5->forward(x);
    CHECK(out5.raw[0].sizes() == std::vector<int64_t>{2, 3, s / 8, (s + 32) / 8, 12});
    CHECK(out5.predictions->scores.size(1) == 3 * anchors);
  }
  pico->train();
  CHECK_FALSE(pico->forward(torch::rand({1, 3, 64, 64})).predictions);
}

TEST_CASE("bad model YAML gives mixnas::Error with file:line", "[model][errors]") {
  std::string text = kTiny;
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    t.replace(t.find(from), from.size(), to);
    return t;
  };
  std::string e = build_error(replace("C2f, [256, True]", "C2x, [256, True]"));
  CHECK_THAT(e, Catch::Contains("bad.yaml:8:") && Catch::Contains("unknown module 'C2x'") &&
                    Catch::Contains("C2f"));
  e = build_error(replace("[[-1, 1], 1, Concat", "[[-1, 9], 1, Concat"));
  CHECK_THAT(e, Catch::Contains("bad.yaml:11:") && Catch::Contains("from index 9"));
  e = build_error(
      replace("[-1, 1, Conv, [64, 3, 2]]", "[-1, 1, Conv, [64, 3, 2, 1, 1, 1, True, 5]]"));
  CHECK_THAT(e, Catch::Contains("bad.yaml:5:") && Catch::Contains("1..7 arguments"));
  e = build_error(
      replace("[-1, 1, nn.Upsample, [None, 2, \"nearest\"]]", "[-1, 1, nn.Upsample, [None, 2]]"));
  CHECK_THAT(e, Catch::Contains("bad.yaml:10:") && Catch::Contains("3 arguments"));
  e = build_error(replace("[-1, 1, Conv, [128, 3, 2]]", "[-1, 1, Conv]"));
  CHECK_THAT(e, Catch::Contains("bad.yaml:6:") && Catch::Contains("[from, repeats, module, args]"));
  e = build_error(
      replace("[-1, 1, Conv, [256, 3, 2]]", "[-1, 1, Conv, [256, 3, 2], {act: swish}]"));
  CHECK_THAT(e, Catch::Contains("bad.yaml:7:") && Catch::Contains("unknown activation"));
  e = build_error(replace("nc: 3", "nc: [3"));
  CHECK_THAT(e, Catch::Contains("bad.yaml:") && Catch::Contains("invalid YAML"));
  CHECK_THROWS_WITH(load_model_spec(kModels + "nosuch.yaml"), Catch::Contains("not found"));
  CHECK(build_error(text) == "no error");
}

TEST_CASE("search space: rules in order, fixed sites, per-layer extension", "[model][sites]") {
  const std::string yaml = R"(search_space:
  activations: [relu, relu6, leakyrelu, hardswish, silu]
  w_bits: [2, 4, 8]
  a_bits: [4, 8]
  rules:
    - {layers: [0, 0], w_bits: [8], a_bits: [8]}
    - {module: Detect, w_bits: [8], a_bits: [8]}
    - {name: "model.3.cv2", activations: [silu]}
    - {name: "model.3.m.*", a_bits: [32]}
)";
  SearchSpace space = parse_search_space(YAML::Load(yaml)["search_space"], "space.yaml");
  REQUIRE(space.rules.size() == 4);
  std::string text = kTiny;
  text.replace(text.find("[-1, 1, Conv, [128, 3, 2]]"), 26,
               "[-1, 1, Conv, [128, 3, 2], {act: relu, bits: [4, 4]}]");
  BuildOptions o;
  o.search_space = space;
  YoloModel m(parse_model_spec(text, "tiny.yaml", ""), o);
  std::map<std::string, SiteView> by_name;
  for (auto& s : m->sites_at(64, 64)) by_name[s.name] = s;
  CHECK(by_name.at("model.0").w_bits == std::vector<int>{8});
  CHECK(by_name.at("model.0").acts.size() == 5);
  CHECK(by_name.at("model.1").acts == std::vector<Act>{Act::kRelu});
  CHECK(by_name.at("model.1").a_bits == std::vector<int>{4});
  CHECK(by_name.at("model.2").w_bits == std::vector<int>{2, 4, 8});
  CHECK(by_name.at("model.3.cv2").acts == std::vector<Act>{Act::kSilu});
  CHECK(by_name.at("model.3.m.0.cv1").a_bits == std::vector<int>{32});
  CHECK(by_name.at("model.7.cv2.0.2").acts.empty());
  CHECK(by_name.at("model.7.cv2.0.2").a_bits == std::vector<int>{8});
  CHECK(by_name.at("model.7.cv3.1.0").w_bits == std::vector<int>{8});
  // Geometry at 64 x 64: model.0 is a 3x3 stride-2 conv 3 -> 8 channels, 64 -> 32.
  const ConvGeometry& g = by_name.at("model.0").geometry;
  CHECK(g.in_channels == 3);
  CHECK(g.out_channels == 8);
  CHECK(g.kernel == 3);
  CHECK(g.stride == 2);
  CHECK(g.in_h == 64);
  CHECK(g.out_h == 32);
  CHECK(g.macs() == 32 * 32 * 8 * 3 * 9);
  CHECK(by_name.at("model.2").act_probs.requires_grad());
  CHECK(by_name.at("model.2").act_probs.sum().item<float>() == Approx(1.0f));
}

TEST_CASE("search space errors name file:line:col", "[sites][errors]") {
  auto err = [](const std::string& yaml) {
    try {
      parse_search_space(YAML::Load(yaml), "space.yaml");
    } catch (const mixnas::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(err("activations: [relu, swish]"),
             Catch::Contains("space.yaml:1:21") && Catch::Contains("unknown activation"));
  CHECK_THAT(err("w_bits: [2, 9]"), Catch::Contains("space.yaml:1:13") && Catch::Contains("1..8"));
  CHECK_THAT(err("a_bits: []"), Catch::Contains("space.yaml:1:9") && Catch::Contains("non-empty"));
  CHECK_THAT(err("w_bit: [2]"),
             Catch::Contains("space.yaml:1:1") && Catch::Contains("unknown key"));
  CHECK_THAT(err("rules:\n  - {layers: [3, 1], w_bits: [8]}"),
             Catch::Contains("space.yaml:2:14") && Catch::Contains("first <= last"));
  CHECK_THAT(err("rules:\n  - {w_bits: [8]}"),
             Catch::Contains("space.yaml:2:5") && Catch::Contains("selector"));
  CHECK_THAT(err("w_bits: [4, 4]"), Catch::Contains("twice"));
}
