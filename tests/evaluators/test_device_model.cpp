// The device model (evaluators/device_model): loop finding, llvm-mca figures, the roofline bound,
// the cache and the errors a user sees.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "evaluators/device_model/asm_loops.h"
#include "evaluators/device_model/device_model.h"
#include "evaluators/device_model/fit.h"
#include "evaluators/evaluator_factory.h"

using namespace mixnas;
namespace dm = mixnas::eval::devmodel;
namespace fs = std::filesystem;

namespace {

// An outer loop around an inner one, as GCC lays them out for AArch64.
const char* kNested = R"(
	.text
_Z4workPKii:
.LFB0:
	mov	w2, 0
.L3:
	mov	w3, 0
.L2:
	add	x0, x0, 1
	add	x0, x0, 1
	sdot	v0.4s, v1.16b, v2.16b
	subs	w3, w3, #1
	b.ne	.L2	// inner
	subs	w2, w2, #1
	bne	.L3

	// LLVM-MCA-BEGIN k
	add	x0, x0, 1
	// LLVM-MCA-END k
	ret
)";

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("mixnas-test-devicemodel-" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string znver3_yaml(double mem_bw_gbs) {
  return "kind: model\nname: t\ncore: znver3\nclock_ghz: 3.0\ncores: 2\nthreads: 1\n"
         "mem_bw_gbs: " +
         std::to_string(mem_bw_gbs) + "\n";
}

eval::LayerSignature conv_20x20() {
  eval::LayerSignature s;
  s.in_h = s.in_w = 20;
  s.in_c = 64;
  s.out_c = 64;
  s.kernel = 3;
  s.act = "silu";
  return s;
}

eval::DeviceModel::Options options(const fs::path& cache) {
  eval::DeviceModel::Options o;
  o.source_dir = MIXNAS_SOURCE_DIR;
  o.cache_dir = cache.string();
  return o;
}

}  // namespace

TEST_CASE("innermost loops and marked regions of assembler text", "[device_model]") {
  const auto loops = dm::innermost_loops(kNested);
  REQUIRE(loops.size() == 1);  // the outer loop holds the inner one
  CHECK(loops[0].function == "_Z4workPKii");
  CHECK(loops[0].label == ".L2");
  REQUIRE(loops[0].body.size() == 5);
  CHECK(loops[0].body.back() == "b.ne\t.L2");  // the comment is dropped
  CHECK(dm::count_mnemonic(loops[0].body, "sdot") == 1);
  CHECK(dm::count_mnemonic(loops[0].body, "add|sdot") == 3);
  CHECK(dm::marked_region(kNested, "k") == std::vector<std::string>{"add\tx0, x0, 1"});
  CHECK(dm::marked_region(kNested, "other").empty());
}

TEST_CASE("llvm-mca: a chain of dependent adds takes one cycle per add", "[device_model]") {
  const std::string mca = fs::exists("/usr/bin/llvm-mca-16") ? "/usr/bin/llvm-mca-16" : "llvm-mca";
  const std::vector<std::string> chain(4, "add x0, x0, #1");
  for (const char* cpu : {"cortex-a53", "cortex-a55", "cortex-a72", "cortex-a76"})
    CHECK(dm::mca_cycles_per_iteration(mca, "aarch64-linux-gnu", cpu, chain) ==
          Approx(4.0).epsilon(0.02));
  // Independent adds: the A72 (three-wide, two integer pipes) overlaps them; the A53 issues two.
  const std::vector<std::string> wide = {"add x0, x0, #1", "add x1, x1, #1", "add x2, x2, #1",
                                         "add x3, x3, #1"};
  CHECK(dm::mca_cycles_per_iteration(mca, "aarch64-linux-gnu", "cortex-a72", wide) < 2.5);
  CHECK_THROWS_AS(dm::mca_cycles_per_iteration(mca, "aarch64-linux-gnu", "cortex-a72", {}), Error);
  CHECK_THROWS_WITH(dm::mca_cycles_per_iteration(mca, "aarch64-linux-gnu", "cortex-a72",
                                                 {"not_an_instruction x0"}),
                    Catch::Contains("llvm-mca"));
}

TEST_CASE("the roofline bounds a layer below by bytes over bandwidth", "[device_model]") {
  const fs::path cache = fresh_dir("roofline");
  const eval::LayerSignature s = conv_20x20();
  eval::DeviceModel fast(eval::DeviceModelSpec::load_string(znver3_yaml(1000.0), "fast.yaml"),
                         options(cache));
  const eval::LayerPrediction f = fast.predict_layer(s);
  CHECK(f.kernel == "conv_qu8_gemm_6x16c2__avx2");
  CHECK(f.latency_ms == f.compute_ms);
  CHECK(f.compute_ms > 0);
  eval::DeviceModel slow(eval::DeviceModelSpec::load_string(znver3_yaml(0.001), "slow.yaml"),
                         options(cache));
  const eval::LayerPrediction p = slow.predict_layer(s);
  const double bytes = static_cast<double>(eval::layer_bytes_moved(s, p.resident_weight_bytes));
  CHECK(bytes >= 20 * 20 * 64 * 2 + 64 * 64 * 9);
  CHECK(p.memory_ms == Approx(bytes / (0.001 * 1e6)));
  CHECK(p.latency_ms == p.memory_ms);
  CHECK(p.compute_ms == Approx(f.compute_ms));
}

