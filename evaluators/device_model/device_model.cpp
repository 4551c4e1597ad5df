#include "evaluators/device_model/device_model.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/config.h"
#include "core/error.h"
#include "deploy/runtime/kernels/activation.h"
#include "deploy/runtime/kernels/conv_bitserial_job.h"
#include "deploy/runtime/version.h"
#include "evaluators/device_model/asm_loops.h"

namespace mixnas::eval {

namespace fs = std::filesystem;
using devmodel::AsmLoop;

namespace {

// The cache file's format (in its name, so a changed layout is recomputed, not misread).
const char* kCacheFormat = "mixnas-devicemodel-cache-3";

// The build flags of kernel sources (kernels.cmake adds -ffp-contract=off to every one; the
// aarch64 preset is Release, the host preset RelWithDebInfo).
const char* kArmFlags = "-std=c++17 -O3 -DNDEBUG -fopenmp -ffp-contract=off";
const char* kX86Flags = "-std=c++17 -O3 -DNDEBUG -fopenmp -ffp-contract=off";

const std::vector<CoreInfo>& cores() {
  static const std::vector<CoreInfo> c = {
      {"cortex-a53",
       "aarch64",
       "cortex-a53",
       "LLVM's Cortex-A53 model",
       {"neon"},
       "dotprod,i8mm",
       kArmFlags},
      {"cortex-a55",
       "aarch64",
       "cortex-a55",
       "LLVM's Cortex-A55 model",
       {"neon", "dotprod"},
       "i8mm",
       kArmFlags},
      {"cortex-a72",
       "aarch64",
       "cortex-a72",
       "LLVM's Cortex-A57 model (LLVM assigns it to A72)",
       {"neon"},
       "dotprod,i8mm",
       kArmFlags},
      {"cortex-a76",
       "aarch64",
       "cortex-a76",
       "LLVM's Cortex-A57 model (LLVM 14 and 16 assign it to A76; no A76/N1 model in Debian 12)",
       {"neon", "dotprod"},
       "i8mm",
       kArmFlags},
      {"znver3",
       "x86_64",
       "znver3",
       "LLVM's Zen 3 model (AVX2 rows; AVX-512 masked)",
       {"avx2", "fma"},
       "avx512f,avx512bw,avx512vl,avx512vnni,avx512vpopcntdq,avx512vbmi",
       kX86Flags},
  };
  return c;
}

config::Schema device_model_schema() {
  using config::Type;
  config::Schema s("device model", "A device predicted from LLVM's scheduling model of its core.");
  s.add("kind", Type::kString, "", "'model' for a device model", {"model"})
      .add("name", Type::kString, "", "Name in tables and reports")
      .add("core", Type::kString, "", "The core llvm-mca models", known_cores())
      .add("clock_ghz", Type::kFloat, "", "Core clock in GHz")
      .add("cores", Type::kInt, "1", "Cores of the device")
      .add("threads", Type::kInt, "1", "Runtime threads the table is predicted for")
      .add("l1d_kib", Type::kInt, "32", "L1 data cache per core, KiB")
      .add("l2_kib", Type::kInt, "512", "L2 cache, KiB")
      .add("l3_kib", Type::kInt, "0", "L3 cache, KiB (0 = none)")
      .add("mem_bw_gbs", Type::kFloat, "", "Sustained memory bandwidth, GB/s");
  return s;
}

DeviceModelSpec spec_from(const config::Config& c) {
  DeviceModelSpec s;
  s.path = c.path();
  s.name = c.get_string("name");
  s.core = c.get_string("core");
  s.clock_ghz = c.get_float("clock_ghz");
  s.cores = static_cast<int>(c.get_int("cores"));
  s.threads = static_cast<int>(c.get_int("threads"));
  s.l1d_kib = static_cast<int>(c.get_int("l1d_kib"));
  s.l2_kib = static_cast<int>(c.get_int("l2_kib"));
  s.l3_kib = static_cast<int>(c.get_int("l3_kib"));
  s.mem_bw_gbs = c.get_float("mem_bw_gbs");
  auto check = [&](const std::string& key, bool ok, const std::string& what) {
    if (!ok) throw Error(c.where(key).str() + ": '" + key + "' " + what);
  };
  check("clock_ghz", s.clock_ghz > 0.1 && s.clock_ghz < 10, "must be a clock in GHz (0.1..10)");
  check("cores", s.cores >= 1 && s.cores <= 256, "must be 1..256");
  check("threads", s.threads >= 1 && s.threads <= s.cores, "must be 1..cores");
  check("mem_bw_gbs", s.mem_bw_gbs > 0, "must be a positive bandwidth in GB/s");
  check("name", !s.name.empty(), "must not be empty");
  return s;
}

// How a kernel's source is found and its microkernel loop recognised.
struct KernelSource {
  std::string file;    // under deploy/runtime/kernels/
  std::string flags;   // the file's own flags in kernels.cmake
  std::string mac_op;  // mnemonic regex of the multiply-accumulate instruction
  int macs_per_op = 0;
  std::string widen_op;  // im2col's widening instruction ("" = the kernel reads codes in place)
  int widen_lanes = 0;
  int mr = 0, nr = 0;  // tile, from the name (XNNPACK-style names carry it)
  bool bitserial = false;
  int w_bits = 0, a_bits = 0, regs = 0, lanes = 0;
};

KernelSource gemm_source(const std::string& k) {
  std::smatch m;
  static const std::regex tile("_(\\d+)x(\\d+)(c\\d)?__");
  KernelSource s;
  if (std::regex_search(k, m, tile)) s.mr = std::stoi(m[1]), s.nr = std::stoi(m[2]);
  if (k == "conv_qu8_gemm_8x8__neon")
    s = {"conv_qu8_gemm__neon.cpp", "", "smlal2?", 4, "uxtl2?|ushll2?", 8, s.mr, s.nr};
  else if (k == "conv_qu8_gemm_4x16c4__neondot")
    s = {"conv_qu8_gemm__neondot.cpp", "-march=armv8.2-a+dotprod", "sdot", 16, "", 0, s.mr, s.nr};
  else if (k == "conv_f32_gemm_6x16__neon")
    s = {"conv_f32_gemm__neon.cpp", "", "fmla", 4, "", 0, s.mr, s.nr};
  else if (k == "conv_qu8_gemm_6x16c2__avx2")
    s = {"conv_qu8_gemm__avx2.cpp", "-mavx2", "vpmaddwd", 16, "vpmovzxbw", 16, s.mr, s.nr};
  else if (k == "conv_f32_gemm_6x16__avx2_fma")
    s = {"conv_f32_gemm__avx2_fma.cpp", "-mavx2 -mfma", "vfmadd...ps", 8, "", 0, s.mr, s.nr};
  else
    s.file.clear();
  return s;
}

KernelSource kernel_source(const std::string& k) {
  std::smatch m;
  static const std::regex bs("conv_bitserial_w(\\d)a(\\d)__(neondot|neon|avx2)");
  if (!std::regex_match(k, m, bs)) {
    KernelSource s = gemm_source(k);
    if (s.file.empty())
      throw Error("device model: no loop model for kernel '" + k +
                  "' (modelled: the int8/fp32 GEMM rows of NEON, NEON-dotprod and AVX2, and "
                  "the bit-serial rows); see docs/device_models.md, Limits");
    return s;
  }
  KernelSource s;
  s.bitserial = true;
  s.w_bits = std::stoi(m[1]);
  s.a_bits = std::stoi(m[2]);
  const std::string isa = m[3];
  s.file = "conv_bitserial_gemm__" + isa + ".cpp";
  s.flags = isa == "neondot" ? "-march=armv8.2-a+dotprod" : isa == "avx2" ? "-mavx2 -mpopcnt" : "";
  s.regs = isa == "avx2" ? 12 : 26;  // IsaNeon / IsaAvx2 ::kRegs
  s.lanes = isa == "avx2" ? 4 : 2;
  const rt::BitserialShape shape = rt::bitserial_shape(s.regs, s.w_bits, s.a_bits);
  s.mr = shape.mr;
  s.nr = shape.nv * s.lanes;
  return s;
}

// Elements one vector instruction handles, from its operand text (float lanes).
int vector_lanes(const std::string& insn) {
  if (insn.find("%zmm") != std::string::npos) return 16;
  if (insn.find("%ymm") != std::string::npos) return 8;
  if (insn.find(".4s") != std::string::npos || insn.find("%xmm") != std::string::npos) return 4;
  return 1;
}

}  // namespace

std::vector<std::string> known_cores() {
  std::vector<std::string> names;
  for (const CoreInfo& c : cores()) names.push_back(c.core);
  return names;
}

const CoreInfo& core_info(const std::string& core) {
  for (const CoreInfo& c : cores())
    if (c.core == core) return c;
  std::string list;
  for (const std::string& n : known_cores()) list += (list.empty() ? "" : ", ") + n;
  throw Error("device model: unknown core '" + core + "' (known: " + list + ")");
}

DeviceModelSpec DeviceModelSpec::load(const std::string& path) {
  return spec_from(config::Config::load(path, device_model_schema()));
}

DeviceModelSpec DeviceModelSpec::load_string(const std::string& yaml, const std::string& name) {
  return spec_from(config::Config::load_string(yaml, name, device_model_schema()));
}

int64_t layer_bytes_moved(const eval::LayerSignature& s, int64_t resident_weight_bytes) {
  const int out_h = (s.in_h + s.stride - 1) / s.stride, out_w = (s.in_w + s.stride - 1) / s.stride;
  const int64_t in = int64_t{s.in_h} * s.in_w * s.in_c * (s.a_bits == 32 ? 4 : 1);
  const int64_t out = int64_t{out_h} * out_w * s.out_c * (s.out_bits == 32 ? 4 : 1);
  return in + out + resident_weight_bytes;
}

namespace {

std::string default_llvm_mca() {
  for (const char* c : {"/usr/bin/llvm-mca-16", "/usr/bin/llvm-mca-15", "/usr/bin/llvm-mca-14"})
    if (fs::exists(c)) return c;
  return "llvm-mca";
}

// The loop of `loops` with the most `op` instructions (ties: the shorter loop); nullptr if none.
const AsmLoop* loop_with_most(const std::vector<AsmLoop>& loops, const std::string& op) {
  const AsmLoop* best = nullptr;
  int best_n = 0;
  for (const AsmLoop& l : loops) {
    const int n = devmodel::count_mnemonic(l.body, op);
    if (n > best_n || (n == best_n && n > 0 && l.body.size() < best->body.size()))
      best = &l, best_n = n;
  }
  return best;
}

// The shortest loop holding `op` in a function whose symbol contains `function`: e.g. the
// epilogue's plain quantize path among its variants.
const AsmLoop* shortest_loop_with(const std::vector<AsmLoop>& loops, const std::string& op,
                                  const std::string& function) {
  const AsmLoop* best = nullptr;
  for (const AsmLoop& l : loops)
    if (l.function.find(function) != std::string::npos &&
        devmodel::count_mnemonic(l.body, op) > 0 && (!best || l.body.size() < best->body.size()))
      best = &l;
  return best;
}

}  // namespace

DeviceModel::DeviceModel(DeviceModelSpec spec, Options options)
    : spec_(std::move(spec)), options_(std::move(options)), core_(&core_info(spec_.core)) {
  if (options_.source_dir.empty()) options_.source_dir = MIXNAS_SOURCE_DIR;
  if (options_.llvm_mca.empty()) options_.llvm_mca = default_llvm_mca();
  if (options_.pick_helper.empty()) {
    options_.pick_helper = core_->arch == "aarch64"
                               ? options_.source_dir + "/build-aarch64/bin/mixnas-devicemodel-pick"
                               : std::string(MIXNAS_HOST_BIN_DIR) + "/mixnas-devicemodel-pick";
  }
  load_cache();
}

DeviceModel DeviceModel::load(const std::string& device_yaml, const Options& options) {
  return DeviceModel(DeviceModelSpec::load(device_yaml), options);
}

DeviceModel DeviceModel::load(const std::string& device_yaml) {
  Options o;
  o.cache_dir = ".cache/devicemodel";
  return load(device_yaml, o);
}

std::string DeviceModel::provenance() const {
  return "predicted for " + spec_.core + " (device model " + spec_.name + "), not measured";
}

std::string DeviceModel::cache_path() const {
  if (options_.cache_dir.empty()) return "";
  // Keyed by the runtime's source signature: a kernel change never reuses old figures.
  return options_.cache_dir + "/" + spec_.core + "-" + rt::runtime_signature() + "-" +
         kCacheFormat + ".json";
}

void DeviceModel::load_cache() {
  const std::string path = cache_path();
  if (path.empty() || !fs::exists(path)) return;
  nlohmann::json j;
  try {
    std::ifstream in(path);
    j = nlohmann::json::parse(in);
    for (auto& [k, v] : j.at("kernels").items())
      kernels_[k] = {v.at("cycles_per_mac"),
                     v.at("scale_cycles_per_output"),
                     v.at("quantize_cycles_per_output"),
                     v.at("im2col_cycles_per_element"),
                     v.at("pack_cycles_per_plane_byte"),
                     v.at("loop_instructions")};
    for (auto& [k, v] : j.at("activations").items()) activations_[k] = v;
    for (auto& [k, v] : j.at("picks").items())
      picks_[k] = {v.at("kernel"), v.at("weight_bytes"), v.at("resident_weight_bytes"),
                   v.at("arena_bytes")};
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not a device-model cache (" + e.what() + "); delete the file");
  }
}

void DeviceModel::save_cache() const {
  const std::string path = cache_path();
  if (path.empty()) return;
  nlohmann::json j;
  j["format"] = kCacheFormat;
  j["core"] = spec_.core;
  j["llvm_mca"] = options_.llvm_mca;
  nlohmann::json& k = j["kernels"] = nlohmann::json::object();
  for (const auto& [name, c] : kernels_)
    k[name] = {{"cycles_per_mac", c.cycles_per_mac},
               {"scale_cycles_per_output", c.scale_cycles_per_output},
               {"quantize_cycles_per_output", c.quantize_cycles_per_output},
               {"im2col_cycles_per_element", c.im2col_cycles_per_element},
               {"pack_cycles_per_plane_byte", c.pack_cycles_per_plane_byte},
               {"loop_instructions", c.loop_instructions}};
  j["activations"] = activations_;
  nlohmann::json& p = j["picks"] = nlohmann::json::object();
  for (const auto& [key, v] : picks_)
    p[key] = {{"kernel", v.kernel},
              {"weight_bytes", v.weight_bytes},
              {"resident_weight_bytes", v.resident_weight_bytes},
              {"arena_bytes", v.arena_bytes}};
  fs::create_directories(options_.cache_dir);
  write_file_atomic(path, j.dump(1));
}

std::string DeviceModel::compile_to_asm(const std::string& source, const std::string& extra) {
  const std::string key = source + "|" + extra;
  auto it = asm_.find(key);
  if (it != asm_.end()) return it->second;
  const std::string cxx = core_->arch == "aarch64" ? "aarch64-linux-gnu-g++" : "g++";
  const std::string out = devmodel::run_command(cxx + " " + core_->compile_flags + " " + extra +
                                                " -I" + options_.source_dir + " -S -o - " + source);
  return asm_[key] = out;
}

namespace {

// Writes `text` to a fresh file under /tmp with `suffix`; the caller removes it.
std::string temp_file(const std::string& text, const std::string& suffix) {
  std::string path = "/tmp/mixnas-devicemodel-XXXXXX" + suffix;
  const int fd = mkstemps(path.data(), static_cast<int>(suffix.size()));
  if (fd < 0) throw Error("device model: cannot create a temporary file in /tmp");
  std::ofstream(path) << text;
  close(fd);
  return path;
}

// Cycles per element of the shortest loop holding `op`, elements = op count x its lanes.
double per_element(const std::vector<AsmLoop>& loops, const std::string& op,
                   const std::string& function, const CoreInfo& core, const std::string& mca,
                   int lanes_override = 0) {
  const AsmLoop* l = shortest_loop_with(loops, op, function);
  if (!l) return 0;
  int lanes = lanes_override;
  if (!lanes)
    for (const std::string& s : l->body)
      if (devmodel::count_mnemonic({s}, op)) lanes = vector_lanes(s);
  const int n = devmodel::count_mnemonic(l->body, op) * std::max(lanes, 1);
  const std::string triple =
      core.arch == "aarch64" ? "aarch64-linux-gnu" : "x86_64-unknown-linux-gnu";
  return devmodel::mca_cycles_per_iteration(mca, triple, core.mca_cpu, l->body) / n;
}

}  // namespace

const KernelCycles& DeviceModel::kernel_cycles(const std::string& kernel) {
  auto it = kernels_.find(kernel);
  if (it != kernels_.end()) return it->second;
  const KernelSource src = kernel_source(kernel);
  const std::string file = options_.source_dir + "/deploy/runtime/kernels/" + src.file;
  const bool arm = core_->arch == "aarch64";
  const std::string triple = arm ? "aarch64-linux-gnu" : "x86_64-unknown-linux-gnu";
  KernelCycles c;
  std::string text;
  std::vector<std::string> body;
  double macs = 0;
  if (src.bitserial) {
    // The runtime's MIXNAS_BS_MCA_* hooks, marking the full tile's step of this (W, A).
    const std::string cmt = arm ? "//" : "#";
    std::ostringstream h;
    const std::string cond = "if constexpr (W == " + std::to_string(src.w_bits) +
                             " && A == " + std::to_string(src.a_bits) +
                             " && MR == " + std::to_string(src.mr) +
                             " && NVU == " + std::to_string(src.nr / src.lanes) + ")";
    h << "#define MIXNAS_BS_MCA_BEGIN(W, A, MR, NVU) " << cond << " asm volatile(\"" << cmt
      << " LLVM-MCA-BEGIN bs\")\n#define MIXNAS_BS_MCA_END(W, A, MR, NVU) " << cond
      << " asm volatile(\"" << cmt << " LLVM-MCA-END bs\")\n";
    const std::string header = temp_file(h.str(), ".h");
    try {
      text = compile_to_asm(file, src.flags + " -include " + header);
    } catch (...) {
      fs::remove(header);
      throw;
    }
    fs::remove(header);
    body = devmodel::marked_region(text, "bs");
    if (arm) {  // conv_bitpack__neon{,dot}: bitpack_portable, one iteration per plane
      const auto loops = devmodel::innermost_loops(text);
      const AsmLoop* pack = nullptr;
      for (const AsmLoop& l : loops)
        if (l.function.find("conv_bitpack") != std::string::npos &&
            (!pack || l.body.size() > pack->body.size()))
          pack = &l;
      if (pack)
        c.pack_cycles_per_plane_byte = devmodel::mca_cycles_per_iteration(
            options_.llvm_mca, triple, core_->mca_cpu, pack->body);
    }
    macs = 64.0 * src.mr * src.nr;
    // The epilogue is the int8 kernel's template; take its figures from that source.
    const std::string int8 =
        arm ? (src.file.find("neondot") != std::string::npos ? "conv_qu8_gemm_4x16c4__neondot"
                                                             : "conv_qu8_gemm_8x8__neon")
            : "conv_qu8_gemm_6x16c2__avx2";
    const KernelCycles& e = kernel_cycles(int8);
    c.scale_cycles_per_output = e.scale_cycles_per_output;
    c.quantize_cycles_per_output = e.quantize_cycles_per_output;
  } else {
    text = compile_to_asm(file, src.flags);
    const auto loops = devmodel::innermost_loops(text);
    const AsmLoop* micro = loop_with_most(loops, src.mac_op);
    if (micro)
      body = micro->body, macs = devmodel::count_mnemonic(body, src.mac_op) * src.macs_per_op;
    const std::string div = arm ? "fdiv" : "vdivps", cvt = arm ? "scvtf" : "vcvtdq2ps";
    // quantize_rows: y / s, rounding, clamp, store per code; the int-to-float scale and bias
    // pass wherever GCC put it (inlined into gemm_block at -O3).
    c.quantize_cycles_per_output =
        per_element(loops, div, "quantize_rows", *core_, options_.llvm_mca);
    c.scale_cycles_per_output = per_element(loops, cvt, "", *core_, options_.llvm_mca);
    if (!src.widen_op.empty())  // im2col widening the codes to int16
      c.im2col_cycles_per_element = per_element(loops, src.widen_op, "gemm_block", *core_,
                                                options_.llvm_mca, src.widen_lanes);
  }
  if (body.empty() || macs <= 0)
    throw Error("device model: found no microkernel loop of " + kernel + " in " + file +
                " compiled for " + core_->arch + " (did the kernel source change shape?)");
  c.cycles_per_mac =
      devmodel::mca_cycles_per_iteration(options_.llvm_mca, triple, core_->mca_cpu, body) / macs;
  c.loop_instructions = static_cast<int>(body.size());
  dirty_ = true;
  return kernels_[kernel] = c;
}

double DeviceModel::activation_cycles_per_element(const std::string& act) {
  if (act == "identity") return 0;
  auto it = activations_.find(act);
  if (it != activations_.end()) return it->second;
  rt::Activation kind;
  if (!rt::parse_activation(act, &kind))
    throw Error("device model: unknown activation '" + act + "'");
  const bool arm = core_->arch == "aarch64";
  const int n = arm ? 4 : 8;  // activation.cpp's baseline (NEON) and activation__avx2.cpp widths
  const std::string wrapper =
      "#define MIXNAS_KERNEL_ISA isa_devmodel\n"
      "#include \"deploy/runtime/kernels/activation_impl.h\"\n"
      "void mixnas_devmodel_act(float* d, size_t n) {\n"
      "  mixnas::rt::ActivationSpec s;\n  s.kind = static_cast<mixnas::rt::Activation>(" +
      std::to_string(static_cast<int>(kind)) +
      ");\n  mixnas::rt::isa_devmodel::apply_activation_n<" + std::to_string(n) +
      ">(s, d, n);\n}\n";
  const std::string path = temp_file(wrapper, ".cpp");
  std::string text;
  try {
    text = compile_to_asm(path, arm ? "" : "-mavx2");
  } catch (...) {
    fs::remove(path);
    throw;
  }
  fs::remove(path);
  const auto loops = devmodel::innermost_loops(text);
  const AsmLoop* main = nullptr;
  for (const AsmLoop& l : loops)
    if (!main || l.body.size() > main->body.size()) main = &l;
  double cycles = 0;
  if (main) {
    const std::string triple = arm ? "aarch64-linux-gnu" : "x86_64-unknown-linux-gnu";
    cycles =
        devmodel::mca_cycles_per_iteration(options_.llvm_mca, triple, core_->mca_cpu, main->body) /
        n;
  }
  dirty_ = true;
  return activations_[act] = cycles;
}

void DeviceModel::pick_missing(const std::vector<eval::LayerSignature>& signatures) {
  std::string lines;
  std::map<std::string, bool> asked;
  for (const auto& s : signatures) {
    const std::string key = s.key();
    if (picks_.count(key) || asked[key]) continue;
    asked[key] = true;
    lines += s.to_json().dump() + "\n";
  }
  if (lines.empty()) return;
  if (!fs::exists(options_.pick_helper))
    throw Error("device model: " + options_.pick_helper + " is missing; build it: " +
                (core_->arch == "aarch64"
                     ? "cmake --preset aarch64 && cmake --build --preset aarch64 --target "
                       "mixnas-devicemodel-pick"
                     : "cmake --build --preset default --target mixnas-devicemodel-pick"));
  const std::string input = temp_file(lines, ".jsonl");
  std::string emulator;
  if (core_->arch == "aarch64")  // the cross build's sysroot, as its ctest emulator uses it
    emulator = "LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib qemu-aarch64 -L /usr/aarch64-linux-gnu ";
  std::string out;
  try {
    out = devmodel::run_command("env MIXNAS_CPU_DISABLE=" + core_->cpu_disable + " " + emulator +
                                options_.pick_helper + " < " + input);
  } catch (...) {
    fs::remove(input);
    throw;
  }
  fs::remove(input);
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    picks_[j.at("key")] = {j.at("kernel"), j.at("weight_bytes"), j.at("resident_weight_bytes"),
                           j.at("arena_bytes")};
  }
  dirty_ = true;
}

