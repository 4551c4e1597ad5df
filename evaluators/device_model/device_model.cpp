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
const char* kCacheFormat = "mixnas-devicemodel-cache-5";

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
      .add("mem_bw_gbs", Type::kFloat, "", "Sustained memory bandwidth, GB/s")
      .add("micro_scale", Type::kFloat, "1.0",
           "Measured over modelled microkernel time (fitted where the core is measured)")
      .add("pass_scale", Type::kFloat, "1.0",
           "Measured over modelled time of the passes around the microkernel (fitted)")
      .add("layer_overhead_us", Type::kFloat, "0.0",
           "Time of a layer outside its modelled loops, microseconds (fitted)");
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
  s.coefficients = {c.get_float("micro_scale"), c.get_float("pass_scale"),
                    c.get_float("layer_overhead_us")};
  auto check = [&](const std::string& key, bool ok, const std::string& what) {
    if (!ok) throw Error(c.where(key).str() + ": '" + key + "' " + what);
  };
  check("clock_ghz", s.clock_ghz > 0.1 && s.clock_ghz < 10, "must be a clock in GHz (0.1..10)");
  check("cores", s.cores >= 1 && s.cores <= 256, "must be 1..256");
  check("threads", s.threads >= 1 && s.threads <= s.cores, "must be 1..cores");
  check("mem_bw_gbs", s.mem_bw_gbs > 0, "must be a positive bandwidth in GB/s");
  check("name", !s.name.empty(), "must not be empty");
  check("micro_scale", s.coefficients.micro_scale > 0, "must be positive");
  check("pass_scale", s.coefficients.pass_scale >= 0, "must not be negative");
  check("layer_overhead_us", s.coefficients.layer_overhead_us >= 0, "must not be negative");
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
  // Table-lookup rows: the instruction of the table-building loop (one turn: 16 groups of 4
  // codes) and the reduction's alignment.
  std::string table_op;
  int k_align = 1;
};

KernelSource gemm_source(const std::string& k) {
  std::smatch m;
  static const std::regex tile("_(\\d+)x(\\d+)(c\\d)?__");
  KernelSource s;
  if (std::regex_search(k, m, tile)) s.mr = std::stoi(m[1]), s.nr = std::stoi(m[2]);
  auto set = [&s](const char* file, const char* flags, const char* mac_op, int macs_per_op,
                  const char* widen_op = "", int widen_lanes = 0) {
    s.file = file, s.flags = flags, s.mac_op = mac_op, s.macs_per_op = macs_per_op;
    s.widen_op = widen_op, s.widen_lanes = widen_lanes;
  };
  if (k == "conv_qu8_gemm_8x8__neon") {
    set("conv_qu8_gemm__neon.cpp", "", "smlal2?", 4, "uxtl2?|ushll2?", 8);
  } else if (k == "conv_qu8_tbl_w2_1x16__neon") {
    // 4 lookups (2 bit planes x lo/hi nibble tables) per 16 channels x 4 codes: 16 MACs each.
    set("conv_qu8_tbl__neon.cpp", "", "tbl", 16);
    s.table_op = "trn1";
    s.k_align = 64;
  } else if (k == "conv_qu8_gemm_4x16c4__neondot") {
    set("conv_qu8_gemm__neondot.cpp", "-march=armv8.2-a+dotprod", "sdot", 16);
  } else if (k == "conv_f32_gemm_6x16__neon") {
    set("conv_f32_gemm__neon.cpp", "", "fmla", 4);
  } else if (k == "conv_qu8_gemm_6x16c2__avx2") {
    set("conv_qu8_gemm__avx2.cpp", "-mavx2", "vpmaddwd", 16, "vpmovzxbw", 16);
  } else if (k == "conv_f32_gemm_6x16__avx2_fma") {
    set("conv_f32_gemm__avx2_fma.cpp", "-mavx2 -mfma", "vfmadd...ps", 8);
  }
  return s;
}