TEST_CASE("cached kernel figures and picks predict without the compiler, llvm-mca or the helper",
          "[device_model]") {
  const fs::path cache = fresh_dir("cache");
  const auto spec = eval::DeviceModelSpec::load_string(znver3_yaml(20.0), "m.yaml");
  eval::LayerSignature w1 = conv_20x20();
  w1.w_bits = w1.a_bits = 1;
  double first = 0, first_w1 = 0;
  {
    eval::DeviceModel m(spec, options(cache));
    first = m.predict_layer(conv_20x20()).latency_ms;
    first_w1 = m.predict_layer(w1).latency_ms;
  }
  auto o = options(cache);
  o.llvm_mca = "/nonexistent/llvm-mca";
  o.pick_helper = "/nonexistent/mixnas-devicemodel-pick";
  eval::DeviceModel cached(spec, o);
  CHECK(cached.predict_layer(conv_20x20()).latency_ms == first);
  CHECK(cached.predict_layer(w1).latency_ms == first_w1);
  // Something new needs the helper: the error says how to build it.
  eval::LayerSignature other = conv_20x20();
  other.out_c = 32;
  CHECK_THROWS_WITH(cached.predict_layer(other), Catch::Contains("build it"));
}

TEST_CASE("device model YAML errors name the file, the line and the field", "[device_model]") {
  CHECK_THROWS_WITH(
      eval::DeviceModelSpec::load_string(
          "kind: model\nname: x\ncore: cortex-a99\nclock_ghz: 1\nmem_bw_gbs: 1\n", "bad.yaml"),
      Catch::Contains("bad.yaml:3") && Catch::Contains("core") && Catch::Contains("cortex-a72"));
  CHECK_THROWS_WITH(
      eval::DeviceModelSpec::load_string(
          "kind: model\nname: x\ncore: cortex-a72\nclock_ghz: -2\nmem_bw_gbs: 1\n", "clk.yaml"),
      Catch::Contains("clk.yaml:4") && Catch::Contains("clock_ghz"));
  CHECK_THROWS_WITH(
      eval::DeviceModelSpec::load_string(
          "kind: model\nname: x\ncore: cortex-a72\nclock_ghz: 1\nmem_bw_gbs: 1\nl2_kb: 5\n",
          "key.yaml"),
      Catch::Contains("key.yaml:6") && Catch::Contains("l2_kb"));
  CHECK_THROWS_WITH(eval::core_info("cortex-a99"), Catch::Contains("known: cortex-a53"));
  for (const char* f : {"rpi4-model", "rpi5-model", "a55-model", "x86-znver3-model"}) {
    const auto s = eval::DeviceModelSpec::load(std::string(MIXNAS_SOURCE_DIR) +
                                               "/configs/devices/" + f + ".yaml");
    CHECK(s.name == f);
  }
}

TEST_CASE("a predicted table says so, through save and load", "[device_model]") {
  const fs::path dir = fresh_dir("table");
  eval::DeviceModel m(eval::DeviceModelSpec::load_string(znver3_yaml(20.0), "m.yaml"),
                      options(dir));
  const eval::LatencyTable t = m.predict_table({conv_20x20()});
  CHECK(t.predicted());
  CHECK(t.model() == "predicted for znver3 (device model t), not measured");
  CHECK(t.device_id() == "model:t:znver3");
  const std::string path = (dir / "lut.json").string();
  t.save(path);
  const eval::LatencyTable back = eval::LatencyTable::load(path);
  CHECK(back.predicted());
  CHECK(back.model() == t.model());
  CHECK(back.at(conv_20x20().key()).median_ms == t.at(conv_20x20().key()).median_ms);
  eval::LatencyTable measured("dev", "0.1.0", 1, 20);
  measured.save(path);
  CHECK_FALSE(eval::LatencyTable::load(path).predicted());
}