LayerPrediction DeviceModel::predict_picked(const eval::LayerSignature& s, const Pick& p) {
  const KernelCycles& kc = kernel_cycles(p.kernel);
  const KernelSource src = kernel_source(p.kernel);
  auto up = [](int64_t x, int64_t m) { return (x + m - 1) / m * m; };
  const int64_t out_h = (s.in_h + s.stride - 1) / s.stride,
                out_w = (s.in_w + s.stride - 1) / s.stride;
  const int64_t m = out_h * out_w, n = s.out_c, taps = int64_t{s.kernel} * s.kernel;
  double micro = 0, im2col = 0;
  if (src.bitserial) {
    // Per 64-bit word of the reduction, one step of the MR x NR tile.
    micro = static_cast<double>(up(m, src.mr)) * up(n, src.nr) * taps * up(s.in_c, 64) *
            kc.cycles_per_mac;
    im2col = static_cast<double>(s.in_h) * s.in_w * ((s.in_c + 7) / 8) * s.a_bits *
             kc.pack_cycles_per_plane_byte;
  } else {
    const int group = p.kernel.find("c4__") != std::string::npos   ? 4
                      : p.kernel.find("c2__") != std::string::npos ? 2
                                                                   : 1;
    const int64_t k_pad = up(taps * s.in_c, group);
    micro = static_cast<double>(up(m, src.mr)) * up(n, src.nr) * k_pad * kc.cycles_per_mac;
    im2col = static_cast<double>(m) * k_pad * kc.im2col_cycles_per_element;
  }
  const double epilogue = static_cast<double>(m) * n *
                          (kc.scale_cycles_per_output + activation_cycles_per_element(s.act) +
                           (s.out_bits == 32 ? 0 : kc.quantize_cycles_per_output));
  // Blocks of output pixels are shared between threads.
  const int64_t parallel = std::min<int64_t>(spec_.threads, (m + src.mr - 1) / src.mr);
  LayerPrediction r;
  r.kernel = p.kernel;
  r.compute_ms = (micro + im2col + epilogue) / parallel / (spec_.clock_ghz * 1e6);
  r.memory_ms = layer_bytes_moved(s, p.resident_weight_bytes) / (spec_.mem_bw_gbs * 1e6);
  r.latency_ms = std::max(r.compute_ms, r.memory_ms);
  r.weight_bytes = p.weight_bytes;
  r.resident_weight_bytes = p.resident_weight_bytes;
  r.arena_bytes = p.arena_bytes;
  return r;
}