KernelSource kernel_source(const std::string& k) {
  std::smatch m;
  static const std::regex bs("conv_bitserial_w(\\d)a(\\d)__(neondot|neon|avx2)");
  if (!std::regex_match(k, m, bs)) {
    KernelSource s = gemm_source(k);
    if (s.file.empty())
      throw Error("device model: no loop model for kernel '" + k +
                  "' (modelled: the int8/fp32 GEMM rows of NEON, NEON-dotprod and AVX2, the "
                  "2-bit table-lookup row of NEON and the bit-serial rows); see "
                  "docs/device_models.md, Limits");
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

const std::string& DeviceModel::llvm_mca_version() {
  if (llvm_mca_version_.empty()) {
    const std::string out = devmodel::run_command(options_.llvm_mca + " --version");
    std::smatch m;
    static const std::regex version("LLVM version ([0-9.]+)");
    llvm_mca_version_ = std::regex_search(out, m, version) ? "LLVM " + m[1].str() : "unknown";
  }
  return llvm_mca_version_;
}

nlohmann::json DeviceModel::provenance_json() {
  const auto& c = spec_.coefficients;
  return {{"source", "predicted"},
          {"text", provenance()},
          {"model", spec_.name},
          {"model_file", spec_.path},
          {"core", spec_.core},
          {"mca_model", core_->mca_model_note},
          {"llvm_mca", options_.llvm_mca + " (" + llvm_mca_version() + ")"},
          {"coefficients",
           {{"micro_scale", c.micro_scale},
            {"pass_scale", c.pass_scale},
            {"layer_overhead_us", c.layer_overhead_us}}}};
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
                     v.at("loop_instructions"),
                     v.at("table_cycles_per_group")};
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
               {"loop_instructions", c.loop_instructions},
               {"table_cycles_per_group", c.table_cycles_per_group}};
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

std::string triple_of(const CoreInfo& core) {
  return core.arch == "aarch64" ? "aarch64-linux-gnu" : "x86_64-unknown-linux-gnu";
}

// `text` (a header or a wrapper source) written to a temporary file, compiled to assembly by the
// target's compiler; `include` = forced-include it into `source`, else compile it.
std::string compile_asm(const CoreInfo& core, const std::string& source_dir,
                        const std::string& source, const std::string& flags,
                        const std::string& text = "", bool include = false) {
  const std::string tmp = text.empty() ? "" : temp_file(text, include ? ".h" : ".cpp");
  const std::string cxx = core.arch == "aarch64" ? "aarch64-linux-gnu-g++" : "g++";
  const std::string input = include        ? "-include " + tmp + " " + source
                            : text.empty() ? source
                                           : tmp;
  try {
    const std::string out = devmodel::run_command(cxx + " " + core.compile_flags + " " + flags +
                                                  " -I" + source_dir + " -S -o - " + input);
    if (!tmp.empty()) fs::remove(tmp);
    return out;
  } catch (...) {
    if (!tmp.empty()) fs::remove(tmp);
    throw;
  }
}

// The bit-serial kernel's MIXNAS_BS_MCA_* hooks marking every instantiation's step by name
// ("bs_<W>_<A>_<MR>_<NVU>"), so one compile of the source serves every (W, A) row.
std::string bitserial_marks(const CoreInfo& core) {
  const std::string cmt = core.arch == "aarch64" ? "//" : "#";
  std::string h;
  for (const char* which : {"BEGIN", "END"})
    h += std::string("#define MIXNAS_BS_MCA_") + which + "(W, A, MR, NVU) asm volatile(\"" + cmt +
         " LLVM-MCA-" + which +
         " bs_%c0_%c1_%c2_%c3\" ::\"i\"(W), \"i\"(A), \"i\"(MR), \"i\"(NVU))\n";
  return h;
}

std::string bitserial_region(const KernelSource& src) {
  return "bs_" + std::to_string(src.w_bits) + "_" + std::to_string(src.a_bits) + "_" +
         std::to_string(src.mr) + "_" + std::to_string(src.nr / src.lanes);
}

// The key of a kernel's compiled source in DeviceModel::asm_ (one per file and flags).
std::string asm_key(const KernelSource& src) {
  return (src.bitserial ? "bitserial:" : "") + src.file + "|" + src.flags;
}

// The int8 kernel whose epilogue a bit-serial row shares (the same template).
std::string epilogue_kernel(const CoreInfo& core, const KernelSource& src) {
  if (core.arch != "aarch64") return "conv_qu8_gemm_6x16c2__avx2";
  return src.file.find("neondot") != std::string::npos ? "conv_qu8_gemm_4x16c4__neondot"
                                                       : "conv_qu8_gemm_8x8__neon";
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
  return devmodel::mca_cycles_per_iteration(mca, triple_of(core), core.mca_cpu, l->body) / n;
}

void check_found(bool found, const std::string& kernel, const KernelSource& src,
                 const CoreInfo& core) {
  if (!found)
    throw Error("device model: found no microkernel loop of " + kernel + " in " + src.file +
                " compiled for " + core.arch + " (did the kernel source change shape?)");
}

// A GEMM row's figures from its compiled source.
KernelCycles gemm_cycles(const std::string& kernel, const KernelSource& src,
                         const std::string& text, const CoreInfo& core, const std::string& mca) {
  const bool arm = core.arch == "aarch64";
  KernelCycles c;
  const auto loops = devmodel::innermost_loops(text);
  const AsmLoop* micro = loop_with_most(loops, src.mac_op);
  check_found(micro != nullptr, kernel, src, core);
  const double macs = devmodel::count_mnemonic(micro->body, src.mac_op) * src.macs_per_op;
  c.cycles_per_mac =
      devmodel::mca_cycles_per_iteration(mca, triple_of(core), core.mca_cpu, micro->body) / macs;
  c.loop_instructions = static_cast<int>(micro->body.size());
  const std::string div = arm ? "fdiv" : "vdivps", cvt = arm ? "scvtf" : "vcvtdq2ps";
  // quantize_rows: y / s, rounding, clamp, store per code; the int-to-float scale and bias pass
  // wherever GCC put it (inlined into gemm_block at -O3).
  c.quantize_cycles_per_output = per_element(loops, div, "quantize_rows", core, mca);
  c.scale_cycles_per_output = per_element(loops, cvt, "", core, mca);
  if (!src.widen_op.empty())  // im2col widening the codes to int16
    c.im2col_cycles_per_element =
        per_element(loops, src.widen_op, "gemm_block", core, mca, src.widen_lanes);
  if (!src.table_op.empty()) {  // the loop building 16 groups' tables a turn
    const AsmLoop* build = loop_with_most(loops, src.table_op);
    check_found(build != nullptr, kernel, src, core);
    c.table_cycles_per_group =
        devmodel::mca_cycles_per_iteration(mca, triple_of(core), core.mca_cpu, build->body) / 16;
  }
  return c;
}

// A bit-serial row's figures from its compiled source; the epilogue's are the int8 row's.
KernelCycles bitserial_cycles(const std::string& kernel, const KernelSource& src,
                              const std::string& text, const CoreInfo& core, const std::string& mca,
                              const KernelCycles& epilogue) {
  KernelCycles c;
  const std::vector<std::string> body = devmodel::marked_region(text, bitserial_region(src));
  check_found(!body.empty(), kernel, src, core);
  c.cycles_per_mac = devmodel::mca_cycles_per_iteration(mca, triple_of(core), core.mca_cpu, body) /
                     (64.0 * src.mr * src.nr);
  c.loop_instructions = static_cast<int>(body.size());
  if (core.arch == "aarch64") {  // conv_bitpack__neon{,dot}: bitpack_portable, one plane a turn
    const AsmLoop* pack = nullptr;
    const auto loops = devmodel::innermost_loops(text);
    for (const AsmLoop& l : loops)
      if (l.function.find("conv_bitpack") != std::string::npos &&
          (!pack || l.body.size() > pack->body.size()))
        pack = &l;
    if (pack)
      c.pack_cycles_per_plane_byte =
          devmodel::mca_cycles_per_iteration(mca, triple_of(core), core.mca_cpu, pack->body);
  }
  c.scale_cycles_per_output = epilogue.scale_cycles_per_output;
  c.quantize_cycles_per_output = epilogue.quantize_cycles_per_output;
  return c;
}

// The runtime's apply_activation_n<N> for one activation alone (N = activation.cpp's NEON
// baseline width, activation__avx2.cpp's on x86).
std::string activation_wrapper(const CoreInfo& core, rt::Activation kind) {
  const int n = core.arch == "aarch64" ? 4 : 8;
  return "#define MIXNAS_KERNEL_ISA isa_devmodel\n"
         "#include \"deploy/runtime/kernels/activation_impl.h\"\n"
         "void mixnas_devmodel_act(float* d, size_t n) {\n"
         "  mixnas::rt::ActivationSpec s;\n  s.kind = static_cast<mixnas::rt::Activation>(" +
         std::to_string(static_cast<int>(kind)) +
         ");\n  mixnas::rt::isa_devmodel::apply_activation_n<" + std::to_string(n) +
         ">(s, d, n);\n}\n";
}

// Cycles per element of an activation's main loop (its longest innermost loop).
double activation_cycles(const std::string& act, const CoreInfo& core,
                         const std::string& source_dir, const std::string& mca) {
  rt::Activation kind;
  if (!rt::parse_activation(act, &kind))
    throw Error("device model: unknown activation '" + act + "'");
  const std::string text = compile_asm(core, source_dir, "", core.arch == "aarch64" ? "" : "-mavx2",
                                       activation_wrapper(core, kind));
  const AsmLoop* main = nullptr;
  const auto loops = devmodel::innermost_loops(text);
  for (const AsmLoop& l : loops)
    if (!main || l.body.size() > main->body.size()) main = &l;
  if (!main) return 0;
  const int n = (core.arch == "aarch64" ? 4 : 8) * rt::kActUnroll;  // elements per iteration
  return devmodel::mca_cycles_per_iteration(mca, triple_of(core), core.mca_cpu, main->body) / n;
}

}  // namespace

