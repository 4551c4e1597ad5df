// `mixnas export` files: checkpoint loading, model.mxr / arch.yaml round trips, ONNX structure,
// and the errors bad input gets.
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"
#include "deploy/export/export.h"
#include "deploy/runtime/package.h"
#include "deploy/runtime/session.h"
#include "tests/export/export_fixtures.h"

#ifdef MIXNAS_HAVE_ONNX
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#endif

// After LibTorch and ONNX: glog defines its own CHECK, Catch2 must win.
#undef CHECK
#include <catch2/catch.hpp>

using namespace mixnas;
using namespace mixnas::exporter;
using namespace mixnas::exporter::testing;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

const std::string kPico = std::string(MIXNAS_SOURCE_DIR) + "/configs/models/yolov8-pico.yaml";
const std::string kV5 = std::string(MIXNAS_SOURCE_DIR) + "/configs/models/yolov5n.yaml";
constexpr int kImg = 64;

fs::path temp_dir(const std::string& name) {
  fs::path d =
      fs::temp_directory_path() / ("mixnas_test_export_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d / "weights");
  return d;
}

// A checkpoint as the trainer writes it (format, arch_yaml, model, ema).
void save_checkpoint(supernet::YoloModel& model, const std::string& path) {
  const fs::path arch = fs::path(path).parent_path() / "tmp_arch.yaml";
  supernet::write_arch_yaml(arch.string(), model, model->argmax_choices());
  torch::serialize::OutputArchive a, m;
  a.write("format", c10::IValue(std::string("mixnas-checkpoint-1")));
  a.write("arch_yaml", c10::IValue(read_file(arch.string())));
  model->save(m);
  a.write("model", m);
  a.save_to(path);
  fs::remove(arch);
}

supernet::ArchChoices mixed_choices(const std::string& yaml, uint32_t seed) {
  ArchRecipe r;
  r.w_bits = {2, 4, 8};
  r.a_bits = {4, 8};
  r.fp32_fraction = 0.15;
  return random_choices(yaml, 3, r, seed);
}

}  // namespace

TEST_CASE("export: a checkpoint exports to model.mxr, model.onnx and arch.yaml",
          "[export][files]") {
  const fs::path run = temp_dir("run");
  const auto choices = mixed_choices(kPico, 5);
  auto model = make_trained_like(kPico, 3, choices, 5, kImg);
  save_checkpoint(model, (run / "weights" / "best.pt").string());

  ExportRequest req;
  req.input = run.string();
  req.options.imgsz = kImg;
  req.options.class_names = {"a", "b", "c"};
  req.formats = {"mxr"};
  if (onnx_available()) req.formats.push_back("onnx");
  const ExportResult res = run_export(req);
  CHECK(fs::equivalent(res.run_dir, run));
  REQUIRE(fs::exists(run / "model.mxr"));
  REQUIRE(fs::exists(run / "arch.yaml"));
  CHECK(fs::exists(run / "model.onnx") == onnx_available());

  // The package loads, holds the class names, and its weights are the original model's.
  rt::Graph loaded = rt::load_package_file((run / "model.mxr").string());
  CHECK(loaded.output.class_names == std::vector<std::string>{"a", "b", "c"});
  CHECK(loaded.input.height == kImg);
  ExportOptions o;
  o.imgsz = kImg;
  o.class_names = {"a", "b", "c"};
  rt::Graph direct = export_graph(model, o);
  REQUIRE(loaded.buffers.size() == direct.buffers.size());
  for (size_t i = 0; i < direct.buffers.size(); ++i)
    CHECK(loaded.buffers[i].data == direct.buffers[i].data);
  // The runtime runs it.
  rt::Session session(rt::Model::load((run / "model.mxr").string()));
  const auto img = make_image(80, 100, 3);
  session.run({img.data(), 100, 80, 0});

  // arch.yaml rebuilds the same fixed model.
  auto rebuilt = supernet::build_from_arch(supernet::read_arch_yaml((run / "arch.yaml").string()));
  CHECK(rebuilt->argmax_choices() == choices);
  fs::remove_all(run);
}

