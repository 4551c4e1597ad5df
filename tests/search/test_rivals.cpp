// The parts of the rival strategies: the NWOT zero-cost proxy (search/nwot.h) against a kernel
// matrix computed by hand and its wiring to the model's activations; the Pareto helpers
// (search/pareto.h) the evolution strategy and the study rank with; and moving an architecture
// under a latency budget (search/weight_sharing.h).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <memory>
#include <random>

#include "search/nwot.h"
#include "search/pareto.h"
#include "search/strategy.h"
#include "search/weight_sharing.h"
#include "supernet/activation_observer.h"
#include "supernet/model.h"

using namespace mixnas;
using namespace mixnas::search;

namespace {

// Three images, four units. By hand: agreements (4 - Hamming distance)
//   c0 = 1 0 1 1, c1 = 1 1 0 1: they differ at units 1 and 2   -> K01 = 2
//   c2 = 0 0 0 0: differs from c0 at 3 units, from c1 at 3      -> K02 = K12 = 1
// K = [[4 2 1] [2 4 1] [1 1 4]], det K = 4*15 - 2*7 + 1*(-2) = 44.
torch::Tensor hand_codes() {
  return torch::tensor({1, 0, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0}, torch::kFloat32).reshape({3, 4});
}

}  // namespace

TEST_CASE("NWOT kernel and score of a hand-computed batch", "[nwot]") {
  const torch::Tensor k = nwot_kernel(hand_codes());
  const torch::Tensor want =
      torch::tensor({4, 2, 1, 2, 4, 1, 1, 1, 4}, torch::kFloat64).reshape({3, 3});
  CHECK(torch::equal(k, want));
  CHECK(nwot_logdet(k) == Approx(std::log(44.0)).epsilon(1e-12));
}

TEST_CASE("NwotKernel sums the codes of every activation output", "[nwot]") {
  // The same units as activation outputs (positive -> 1), split over two layers of 2 units.
  const torch::Tensor outputs = hand_codes() * 2.5 - 0.5;  // 1 -> 2.0, 0 -> -0.5
  NwotKernel kernel(3);
  kernel.add(outputs.slice(1, 0, 2).reshape({3, 2, 1, 1}));
  kernel.add(outputs.slice(1, 2, 4).reshape({3, 1, 2, 1}));
  CHECK(kernel.units() == 4);
  CHECK(kernel.score() == Approx(std::log(44.0)).epsilon(1e-12));
}

TEST_CASE("NWOT of two images with the same codes is -inf (singular kernel)", "[nwot]") {
  const torch::Tensor codes = torch::tensor({1, 0, 1, 1, 0, 1}, torch::kFloat32).reshape({2, 3});
  CHECK(nwot_logdet(nwot_kernel(codes)) == -std::numeric_limits<double>::infinity());
}

TEST_CASE("nwot_score observes every activation of the model", "[nwot]") {
  torch::manual_seed(0);
  supernet::BuildOptions o;
  o.nc = 3;
  auto model =
      supernet::build_model(std::string(MIXNAS_SOURCE_DIR) + "/configs/models/yolov8-pico.yaml", o);
  const torch::Tensor images = torch::rand({4, 3, 64, 64});
  int64_t outputs = 0, units = 0;
  NwotKernel kernel(4);
  {
    supernet::ActivationObserver observer([&](const torch::Tensor& y) {
      ++outputs;
      units += y[0].numel();
      kernel.add(y);
    });
    model->eval();
    torch::NoGradGuard no_grad;
    model->forward_raw(images);
  }
  CHECK(outputs > 10);
  CHECK(kernel.units() == units);
  // Every image agrees with itself on every unit.
  for (int i = 0; i < 4; ++i) CHECK(kernel.kernel()[i][i].item<double>() == double(units));
  CHECK(nwot_score(model, images) == Approx(kernel.score()).epsilon(1e-9));
  // Nothing is observed once the observer is gone.
  model->forward_raw(images);
  CHECK(kernel.units() == units);
}

