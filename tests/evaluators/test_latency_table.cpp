// The latency table: calibration known answers (including the guard against a slope that would
// reverse the latency term), predictions, JSON round trip and errors naming the file.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.h"
#include "evaluators/latency_table.h"

using namespace mixnas;
using namespace mixnas::eval;
using Catch::Matchers::Contains;

namespace {
std::string temp_path(const std::string& name) {
  std::random_device rd;
  return (std::filesystem::temp_directory_path() /
          ("mixnas-lut-" + std::to_string(rd()) + "-" + name))
      .string();
}
}  // namespace

TEST_CASE("latency table: calibration recovers an exact line", "[lut]") {
  LatencyTable t("dev", "0.1.0", 1, 20);
  // measured = 1.5 * sum + 0.25
  t.calibrate({{1.0, 1.75}, {2.0, 3.25}, {4.0, 6.25}});
  CHECK(t.calibration().scale == Approx(1.5));
  CHECK(t.calibration().offset_ms == Approx(0.25));
  CHECK(t.calibration().mape_pct == Approx(0.0).margin(1e-9));
  CHECK(t.calibration().n == 3);
  t.put("a", {0.5, 0.4, 0.6, "k", 10, 20});
  t.put("b", {1.5, 1.4, 1.6, "k", 10, 20});
  CHECK(t.raw_sum_ms({"a", "b"}) == Approx(2.0));
  CHECK(t.predict_ms({"a", "b"}) == Approx(3.25));
  CHECK_THROWS_WITH(t.at("c"), Contains("c"));
}

TEST_CASE("latency table: a falling fit is replaced by the fit through the origin", "[lut]") {
  LatencyTable t("dev", "0.1.0", 1, 20);
  // Whole-model times that fall while the layer sums rise (noise-dominated tiny layers): the
  // least-squares slope is negative. Through the origin: scale = sum(xy) / sum(xx).
  const std::vector<std::pair<double, double>> pairs = {{0.10, 0.50}, {0.20, 0.45}, {0.30, 0.40}};
  t.calibrate(pairs);
  const double sxy = 0.10 * 0.50 + 0.20 * 0.45 + 0.30 * 0.40, sxx = 0.01 + 0.04 + 0.09;
  CHECK(t.calibration().scale == Approx(sxy / sxx));
  CHECK(t.calibration().scale > 0);
  CHECK(t.calibration().offset_ms == 0);
  // A cheaper layer set is still predicted cheaper.
  t.put("cheap", {0.1, 0.1, 0.1, "k", 1, 1});
  t.put("dear", {0.2, 0.2, 0.2, "k", 1, 1});
  CHECK(t.predict_ms({"cheap"}) < t.predict_ms({"dear"}));
  // MAPE is reported for the fit that is used.
  double mape = 0;
  for (const auto& [x, y] : pairs) mape += std::abs(t.calibration().scale * x - y) / y * 100.0;
  CHECK(t.calibration().mape_pct == Approx(mape / 3));
}

TEST_CASE("latency table: sums too close together fit the offset alone", "[lut]") {
  LatencyTable t("dev", "0.1.0", 1, 20);
  // Sums within 10% of each other and noisy times: least squares would give a steep slope and a
  // negative offset (here 3.0 x sum - 1.6); the mean offset with the table's scale is kept.
  const std::vector<std::pair<double, double>> pairs = {
      {0.95, 1.25}, {1.00, 1.45}, {1.05, 1.55}, {0.98, 1.30}};
  t.calibrate(pairs);
  CHECK(t.calibration().scale == 1.0);
  double offset = 0;
  for (const auto& [x, y] : pairs) offset += (y - x) / 4;
  CHECK(t.calibration().offset_ms == Approx(offset));
  CHECK(t.calibration().n == 4);
  // Sums spread wider than kMinCalibrationSpread get their slope.
  LatencyTable wide("dev", "0.1.0", 1, 20);
  wide.calibrate({{0.8, 1.0}, {1.0, 1.3}, {1.2, 1.6}});
  CHECK(wide.calibration().scale == Approx(1.5));
}

