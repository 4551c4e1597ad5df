#include "deploy/runtime/cpu_features.h"

#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "core/text.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif
#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace mixnas::rt {
namespace {

std::string read_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = text::trim(line.substr(0, colon));
    if (key == "model name" || key == "Hardware" || key == "CPU part") {
      return text::trim(line.substr(colon + 1));
    }
  }
  return "";
}

#if defined(__x86_64__) || defined(_M_X64)
void detect_x86(CpuFeatures& f) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return;
  f.sse41 = (c >> 19) & 1;
  f.fma = (c >> 12) & 1;
  bool osxsave = (c >> 27) & 1;
  bool avx = (c >> 28) & 1;
  unsigned long long xcr0 = 0;
  if (osxsave) {
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
  }
  bool ymm_os = (xcr0 & 0x6) == 0x6;
  bool zmm_os = (xcr0 & 0xe6) == 0xe6;
  if (__get_cpuid_max(0, nullptr) < 7) return;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = avx && ymm_os && ((b >> 5) & 1);
  f.fma = f.fma && ymm_os;
  if (zmm_os) {
    f.avx512f = (b >> 16) & 1;
    f.avx512bw = f.avx512f && ((b >> 30) & 1);
    f.avx512vl = f.avx512f && ((b >> 31) & 1);
    f.avx512vnni = f.avx512f && ((c >> 11) & 1);
    f.avx512vpopcntdq = f.avx512f && ((c >> 14) & 1);
    f.avx512vbmi = f.avx512f && ((c >> 1) & 1);
  }
  unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  __cpuid_count(7, 1, a1, b1, c1, d1);
  f.avxvnni = f.avx2 && ((a1 >> 4) & 1);
}
#endif

#if defined(__aarch64__)
void detect_aarch64(CpuFeatures& f) {
  unsigned long hwcap = getauxval(AT_HWCAP);
  f.neon = (hwcap & HWCAP_ASIMD) != 0;
#ifdef HWCAP_ASIMDDP
  f.dotprod = (hwcap & HWCAP_ASIMDDP) != 0;
#endif
#ifdef HWCAP2_I8MM
  f.i8mm = (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0;
#endif
}
#endif

void apply_mask(CpuFeatures& f, const char* mask) {
  if (!mask) return;
  for (const auto& raw : text::split(mask, ',')) {
    std::string name = text::trim(raw);
    if (name == "sse41") f.sse41 = false;
    if (name == "avx2") f.avx2 = f.fma = f.avxvnni = false;
    if (name == "avx2" || name == "avx512f") {
      f.avx512f = f.avx512bw = f.avx512vl = f.avx512vnni = f.avx512vpopcntdq = f.avx512vbmi = false;
    }
    if (name == "avx512bw") f.avx512bw = false;
    if (name == "avx512vl") f.avx512vl = false;
    if (name == "avx512vnni") f.avx512vnni = false;
    if (name == "avx512vpopcntdq") f.avx512vpopcntdq = false;
    if (name == "avx512vbmi") f.avx512vbmi = false;
    if (name == "avxvnni") f.avxvnni = false;
    if (name == "neon") f.neon = f.dotprod = f.i8mm = false;
    if (name == "dotprod") f.dotprod = false;
    if (name == "i8mm") f.i8mm = false;
  }
}

}  // namespace

std::vector<std::string> CpuFeatures::names() const {
  std::vector<std::string> out;
  auto add = [&](bool on, const char* n) {
    if (on) out.emplace_back(n);
  };
  add(sse41, "sse41");
  add(avx2, "avx2");
  add(fma, "fma");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512vl, "avx512vl");
  add(avx512vnni, "avx512vnni");
  add(avx512vpopcntdq, "avx512vpopcntdq");
  add(avx512vbmi, "avx512vbmi");
  add(avxvnni, "avxvnni");
  add(neon, "neon");
  add(dotprod, "dotprod");
  add(i8mm, "i8mm");
  return out;
}

CpuFeatures detect_cpu_features() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(_M_X64)
  f.arch = "x86_64";
  detect_x86(f);
#elif defined(__aarch64__)
  f.arch = "aarch64";
  detect_aarch64(f);
#else
  f.arch = "unknown";
#endif
  f.model_name = read_model_name();
  unsigned hc = std::thread::hardware_concurrency();
  f.logical_cores = hc > 0 ? static_cast<int>(hc) : 1;
  return f;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f = detect_cpu_features();
    apply_mask(f, std::getenv("MIXNAS_CPU_DISABLE"));
    return f;
  }();
  return features;
}

}  // namespace mixnas::rt