TEST_CASE("export: bad input gets a clear error", "[export][errors]") {
  const fs::path run = temp_dir("errors");
  SECTION("missing file") {
    CHECK_THROWS_WITH(load_weights((run / "weights" / "nope.pt").string()),
                      Contains("nope.pt") && Contains("no such weights file"));
    ExportRequest req;
    req.input = (run / "missing").string();
    CHECK_THROWS_WITH(run_export(req), Contains("missing") && Contains("no such"));
  }
  SECTION("not a checkpoint") {
    write_file_atomic((run / "weights" / "best.pt").string(), "this is not a checkpoint");
    CHECK_THROWS_WITH(load_weights((run / "weights" / "best.pt").string()),
                      Contains("best.pt") && Contains("not a readable"));
  }
  SECTION("weights of another model YAML") {
    auto model = make_trained_like(kPico, 3, mixed_choices(kPico, 6), 6, kImg);
    const std::string path = (run / "weights" / "best.pt").string();
    save_checkpoint(model, path);
    CHECK_THROWS_WITH(load_weights(path, kV5),
                      Contains("best.pt") && Contains("another model YAML") && Contains("model.0"));
    // Same YAML, other bits: the quantizers differ.
    auto other = make_trained_like(kPico, 3, mixed_choices(kPico, 7), 7, kImg);
    const fs::path arch = run / "other_arch.yaml";
    supernet::write_arch_yaml(arch.string(), other, other->argmax_choices());
    CHECK_THROWS_WITH(load_weights(path, arch.string()), Contains("another model YAML"));
    // The checkpoint's own architecture loads.
    CHECK_NOTHROW(load_weights(path));
  }
  SECTION("a searchable supernet site") {
    supernet::BuildOptions bo;
    bo.nc = 3;
    supernet::SearchSpace ss;
    ss.acts = {supernet::Act::kRelu, supernet::Act::kSilu};
    ss.w_bits = {4, 8};
    ss.a_bits = {8};
    bo.search_space = ss;
    auto supernet = supernet::build_model(kPico, bo);
    ExportOptions o;
    o.imgsz = kImg;
    CHECK_THROWS_WITH(export_graph(supernet, o),
                      Contains("model.0") && Contains("candidates") && Contains("fixed"));
  }
  SECTION("an uncalibrated quantizer") {
    ArchRecipe r;
    r.w_bits = {4};
    r.a_bits = {4};
    supernet::BuildOptions bo;
    bo.nc = 3;
    bo.choices = random_choices(kPico, 3, r, 8);
    auto fresh = supernet::build_model(kPico, bo);
    ExportOptions o;
    o.imgsz = kImg;
    CHECK_THROWS_WITH(export_graph(fresh, o), Contains("model.0") && Contains("never initialised"));
  }
  SECTION("an input size that is not a multiple of the stride") {
    auto model = make_trained_like(kPico, 3, mixed_choices(kPico, 9), 9, kImg);
    ExportOptions o;
    o.imgsz = 80;
    CHECK_THROWS_WITH(export_graph(model, o), Contains("80") && Contains("stride"));
  }
  fs::remove_all(run);
}

#ifdef MIXNAS_HAVE_ONNX
namespace {
std::map<std::string, int> op_counts(const onnx::ModelProto& m) {
  std::map<std::string, int> c;
  for (const auto& n : m.graph().node()) c[n.op_type()]++;
  return c;
}
const onnx::TensorProto* initializer(const onnx::ModelProto& m, const std::string& name) {
  for (const auto& t : m.graph().initializer())
    if (t.name() == name) return &t;
  return nullptr;
}
}  // namespace

