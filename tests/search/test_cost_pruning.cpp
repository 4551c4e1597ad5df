// Dominated bit-widths (CostModel::dominated_bits): a lower bit-width leaves a site's candidates
// only when the table shows no gain for it there, in time or in memory.
#include <catch2/catch.hpp>

#include <algorithm>

#include "evaluators/latency_table.h"
#include "search/cost.h"
#include "supernet/model.h"

using namespace mixnas;
namespace sn = mixnas::supernet;

namespace {

sn::YoloModel pico() {
  sn::BuildOptions o;
  o.nc = 3;
  o.search_space = sn::parse_search_space(YAML::Load(R"(
activations: [relu, silu]
w_bits: [2, 4, 8]
a_bits: [4, 8]
rules:
  - {layers: [0, 0], w_bits: [8], a_bits: [8]}
)"),
                                          "space");
  return sn::build_model(std::string(MIXNAS_SOURCE_DIR) + "/configs/models/yolov8-pico.yaml", o);
}

// A table as a CPU whose low-bit layers all run the int8 kernel would measure it: every entry of
// a site the same kernel, time and memory, up to noise of a few percent.
eval::LatencyTable int8_fallback_table(const std::vector<eval::LayerSignature>& sigs) {
  eval::LatencyTable t("test-device", "test", 1, 5);
  int i = 0;
  for (const auto& s : sigs) {
    eval::LatencyEntry e;
    e.kernel = s.w_bits == 32 ? "f32_gemm" : "qu8_gemm";
    e.median_ms = 0.1 * (1.0 + 0.02 * (i++ % 3 - 1));  // +-2% noise
    e.weight_bytes = static_cast<int64_t>(s.in_c) * s.out_c * s.kernel * s.kernel * s.w_bits / 8;
    e.resident_weight_bytes = static_cast<int64_t>(s.in_c) * s.out_c * s.kernel * s.kernel;
    e.arena_bytes = 1000;
    t.put(s.key(), e);
  }
  return t;
}

bool contains(const std::vector<int>& v, int x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

TEST_CASE("bit-widths that run the int8 kernel with int8 memory are dropped", "[cost]") {
  sn::YoloModel model = pico();
  search::CostModel cost(model, 64);
  eval::LatencyTable table = int8_fallback_table(cost.signatures());
  auto pruned = cost.dominated_bits(table, 0.05);
  // Every searchable site loses w2, w4 and a4; the fixed stem has nothing to lose.
  REQUIRE(pruned.size() == cost.sites().size() - 1);
  for (const auto& p : pruned) {
    CHECK(p.w_bits == std::vector<int>{8});
    CHECK(p.a_bits == std::vector<int>{8});
    CHECK(p.dropped_w_bits == std::vector<int>{2, 4});
    CHECK(p.dropped_a_bits == std::vector<int>{4});
  }
  // A negative margin keeps everything.
  CHECK(cost.dominated_bits(table, -1).empty());
}

TEST_CASE("a faster low-bit kernel or smaller memory keeps the candidate", "[cost]") {
  sn::YoloModel model = pico();
  search::CostModel cost(model, 64);
  const auto& site = cost.sites().at(3);
  eval::LatencyTable table = int8_fallback_table(cost.signatures());

  // At one site, W2 (with a4 and a8, silu only) runs a bit-serial kernel 30% faster.
  sn::ArchChoices c;
  for (int b : {4, 8}) {
    c[site.name] = {sn::Act::kSilu, 2, b};
    auto key = cost.signatures(c).at(3).key();
    eval::LatencyEntry e = table.at(key);
    e.kernel = "bitserial";
    e.median_ms *= 0.7;
    table.put(key, e);
  }
  // At another site, W4 holds half the resident bytes (a packed kernel) at the same speed.
  const auto& other = cost.sites().at(5);
  for (int b : {4, 8})
    for (auto act : {sn::Act::kRelu, sn::Act::kSilu}) {
      sn::ArchChoices o;
      o[other.name] = {act, 4, b};
      auto key = cost.signatures(o).at(5).key();
      eval::LatencyEntry e = table.at(key);
      e.resident_weight_bytes /= 2;
      table.put(key, e);
    }

  // Sites of the same geometry share table entries: they see the same changes.
  auto key_of = [&](const std::string& name, sn::Act act, int w, int b) {
    sn::ArchChoices c1;
    c1[name] = {act, w, b};
    auto sigs = cost.signatures(c1);
    for (size_t i = 0; i < cost.sites().size(); ++i)
      if (cost.sites()[i].name == name) return sigs[i].key();
    return std::string();
  };
  const std::string fast_w2 = key_of(site.name, sn::Act::kSilu, 2, 8);
  const std::string small_w4 = key_of(other.name, sn::Act::kSilu, 4, 8);
  auto pruned = cost.dominated_bits(table, 0.05);
  int checked = 0;
  for (const auto& p : pruned) {
    if (key_of(p.site, sn::Act::kSilu, 2, 8) == fast_w2) {
      ++checked;
      // W2 is faster somewhere: kept; W4 still gains nothing over W8.
      CHECK(contains(p.w_bits, 2));
      CHECK(contains(p.dropped_w_bits, 4));
    } else if (key_of(p.site, sn::Act::kSilu, 4, 8) == small_w4) {
      ++checked;
      CHECK(contains(p.w_bits, 4));
      CHECK(contains(p.dropped_w_bits, 2));  // w2 holds no less than w4 there
    } else {
      CHECK(p.dropped_w_bits == std::vector<int>{2, 4});
    }
  }
  CHECK(checked >= 2);
  // A faster kernel below the margin does not count.
  auto strict = cost.dominated_bits(table, 0.5);
  for (const auto& p : strict)
    if (key_of(p.site, sn::Act::kSilu, 2, 8) == fast_w2) CHECK(contains(p.dropped_w_bits, 2));
}
