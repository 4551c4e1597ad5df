#pragma once
// The device-model evaluator (docs/device_models.md): predicted latency of what the runtime would
// run on a named core it has no board of, from the runtime's own loops.
//
// Per layer signature: the kernel the target build's tables pick (mixnas-devicemodel-pick of that
// build; under qemu for aarch64), the cycles of that kernel's inner loops from llvm-mca's
// scheduling model of the core over the target compiler's assembly of the runtime's kernel
// sources, times the trip counts of the plan's tiling, plus the epilogue, activation and im2col
// passes modelled the same way; threads by the work split; bounded below by the bytes moved over
// the memory bandwidth (roofline). Per-kernel cycle figures and picks are cached as JSON.
//
// Device YAML (configs/devices/*-model.yaml):
//   kind: model
//   name: rpi4-model
//   core: cortex-a72          # cortex-a53 | cortex-a55 | cortex-a72 | cortex-a76 | znver3
//   clock_ghz: 1.8
//   cores: 4
//   threads: 1                # the runtime's threads, as latency tables are measured
//   l1d_kib: 32
//   l2_kib: 1024
//   l3_kib: 0
//   mem_bw_gbs: 4.0           # sustained DRAM bandwidth
//   micro_scale: 1.0          # fitted coefficients (fit.h); the defaults assume LLVM's model
//   pass_scale: 1.0
//   layer_overhead_us: 0.0
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "evaluators/device_model/fit.h"
#include "evaluators/latency_table.h"
#include "evaluators/layer_graph.h"

namespace mixnas::eval {

struct DeviceModelSpec {
  std::string path;  // the YAML it was read from
  std::string name;
  std::string core;
  double clock_ghz = 0;
  int cores = 1, threads = 1;
  int l1d_kib = 0, l2_kib = 0, l3_kib = 0;
  double mem_bw_gbs = 0;
  devmodel::ModelCoefficients coefficients;

  // Throws mixnas::Error naming file:line and the field (unknown core, values out of range).
  static DeviceModelSpec load(const std::string& path);
  static DeviceModelSpec load_string(const std::string& yaml, const std::string& name);
};

// What the model knows of a core: its architecture, llvm-mca's CPU name and the features the
// runtime's tables see on it. Throws mixnas::Error listing the known cores for an unknown one.
struct CoreInfo {
  std::string core, arch, mca_cpu, mca_model_note;
  std::vector<std::string> features;  // present
  std::string cpu_disable;            // MIXNAS_CPU_DISABLE for the pick helper
  std::string compile_flags;          // the target build's flags for kernel sources
};
const CoreInfo& core_info(const std::string& core);
std::vector<std::string> known_cores();

struct LayerPrediction {
  double latency_ms = 0;
  double compute_ms = 0, memory_ms = 0;  // latency_ms = max of the two
  // The modelled terms before the coefficients (fit.h): compute_ms = coefficients of these.
  double micro_ms = 0, pass_ms = 0;
  std::string kernel;
  int64_t weight_bytes = 0, resident_weight_bytes = 0, arena_bytes = 0;
};

// Cycle figures of one kernel on one core (cached).
struct KernelCycles {
  double cycles_per_mac = 0;              // microkernel steady state
  double scale_cycles_per_output = 0;     // int to float, scale and bias
  double quantize_cycles_per_output = 0;  // y / s, round, clamp, store a code (code outputs)
  double im2col_cycles_per_element = 0;   // 0 where the kernel reads its input in place
  // Bit-serial rows: packing input codes into bit planes, per plane and 8 channels of a pixel
  // (the portable packer's plane loop; 0 where the packer is not that loop: AVX2).
  double pack_cycles_per_plane_byte = 0;
  int loop_instructions = 0;
  // Table-lookup rows: building a pixel's lookup tables, per group of 4 reduction codes.
  double table_cycles_per_group = 0;
};

class DeviceModel {
 public:
  struct Options {
    std::string source_dir;   // the mixnas tree (kernel sources); default: the build's
    std::string pick_helper;  // mixnas-devicemodel-pick of the core's arch; default by arch
    std::string cache_dir;    // per-kernel figures and picks; "" = no cache file
    std::string llvm_mca;     // default: llvm-mca-16, else llvm-mca-14, else llvm-mca
    int jobs = 2;             // compiler and llvm-mca processes run at once on a cache miss
  };
  static DeviceModel load(const std::string& device_yaml, const Options& options);
  static DeviceModel load(const std::string& device_yaml);
  DeviceModel(DeviceModelSpec spec, Options options);

  const DeviceModelSpec& spec() const { return spec_; }
  // "predicted for cortex-a72 (device model rpi4-model), not measured".
  std::string provenance() const;
  // What a table, a search log and a report record of the prediction: {"source": "predicted",
  // "text": provenance(), "model_file", "model", "core", "mca_model", "llvm_mca", "coefficients"}.
  nlohmann::json provenance_json();
  // "LLVM version 16.0.6" of the llvm-mca in use (asked once).
  const std::string& llvm_mca_version();

  LayerPrediction predict_layer(const eval::LayerSignature& signature);
  // Picks for all signatures in one helper run (the qemu start is paid once).
  std::vector<LayerPrediction> predict_layers(const std::vector<eval::LayerSignature>& signatures);
  // The prediction were `kernel` forced on the layer (memory figures from the table's pick): how
  // selection rules are derived from the model (mixnas-bench-devicemodel --rules).
  LayerPrediction predict_forced(const eval::LayerSignature& signature, const std::string& kernel);
  // A latency table of predictions, device id "model:<name>:<core>".
  LatencyTable predict_table(const std::vector<eval::LayerSignature>& signatures);

  // The cycle figures of `kernel` (compiling and running llvm-mca on a cache miss).
  const KernelCycles& kernel_cycles(const std::string& kernel);
  double activation_cycles_per_element(const std::string& act);
  // The figures of every kernel and activation not cached yet: each source compiled once, the
  // compiler and llvm-mca runs spread over options.jobs processes.
  void prepare(const std::set<std::string>& kernels, const std::set<std::string>& activations);

  // Writes the cache file (predict_* do it when they computed something new).
  void save_cache() const;

 private:
  struct Pick {
    std::string kernel;
    int64_t weight_bytes = 0, resident_weight_bytes = 0, arena_bytes = 0;
  };
  void pick_missing(const std::vector<eval::LayerSignature>& signatures);
  LayerPrediction predict_picked(const eval::LayerSignature& s, const Pick& p);
  void prepare_picked(const std::vector<eval::LayerSignature>& signatures);
  void compile_missing(const std::set<std::string>& kernels);
  void load_cache();
  std::string cache_path() const;

  DeviceModelSpec spec_;
  Options options_;
  const CoreInfo* core_;
  std::map<std::string, KernelCycles> kernels_;
  std::map<std::string, double> activations_;
  std::map<std::string, Pick> picks_;
  std::map<std::string, std::string> asm_;  // compiled sources of this process
  std::string llvm_mca_version_;
  bool dirty_ = false;
};

// Bytes a layer moves at least once: input, output and resident weights (the roofline's bound).
int64_t layer_bytes_moved(const eval::LayerSignature& s, int64_t resident_weight_bytes);

}  // namespace mixnas::eval