void DeviceModel::compile_missing(const std::set<std::string>& kernels) {
  std::map<std::string, KernelSource> todo;  // asm key -> a kernel of that source
  for (const std::string& k : kernels) {
    const KernelSource src = kernel_source(k);
    if (!asm_.count(asm_key(src))) todo.emplace(asm_key(src), src);
  }
  std::vector<std::pair<std::string, KernelSource>> list(todo.begin(), todo.end());
  std::vector<std::string> out(list.size());
  devmodel::parallel_for(list.size(), options_.jobs, [&](size_t i) {
    const KernelSource& src = list[i].second;
    const std::string file = options_.source_dir + "/deploy/runtime/kernels/" + src.file;
    out[i] = src.bitserial ? compile_asm(*core_, options_.source_dir, file, src.flags,
                                         bitserial_marks(*core_), /*include=*/true)
                           : compile_asm(*core_, options_.source_dir, file, src.flags);
  });
  for (size_t i = 0; i < list.size(); ++i) asm_[list[i].first] = std::move(out[i]);
}

void DeviceModel::prepare(const std::set<std::string>& kernels,
                          const std::set<std::string>& activations) {
  std::set<std::string> gemm, bitserial;
  for (const std::string& k : kernels) {
    if (kernels_.count(k)) continue;
    const KernelSource src = kernel_source(k);
    (src.bitserial ? bitserial : gemm).insert(k);
    if (src.bitserial && !kernels_.count(epilogue_kernel(*core_, src)))
      gemm.insert(epilogue_kernel(*core_, src));
  }
  std::vector<std::string> acts;
  for (const std::string& a : activations)
    if (a != "identity" && !activations_.count(a)) acts.push_back(a);
  if (gemm.empty() && bitserial.empty() && acts.empty()) return;
  std::set<std::string> all = gemm;
  all.insert(bitserial.begin(), bitserial.end());
  compile_missing(all);
  // The GEMM rows and activations first (bit-serial rows take the int8 row's epilogue).
  std::vector<std::string> first(gemm.begin(), gemm.end());
  std::vector<KernelCycles> figures(first.size());
  std::vector<double> act_cycles(acts.size());
  devmodel::parallel_for(first.size() + acts.size(), options_.jobs, [&](size_t i) {
    if (i >= first.size()) {
      const size_t a = i - first.size();
      act_cycles[a] = activation_cycles(acts[a], *core_, options_.source_dir, options_.llvm_mca);
      return;
    }
    const KernelSource src = kernel_source(first[i]);
    figures[i] = gemm_cycles(first[i], src, asm_.at(asm_key(src)), *core_, options_.llvm_mca);
  });
  for (size_t i = 0; i < first.size(); ++i) kernels_[first[i]] = figures[i];
  for (size_t i = 0; i < acts.size(); ++i) activations_[acts[i]] = act_cycles[i];
  const std::vector<std::string> second(bitserial.begin(), bitserial.end());
  figures.assign(second.size(), KernelCycles{});
  devmodel::parallel_for(second.size(), options_.jobs, [&](size_t i) {
    const KernelSource src = kernel_source(second[i]);
    figures[i] = bitserial_cycles(second[i], src, asm_.at(asm_key(src)), *core_, options_.llvm_mca,
                                  kernels_.at(epilogue_kernel(*core_, src)));
  });
  for (size_t i = 0; i < second.size(); ++i) kernels_[second[i]] = figures[i];
  dirty_ = true;
}