TEST_CASE("the fit recovers known coefficients from synthetic layers", "[device_model]") {
  // measured = 1.3 micro + 0.8 pass + 12 us, on layers of 0.05..5 ms.
  std::vector<dm::FitSample> samples;
  for (int i = 0; i < 24; ++i) {
    const double micro = 0.05 * (1 + i * i % 37), pass = 0.01 * (1 + (i * 7) % 11);
    samples.push_back({micro, pass, 1.3 * micro + 0.8 * pass + 0.012, "s" + std::to_string(i % 8)});
  }
  const dm::FitResult r = dm::fit_with_held_out(samples);
  CHECK(r.coefficients.micro_scale == Approx(1.3).epsilon(1e-9));
  CHECK(r.coefficients.pass_scale == Approx(0.8).epsilon(1e-9));
  CHECK(r.coefficients.layer_overhead_us == Approx(12.0).epsilon(1e-7));
  CHECK(r.n == 24);
  CHECK(r.groups == 8);
  CHECK(r.fit_mape_pct < 1e-6);
  CHECK(r.held_out_mape_pct < 1e-6);
  REQUIRE(r.held_out_ms.size() == samples.size());
  CHECK(r.held_out_ms[5] == Approx(samples[5].measured_ms));

  // A term the data says is negative is dropped (0) and the others refitted without it.
  std::vector<dm::FitSample> neg;
  for (int i = 0; i < 12; ++i) {
    const double micro = 1.0 + i, pass = 1.0 + i % 3;
    neg.push_back({micro, pass, 2.0 * micro - 0.3 * pass, "n"});
  }
  const dm::ModelCoefficients c = dm::fit_coefficients(neg);
  CHECK(c.pass_scale == 0);
  CHECK(c.micro_scale > 1.5);
  CHECK(c.layer_overhead_us >= 0);

  CHECK_THROWS_WITH(dm::fit_coefficients({{1, 1, 1, "a"}}), Catch::Contains("1 samples for 3"));
  CHECK_THROWS_WITH(dm::fit_coefficients({{1, 1, 0, "a"}, {1, 2, 1, "b"}, {2, 1, 1, "c"}}),
                    Catch::Contains("no positive measurement"));
}

TEST_CASE("fitted coefficients in the device YAML scale the modelled terms", "[device_model]") {
  const fs::path cache = fresh_dir("coefficients");
  const auto plain = eval::DeviceModelSpec::load_string(znver3_yaml(1000.0), "plain.yaml");
  const auto fitted = eval::DeviceModelSpec::load_string(
      znver3_yaml(1000.0) + "micro_scale: 0.5\npass_scale: 2.0\nlayer_overhead_us: 30\n",
      "fitted.yaml");
  CHECK(fitted.coefficients.micro_scale == 0.5);
  const auto p = eval::DeviceModel(plain, options(cache)).predict_layer(conv_20x20());
  const auto f = eval::DeviceModel(fitted, options(cache)).predict_layer(conv_20x20());
  CHECK(p.compute_ms == Approx(p.micro_ms + p.pass_ms));
  CHECK(f.micro_ms == p.micro_ms);
  CHECK(f.compute_ms == Approx(0.5 * p.micro_ms + 2.0 * p.pass_ms + 0.030));
  CHECK_THROWS_WITH(
      eval::DeviceModelSpec::load_string(znver3_yaml(1.0) + "micro_scale: 0\n", "z.y"),
      Catch::Contains("z.y:8") && Catch::Contains("micro_scale"));
}

TEST_CASE("a device YAML of kind model makes a predicting evaluator", "[device_model]") {
  const fs::path dir = fresh_dir("factory");
  const std::string path = (dir / "zen3.yaml").string();
  std::ofstream(path) << znver3_yaml(20.0);
  const fs::path cwd = fs::current_path();
  fs::current_path(dir);  // the evaluator keeps its cache in ./.cache/devicemodel
  eval::MeasureOptions mo;
  auto e = eval::make_evaluator(path, mo);
  CHECK(e->kind() == "model");
  CHECK(e->device_id() == "model:t:znver3");
  const nlohmann::json p = e->provenance();
  CHECK(p["source"] == "predicted");
  CHECK(p["model_file"] == path);
  CHECK(p["core"] == "znver3");
  CHECK(p["llvm_mca"].get<std::string>().find("LLVM") != std::string::npos);
  const auto rows = e->measure_layers({conv_20x20()});
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].kernel == "conv_qu8_gemm_6x16c2__avx2");
  CHECK(rows[0].latency.median_ms > 0);
  // A table filled by it is predicted and names the model.
  eval::LatencyTable t(e->device_id(), e->runtime_version(), 1, 1);
  t.fill({conv_20x20()}, *e);
  CHECK(t.predicted());
  CHECK(t.provenance()["model_file"] == path);
  // More threads than the device has cores: refused, naming the file.
  mo.threads = 3;
  CHECK_THROWS_WITH(eval::make_evaluator(path, mo),
                    Catch::Contains("zen3.yaml") && Catch::Contains("2 cores"));
  fs::current_path(cwd);
  CHECK(eval::LocalEvaluator(eval::MeasureOptions{}).provenance()["source"] == "measured");
}
