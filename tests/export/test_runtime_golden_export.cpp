// The golden models of tests/data/runtime_golden/ cannot rot silently:
// - regenerating them (golden_models.cpp, then export) gives the committed package bytes, so the
//   files are what the exporter of this tree makes;
// - the LibTorch fake-quant model computes what the runtime computes from the committed package
//   (the tolerances of test_export_equivalence.cpp), and that run is the recorded one, so the
//   recorded bits are right, not only stable.
// test_runtime_golden (tests/runtime) then checks the recorded bits on every runtime build.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "deploy/runtime/session.h"
#include "tests/export/golden_models.h"
#include "tests/runtime/golden.h"

using namespace mixnas;
using namespace mixnas::exporter::testing;
using torch::Tensor;

namespace {

// As test_export_equivalence.cpp (docs/export.md "Equivalence"): raw head outputs within
// kAtol + kRtol |torch| on all but kMaxOffFraction of the elements.
constexpr double kAtol = 1e-3, kRtol = 1e-3;
constexpr double kMaxOffFraction = 0.01;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  INFO(path);
  REQUIRE(in.good());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

rt::golden::Record load_golden(const std::string& name) {
  const std::string path = golden_dir() + "/" + name + ".golden";
  return rt::golden::parse(read_all(path), path);
}

Tensor hwc_to_nchw(const rt::RawOutput& o) {
  return torch::from_blob(const_cast<float*>(o.values.data()), {o.shape[0], o.shape[1], o.shape[2]},
                          torch::kFloat)
      .permute({2, 0, 1})
      .unsqueeze(0)
      .clone();
}

bool same_box(const rt::Detection& d, int64_t cls, const Tensor& box) {
  if (d.class_id != cls) return false;
  const float b[4] = {d.x1, d.y1, d.x2, d.y2};
  for (int c = 0; c < 4; ++c)
    if (std::fabs(b[c] - box[c].item<float>()) > 1.0f) return false;
  return true;
}

}  // namespace

TEST_CASE("runtime golden: regenerated packages are the committed bytes", "[export][golden]") {
  REQUIRE(golden_models().size() == 2);
  for (const auto& m : golden_models()) {
    INFO(m.name << ": " << m.description);
    auto model = make_golden_model(m.name);
    const std::string made = exporter::export_mxr(model, golden_export_options());
    const std::string committed = read_all(golden_dir() + "/" + m.name + ".mxr");
    size_t first = 0;
    while (first < std::min(made.size(), committed.size()) && made[first] == committed[first])
      ++first;
    INFO("made " << made.size() << " bytes, committed " << committed.size()
                 << ", first difference at byte " << first
                 << " (regenerate with mixnas_write_runtime_golden tests/data/runtime_golden if "
                    "the change is intended)");
    CHECK(made == committed);
  }
}

TEST_CASE("runtime golden: the LibTorch model computes the recorded outputs", "[export][golden]") {
  const exporter::ExportOptions options = golden_export_options();
  size_t total_detections = 0;
  for (const auto& m : golden_models()) {
    INFO(m.name);
    const std::string package = golden_dir() + "/" + m.name + ".mxr";
    auto rt_model = rt::Model::load(package);
    const rt::golden::Record golden = load_golden(m.name);
    CHECK(rt::golden::compare(rt_model->graph(), golden,
                              rt::golden::record_run(rt_model, golden.input_seed)) == "");
    rt::SessionOptions keep_raw;  // the raw head outputs, compared with LibTorch's below
    keep_raw.head = rt::HeadMemory::kRaw;
    rt::Session session(rt_model, keep_raw);
    rt::golden::set_input(
        session, rt::golden::make_input_image(kGoldenImgsz, kGoldenImgsz, kGoldenInputSeed));
    session.run_graph();
    const std::vector<rt::RawOutput> outs = session.outputs();
    auto model = make_golden_model(m.name);
    std::vector<Tensor> raw;
    {
      torch::NoGradGuard no_grad;
      raw = model->forward_raw(golden_input_tensor());
    }
    // Runtime outputs per level: box distribution [h, w, 64], then class logits [h, w, nc]; then
    // the NMS rows.
    REQUIRE(outs.size() >= 2 * raw.size());
    int64_t n = 0, off = 0;
    double max_abs = 0;
    for (size_t l = 0; l < raw.size(); ++l) {
      const int64_t box_c = outs[2 * l].shape[2];
      const Tensor parts[2] = {raw[l].narrow(1, 0, box_c),
                               raw[l].narrow(1, box_c, raw[l].size(1) - box_c)};
      for (int k = 0; k < 2; ++k) {
        const Tensor got = hwc_to_nchw(outs[2 * l + size_t(k)]);
        REQUIRE(got.sizes() == parts[k].sizes());
        const Tensor d = (got - parts[k]).abs();
        n += d.numel();
        off += (d > kAtol + kRtol * parts[k].abs()).sum().item<int64_t>();
        max_abs = std::max(max_abs, d.max().item<double>());
      }
    }
    INFO(off << " of " << n << " raw values off, max |d| " << max_abs);
    CHECK(double(off) <= kMaxOffFraction * double(n));
    // The recorded decoding (boxes in input pixels and class scores per anchor) is LibTorch's
    // decoding of its own raw outputs, within the same tolerances.
    const supernet::Predictions p = model->decode(raw);
    const Tensor rows = torch::cat({p.boxes[0], p.scores[0]}, 1);
    REQUIRE(int64_t(golden.decoded.size()) == rows.numel());
    const Tensor decoded =
        torch::from_blob(const_cast<float*>(golden.decoded.data()), rows.sizes(), torch::kFloat);
    const Tensor dd = (decoded - rows).abs();
    INFO((dd > kAtol + kRtol * rows.abs()).sum().item<int64_t>()
         << " of " << dd.numel() << " decoded values off, max |d| " << dd.max().item<double>());
    CHECK((dd > kAtol + kRtol * rows.abs()).sum().item<double>() <=
          kMaxOffFraction * double(dd.numel()));
    // Every recorded detection is one of LibTorch's decoded anchors above the threshold: its class
    // scores best there, its score and box are that anchor's. (Which of several equal-score boxes
    // NMS keeps is a tie-break that torch's unstable argsort and the runtime's stable sort may
    // settle differently; test_runtime_yolo checks the runtime's NMS itself.)
    const auto [best, cls] = p.scores[0].max(1);
    for (const auto& d : golden.detections) {
      CHECK(d.score > options.conf);
      bool found = false;
      for (int64_t k = 0; k < rows.size(0) && !found; ++k) {
        found = cls[k].item<int64_t>() == d.class_id &&
                std::fabs(best[k].item<double>() - d.score) <= 1e-4 &&
                same_box(d, d.class_id, p.boxes[0][k]);
      }
      INFO("detection class " << d.class_id << " score " << d.score << " box " << d.x1 << " "
                              << d.y1 << " " << d.x2 << " " << d.y2);
      CHECK(found);
    }
    total_detections += golden.detections.size();
  }
  // Detections are part of what the golden runs pin down.
  CHECK(total_detections > 0);
}