TEST_CASE("Pareto front: monotone, ties and best under a budget", "[pareto]") {
  const std::vector<CostValue> p = {{1, 0.1}, {2, 0.05}, {2, 0.3}, {3, 0.3}, {4, 0.5}, {0.5, 0}};
  const std::vector<size_t> front = {5, 0, 2, 4};
  CHECK(pareto_front(p) == front);
  // The first ranked point under a budget, -1 when none.
  const double inf = std::numeric_limits<double>::infinity();
  auto best = [&](double low, double high) {
    const std::vector<size_t> r = ranked_between(p, low, high);
    return r.empty() ? -1 : static_cast<int>(r.front());
  };
  CHECK(best(-inf, 2.5) == 2);
  CHECK(best(-inf, 3.5) == 2);  // (3, 0.3) is no better than (2, 0.3)
  CHECK(best(-inf, 0.4) == -1);
  // Within a band: the best of costs 2..3 is (2, 0.3); of 1..1.9 the only point (1, 0.1); none in
  // 4.1..5; a band over everything is the best under its top.
  CHECK(best(2, 3) == 2);
  CHECK(best(1, 1.9) == 0);
  CHECK(best(2.5, 3.5) == 3);
  CHECK(best(4.1, 5) == -1);
  CHECK(best(0, 4) == best(-inf, 4));
  // Ranked: by value, equal values by cost.
  CHECK(ranked_between(p, 1, 4) == std::vector<size_t>{4, 2, 3, 0, 1});
  CHECK(ranked_between(p, 0, 2) == std::vector<size_t>{2, 0, 1, 5});
  CHECK(ranked_between(p, 4.1, 5).empty());
  // Each group's best, groups in order of appearance, of equals the first (finetune_top's kept
  // candidate: a later rank wins only when strictly better).
  const std::vector<std::string> groups = {"searched", "searched", "b0.8", "b0.8", "b0.9", "b0.8"};
  CHECK(best_per_group(groups, {0.12, 0.13, 0.2, 0.2, 0.1, 0.19}) == std::vector<size_t>{1, 2, 4});
  CHECK(best_per_group(groups, {0.12, 0.11, 0.1, 0.2, 0.3, 0.15}) == std::vector<size_t>{0, 3, 4});
  CHECK(best_per_group({}, {}).empty());
  double last = -1;
  for (double budget : {0.5, 1.0, 2.0, 3.0, 4.0}) {
    const int i = best(-inf, budget);
    REQUIRE(i >= 0);
    CHECK(p[size_t(i)].second >= last);
    last = p[size_t(i)].second;
  }
}

TEST_CASE("hypervolume against a reference point", "[pareto]") {
  const std::vector<CostValue> two = {{1, 0.5}, {2, 0.8}};
  CHECK(hypervolume(two, 3, 0) == Approx(1.3));
  // A dominated point and points beyond the reference change nothing.
  const std::vector<CostValue> more = {{1, 0.5}, {2, 0.8}, {2.5, 0.6}, {4, 0.9}, {0.5, -0.1}};
  CHECK(hypervolume(more, 3, 0) == Approx(1.3));
  CHECK(hypervolume(std::vector<CostValue>{}, 3, 0) == 0);
}

namespace {

// yolov8-pico with relu or silu at every activation site, 8 bits, and a table in which a silu
// layer takes 0.2 ms and a relu layer 0.1 ms (bare convs 0.1 ms).
struct TwoActSpace {
  supernet::YoloModel model{nullptr};
  std::unique_ptr<CostModel> cost;
  TwoActSpace() {
    supernet::BuildOptions o;
    o.nc = 3;
    o.search_space = supernet::parse_search_space(
        YAML::Load("{activations: [relu, silu], w_bits: [8], a_bits: [8]}"), "space");
    model = supernet::build_model(
        std::string(MIXNAS_SOURCE_DIR) + "/configs/models/yolov8-pico.yaml", o);
    cost = std::make_unique<CostModel>(model, 64);
    eval::LatencyTable t("test-device", "test", 1, 5);
    for (const auto& s : cost->signatures()) {
      eval::LatencyEntry e;
      e.kernel = "qu8_gemm";
      e.median_ms = s.key().find("silu") != std::string::npos ? 0.2 : 0.1;
      t.put(s.key(), e);
    }
    cost->attach(t);
  }
};

}  // namespace

TEST_CASE("repair_to_budget moves an architecture under its budget, or says it cannot",
          "[weight_sharing]") {
  TwoActSpace space;
  const CostModel& cost = *space.cost;
  for (const auto& s : cost.sites()) CHECK(site_candidates(s).size() == (s.has_act ? 2u : 1u));
  const supernet::ArchChoices all_silu = cost.reference_choices();
  const double silu_ms = cost.latency_ms(all_silu);
  std::mt19937_64 rng(1);
  supernet::ArchChoices c = all_silu;
  REQUIRE(repair_to_budget(c, cost, 0.8 * silu_ms, rng));
  CHECK(cost.latency_ms(c) <= 0.8 * silu_ms);
  CHECK(cost.latency_ms(c) > 0.6 * silu_ms);  // it stops once the budget is met
  CHECK(arch_key(c) != arch_key(all_silu));
  // Below the all-relu model nothing meets the budget; every site then runs relu.
  supernet::ArchChoices d = all_silu;
  CHECK_FALSE(repair_to_budget(d, cost, 0.1 * silu_ms, rng));
  for (const auto& [site, choice] : d)
    if (choice.act) CHECK(*choice.act == supernet::Act::kRelu);
}