TEST_CASE("latency table: JSON round trip and malformed files", "[lut]") {
  LatencyTable t("x86_64-test", "0.1.0", 2, 7);
  t.put("conv_a", {0.125, 0.1, 0.15, "conv_f32", 1088, 32768, 4352});
  t.calibrate({{1.0, 2.0}, {2.0, 3.0}});
  t.store_calibration("model-1");
  const std::string path = temp_path("t.json");
  t.save(path);
  LatencyTable u = LatencyTable::load(path);
  CHECK(u.matches("x86_64-test", "0.1.0", 2));
  CHECK_FALSE(u.matches("x86_64-test", "0.2.0", 2));
  CHECK(u.at("conv_a").median_ms == 0.125);
  CHECK(u.at("conv_a").kernel == "conv_f32");
  CHECK(u.at("conv_a").arena_bytes == 32768);
  CHECK(u.at("conv_a").resident_weight_bytes == 4352);
  CHECK(u.use_calibration("model-1"));
  CHECK(u.calibration().scale == Approx(1.0));
  CHECK(u.calibration().offset_ms == Approx(1.0));
  CHECK_FALSE(u.use_calibration("model-2"));
  {
    // A table written before resident_weight_bytes existed: read as the packed bytes.
    std::ofstream out(path, std::ios::trunc);
    out << R"({"format": "mixnas-lut-1", "device_id": "d", "runtime_version": "0.1.0",
               "threads": 1, "runs": 5, "entries": {"k": {"median_ms": 0.5, "min_ms": 0.4,
               "p90_ms": 0.6, "kernel": "x", "weight_bytes": 96, "arena_bytes": 8}}})";
  }
  CHECK(LatencyTable::load(path).at("k").resident_weight_bytes == 96);
  {
    std::ofstream out(path, std::ios::trunc);
    out << "{\"format\": \"mixnas-lut-1\", \"entries\": ";
  }
  CHECK_THROWS_WITH(LatencyTable::load(path), Contains(path));
  std::remove(path.c_str());
  CHECK_THROWS_WITH(LatencyTable::load(path), Contains(path));
}

TEST_CASE("latency table: a predicted table against a measured one, per layer", "[lut]") {
  LatencyTable predicted("model:rpi4-model:cortex-a72", "0.1.0", 1, 1);
  predicted.set_provenance({{"source", "predicted"}, {"text", "predicted for cortex-a72"}});
  LatencyTable measured("rpi4", "0.1.0", 1, 20);
  auto entry = [](double ms, const char* kernel) {
    LatencyEntry e;
    e.median_ms = ms;
    e.kernel = kernel;
    return e;
  };
  predicted.put("a", entry(1.2, "k8"));  // +20%
  predicted.put("b", entry(0.5, "k2"));  // -50%
  predicted.put("c", entry(9.0, "k8"));  // not measured: left out
  measured.put("a", entry(1.0, "k8"));
  measured.put("b", entry(1.0, "k1"));
  measured.put("d", entry(3.0, "k8"));  // not predicted: left out
  const TableComparison c = compare_tables(predicted, measured);
  REQUIRE(c.layers.size() == 2);
  CHECK(c.layers[0].key == "a");
  CHECK(c.layers[0].err_pct == Approx(20.0));
  CHECK(c.layers[1].err_pct == Approx(-50.0));
  CHECK(c.layers[1].predicted_kernel == "k2");
  CHECK(c.layers[1].measured_kernel == "k1");
  CHECK(c.mape_pct == Approx(35.0));
  CHECK(c.max_err_pct == Approx(50.0));
  CHECK(compare_tables(predicted, LatencyTable("x", "0.1.0", 1, 1)).mape_pct == -1);

  // The provenance survives save and load; a measured table has none that says predicted.
  const std::string path = temp_path("provenance.json");
  predicted.save(path);
  const LatencyTable back = LatencyTable::load(path);
  CHECK(back.predicted());
  CHECK(back.model() == "predicted for cortex-a72");
  CHECK(back.provenance()["source"] == "predicted");
  measured.save(path);
  CHECK_FALSE(LatencyTable::load(path).predicted());
  std::remove(path.c_str());
}