TEST_CASE("export: ONNX QDQ graph passes the checker and holds the expected nodes",
          "[export][onnx]") {
  auto model = make_trained_like(kPico, 3, mixed_choices(kPico, 12), 12, kImg);
  ExportOptions o;
  o.imgsz = kImg;
  const IrModel ir = model_to_ir(model, o);
  OnnxOptions raw;
  raw.decoded = false;
  onnx::ModelProto m;
  REQUIRE(m.ParseFromString(onnx_bytes(ir, raw)));
  CHECK_NOTHROW(onnx::checker::check_model(m));
  REQUIRE(m.opset_import_size() == 1);
  CHECK(m.opset_import(0).version() == 13);

  // Expected: one Q(-Clip)-DQ per distinct (value, grid) read by a quantized conv, one weight DQ
  // per quantized conv, a Clip per sub-8-bit grid and per ReLU6.
  std::set<std::tuple<int, int, float, int>> grids;
  int qweights = 0, sub8 = 0, relu6 = 0;
  for (const auto& n : ir.nodes) {
    if (n.op != IrOp::kConv) continue;
    const IrConv& c = ir.convs[size_t(n.conv)];
    if (c.w_bits != 32) ++qweights;
    if (c.act == rt::Activation::kRelu6) ++relu6;
    if (!c.in_grid.is_float() &&
        grids.insert({n.inputs[0], c.in_grid.bits, c.in_grid.scale, c.in_grid.zero_point}).second &&
        c.in_grid.bits < 8)
      ++sub8;
  }
  auto counts = op_counts(m);
  CHECK(counts["QuantizeLinear"] == int(grids.size()));
  CHECK(counts["DequantizeLinear"] == int(grids.size()) + qweights);
  CHECK(counts["Clip"] == sub8 + relu6);
  CHECK(counts["Conv"] == int(ir.convs.size()));
  CHECK(grids.size() > 0);
  CHECK(qweights > 0);
  CHECK(sub8 > 0);

  // Weight DQs: per channel on axis 0, int8 codes equal to the IR's.
  int checked = 0;
  for (const auto& n : m.graph().node()) {
    if (n.op_type() != "DequantizeLinear") continue;
    const onnx::TensorProto* q = initializer(m, n.input(0));
    if (!q) continue;  // an activation DQ
    REQUIRE(q->data_type() == onnx::TensorProto::INT8);
    REQUIRE(n.attribute_size() == 1);
    CHECK(n.attribute(0).name() == "axis");
    CHECK(n.attribute(0).i() == 0);
    const onnx::TensorProto* s = initializer(m, n.input(1));
    REQUIRE(s);
    REQUIRE(s->dims_size() == 1);
    CHECK(s->dims(0) == q->dims(0));
    const std::string site = n.input(0).substr(0, n.input(0).find(".weight_q"));
    for (const auto& c : ir.convs)
      if (c.name == site) {
        CHECK(std::vector<int8_t>(q->raw_data().begin(), q->raw_data().end()) == c.codes);
        ++checked;
      }
  }
  CHECK(checked == qweights);
  // Activation Q: uint8 zero points.
  for (const auto& n : m.graph().node())
    if (n.op_type() == "QuantizeLinear") {
      const onnx::TensorProto* z = initializer(m, n.input(2));
      REQUIRE(z);
      CHECK(z->data_type() == onnx::TensorProto::UINT8);
    }
  // Raw head outputs [1, 64 + nc, h, w] at strides 8, 16, 32.
  REQUIRE(m.graph().output_size() == 3);
  for (int l = 0; l < 3; ++l) {
    const auto& shape = m.graph().output(l).type().tensor_type().shape();
    REQUIRE(shape.dim_size() == 4);
    CHECK(shape.dim(1).dim_value() == 64 + 3);
    CHECK(shape.dim(2).dim_value() == kImg / (8 << l));
  }
}

TEST_CASE("export: ONNX float form holds weights on their grid and no Q/DQ", "[export][onnx]") {
  auto model = make_trained_like(kPico, 3, mixed_choices(kPico, 13), 13, kImg);
  ExportOptions o;
  o.imgsz = kImg;
  const IrModel ir = model_to_ir(model, o);
  OnnxOptions oo;
  oo.float_weights = true;
  onnx::ModelProto m;
  REQUIRE(m.ParseFromString(onnx_bytes(ir, oo)));
  CHECK_NOTHROW(onnx::checker::check_model(m));
  auto counts = op_counts(m);
  CHECK(counts["QuantizeLinear"] == 0);
  CHECK(counts["DequantizeLinear"] == 0);
  int checked = 0;
  for (const auto& c : ir.convs) {
    const onnx::TensorProto* w = initializer(m, c.name + ".weight");
    REQUIRE(w);
    REQUIRE(w->data_type() == onnx::TensorProto::FLOAT);
    if (c.w_bits == 32) continue;
    std::vector<float> v(size_t(w->raw_data().size() / 4));
    std::memcpy(v.data(), w->raw_data().data(), w->raw_data().size());
    const size_t per = v.size() / size_t(c.out_c);
    const float lo = c.w_bits == 1 ? -1.0f : -float(1 << (c.w_bits - 1));
    const float hi = c.w_bits == 1 ? 1.0f : float((1 << (c.w_bits - 1)) - 1);
    size_t bad = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      const float q = v[i] / c.w_scale[i / per];
      if (std::fabs(q - std::nearbyint(q)) >= 1e-3f || q < lo - 1e-3f || q > hi + 1e-3f) ++bad;
    }
    CHECK(bad == 0);
    ++checked;
  }
  CHECK(checked > 0);
}

TEST_CASE("export: ONNX of a YOLOv5 model outputs [1, na, h, w, 5 + nc]", "[export][onnx]") {
  ArchRecipe r;
  r.w_bits = {8};
  r.a_bits = {8};
  auto model = make_trained_like(kV5, 3, random_choices(kV5, 3, r, 14), 14, kImg);
  ExportOptions o;
  o.imgsz = kImg;
  OnnxOptions raw;
  raw.decoded = false;
  onnx::ModelProto m;
  REQUIRE(m.ParseFromString(onnx_bytes(model_to_ir(model, o), raw)));
  REQUIRE(m.graph().output_size() == 3);
  const auto& shape = m.graph().output(0).type().tensor_type().shape();
  REQUIRE(shape.dim_size() == 5);
  CHECK(shape.dim(1).dim_value() == 3);
  CHECK(shape.dim(4).dim_value() == 8);
}
#endif