const KernelCycles& DeviceModel::kernel_cycles(const std::string& kernel) {
  prepare({kernel}, {});
  return kernels_.at(kernel);
}

double DeviceModel::activation_cycles_per_element(const std::string& act) {
  if (act == "identity") return 0;
  prepare({}, {act});
  return activations_.at(act);
}

namespace {

// The pick helper's answers to `lines` (signatures as JSON lines).
std::string run_pick_helper(const CoreInfo& core, const std::string& helper,
                            const std::string& lines) {
  const std::string input = temp_file(lines, ".jsonl");
  std::string emulator;
  if (core.arch == "aarch64")  // the cross build's sysroot, as its ctest emulator uses it
    emulator = "LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib qemu-aarch64 -L /usr/aarch64-linux-gnu ";
  try {
    std::string out = devmodel::run_command("env MIXNAS_CPU_DISABLE=" + core.cpu_disable + " " +
                                            emulator + helper + " < " + input);
    fs::remove(input);
    return out;
  } catch (...) {
    fs::remove(input);
    throw;
  }
}

}  // namespace

void DeviceModel::pick_missing(const std::vector<eval::LayerSignature>& signatures) {
  std::vector<std::string> lines;
  std::set<std::string> asked;
  for (const auto& s : signatures)
    if (!picks_.count(s.key()) && asked.insert(s.key()).second)
      lines.push_back(s.to_json().dump() + "\n");
  if (lines.empty()) return;
  if (!fs::exists(options_.pick_helper))
    throw Error("device model: " + options_.pick_helper + " is missing; build it: " +
                (core_->arch == "aarch64"
                     ? "cmake --preset aarch64 && cmake --build --preset aarch64 --target "
                       "mixnas-devicemodel-pick"
                     : "cmake --build --preset default --target mixnas-devicemodel-pick"));
  // One helper process per job, each on a share of the signatures (qemu is the slow part).
  const size_t chunks = std::min(lines.size(), static_cast<size_t>(std::max(options_.jobs, 1)));
  std::vector<std::string> in(chunks), out(chunks);
  for (size_t i = 0; i < lines.size(); ++i) in[i % chunks] += lines[i];
  devmodel::parallel_for(chunks, options_.jobs, [&](size_t c) {
    out[c] = run_pick_helper(*core_, options_.pick_helper, in[c]);
  });
  for (const std::string& text : out) {
    std::istringstream answers(text);
    for (std::string line; std::getline(answers, line);) {
      if (line.empty()) continue;
      const auto j = nlohmann::json::parse(line);
      picks_[j.at("key")] = {j.at("kernel"), j.at("weight_bytes"), j.at("resident_weight_bytes"),
                             j.at("arena_bytes")};
    }
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
    const int64_t k_pad = up(taps * s.in_c, std::max(group, src.k_align));
    micro = static_cast<double>(up(m, src.mr)) * up(n, src.nr) * k_pad * kc.cycles_per_mac;
    im2col = static_cast<double>(m) * k_pad *
             (kc.im2col_cycles_per_element + kc.table_cycles_per_group / 4);
  }
  const double epilogue = static_cast<double>(m) * n *
                          (kc.scale_cycles_per_output + activation_cycles_per_element(s.act) +
                           (s.out_bits == 32 ? 0 : kc.quantize_cycles_per_output));
  // Blocks of output pixels are shared between threads.
  const int64_t parallel = std::min<int64_t>(spec_.threads, (m + src.mr - 1) / src.mr);
  const double cycles_per_ms = static_cast<double>(parallel) * spec_.clock_ghz * 1e6;
  LayerPrediction r;
  r.kernel = p.kernel;
  r.micro_ms = micro / cycles_per_ms;
  r.pass_ms = (im2col + epilogue) / cycles_per_ms;
  r.compute_ms = spec_.coefficients.compute_ms(r.micro_ms, r.pass_ms);
  r.memory_ms = layer_bytes_moved(s, p.resident_weight_bytes) / (spec_.mem_bw_gbs * 1e6);
  r.latency_ms = std::max(r.compute_ms, r.memory_ms);
  r.weight_bytes = p.weight_bytes;
  r.resident_weight_bytes = p.resident_weight_bytes;
  r.arena_bytes = p.arena_bytes;
  return r;
}

void DeviceModel::prepare_picked(const std::vector<eval::LayerSignature>& signatures) {
  std::set<std::string> kernels, acts;
  for (const auto& s : signatures) kernels.insert(picks_.at(s.key()).kernel), acts.insert(s.act);
  prepare(kernels, acts);
}

std::vector<LayerPrediction> DeviceModel::predict_layers(
    const std::vector<eval::LayerSignature>& signatures) {
  pick_missing(signatures);
  prepare_picked(signatures);
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
  table.set_provenance(provenance_json());
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