TEST_CASE("repair_by_probability moves the least probable sites first, and only as needed",
          "[weight_sharing]") {
  TwoActSpace space;
  const CostModel& cost = *space.cost;
  const supernet::ArchChoices all_silu = cost.reference_choices();
  const double silu_ms = cost.latency_ms(all_silu);
  // Every activation site prefers silu at 0.9, but two of them only at 0.55: with a budget one
  // and a half relu savings below all-silu, exactly those two move to relu.
  std::vector<supernet::SiteView> views = space.model->sites();
  std::vector<std::string> unsure;
  for (supernet::SiteView& v : views) {
    if (v.acts.size() != 2) continue;
    const bool weak = unsure.size() < 2 && v.name.find("model.4") == 0;
    if (weak) unsure.push_back(v.name);
    v.act_probs = weak ? torch::tensor({0.45, 0.55}) : torch::tensor({0.1, 0.9});
  }
  REQUIRE(unsure.size() == 2);
  supernet::ArchChoices one_relu = all_silu;
  one_relu[unsure[0]].act = supernet::Act::kRelu;
  const double saving = silu_ms - cost.latency_ms(one_relu);
  REQUIRE(saving > 0);
  supernet::ArchChoices c = all_silu;
  const double budget = silu_ms - 1.5 * saving;
  CHECK(repair_by_probability(c, views, cost, budget) == 2);
  CHECK(cost.latency_ms(c) <= budget);
  for (const auto& [site, choice] : c) {
    if (!choice.act) continue;
    const bool moved = site == unsure[0] || site == unsure[1];
    CHECK(*choice.act == (moved ? supernet::Act::kRelu : supernet::Act::kSilu));
  }
  // Under budget already: nothing moves.
  supernet::ArchChoices d = all_silu;
  CHECK(repair_by_probability(d, views, cost, silu_ms) == 0);
  CHECK(arch_key(d) == arch_key(all_silu));
}

TEST_CASE("repair_by_probability gives back the slack of a large last move", "[weight_sharing]") {
  TwoActSpace space;
  CostModel& cost = *space.cost;
  // 3x3 silu layers take 1.0 ms (relu 0.1): moving one saves 0.9 ms, a 1x1 layer 0.1 ms.
  eval::LatencyTable t("test-device", "test", 1, 5);
  for (const auto& s : cost.signatures()) {
    eval::LatencyEntry e;
    e.kernel = "qu8_gemm";
    const bool silu = s.key().find("silu") != std::string::npos;
    e.median_ms = silu ? (s.key().find("_k3_") != std::string::npos ? 1.0 : 0.2) : 0.1;
    t.put(s.key(), e);
  }
  cost.attach(t);
  // Two unsure 1x1 sites (silu 0.51: cheapest per ms saved), one unsure 3x3 site (silu 0.6),
  // every other site sure of silu (0.99).
  std::vector<supernet::SiteView> views = space.model->sites();
  std::vector<std::string> small, large;
  std::map<std::string, int64_t> kernel;
  for (const auto& s : cost.sites()) kernel[s.name] = s.geometry.kernel;
  for (supernet::SiteView& v : views) {
    if (v.acts.size() != 2) continue;
    v.act_probs = torch::tensor({0.01, 0.99});
    if (kernel[v.name] == 1 && small.size() < 2) {
      small.push_back(v.name);
      v.act_probs = torch::tensor({0.49, 0.51});
    } else if (kernel[v.name] == 3 && large.empty()) {
      large.push_back(v.name);
      v.act_probs = torch::tensor({0.4, 0.6});
    }
  }
  REQUIRE(small.size() == 2);
  REQUIRE(large.size() == 1);
  const supernet::ArchChoices all_silu = cost.reference_choices();
  const double silu_ms = cost.latency_ms(all_silu);
  supernet::ArchChoices one = all_silu;
  one[large[0]].act = supernet::Act::kRelu;
  const double large_saving = silu_ms - cost.latency_ms(one);
  one = all_silu;
  one[small[0]].act = supernet::Act::kRelu;
  const double small_saving = silu_ms - cost.latency_ms(one);
  REQUIRE(large_saving > 5 * small_saving);
  // Missing: the large saving and half a small one. The repair moves both small sites, then the
  // large one; the first small move is then more than needed and is given back.
  const double budget = silu_ms - large_saving - 0.5 * small_saving;
  supernet::ArchChoices c = all_silu;
  CHECK(repair_by_probability(c, views, cost, budget) == 2);
  CHECK(cost.latency_ms(c) <= budget);
  int relu_sites = 0;
  for (const auto& [site, choice] : c)
    relu_sites += choice.act && *choice.act == supernet::Act::kRelu;
  CHECK(relu_sites == 2);
  CHECK(*c.at(large[0]).act == supernet::Act::kRelu);
  CHECK((*c.at(small[0]).act == supernet::Act::kRelu) !=
        (*c.at(small[1]).act == supernet::Act::kRelu));
}