std::vector<LayerPrediction> DeviceModel::predict_layers(
    const std::vector<eval::LayerSignature>& signatures) {
  pick_missing(signatures);
  std::vector<LayerPrediction> out;
  out.reserve(signatures.size());
  for (const auto& s : signatures) out.push_back(predict_picked(s, picks_.at(s.key())));
  if (dirty_) save_cache(), dirty_ = false;
  return out;
}

LayerPrediction DeviceModel::predict_forced(const eval::LayerSignature& signature,
                                            const std::string& kernel) {
  pick_missing({signature});
  Pick p = picks_.at(signature.key());
  p.kernel = kernel;
  return predict_picked(signature, p);
}

LayerPrediction DeviceModel::predict_layer(const eval::LayerSignature& signature) {
  return predict_layers({signature}).front();
}

LatencyTable DeviceModel::predict_table(const std::vector<eval::LayerSignature>& signatures) {
  LatencyTable table("model:" + spec_.name + ":" + spec_.core, rt::runtime_version(), spec_.threads,
                     0);
  table.set_model(provenance());
  const auto rows = predict_layers(signatures);
  for (size_t i = 0; i < rows.size(); ++i) {
    LatencyEntry e;
    e.median_ms = e.min_ms = e.p90_ms = rows[i].latency_ms;
    e.kernel = rows[i].kernel;
    e.weight_bytes = rows[i].weight_bytes;
    e.resident_weight_bytes = rows[i].resident_weight_bytes;
    e.arena_bytes = rows[i].arena_bytes;
    table.put(signatures[i].key(), e);
  }
  return table;
}
}  // namespace mixnas::eval
