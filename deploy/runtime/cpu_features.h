#pragma once
// CPU features found at run time. Kernel tables key on these; nothing else in the project asks the
// compiler which ISA it targets.
#include <string>
#include <vector>

namespace mixnas::rt {

struct CpuFeatures {
  std::string arch;        // "x86_64", "aarch64", or the build's processor name
  std::string model_name;  // as the OS reports it ("" when unknown)
  int logical_cores = 1;
  // x86-64
  bool sse41 = false;
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512vnni = false;
  bool avx512vpopcntdq = false;
  bool avx512vbmi = false;  // vpermb (byte table lookups)
  bool avxvnni = false;
  // aarch64
  bool neon = false;
  bool dotprod = false;
  bool i8mm = false;

  // Names of the features present, in a fixed order ("avx2", "avx512vnni", "neon", "dotprod"...).
  std::vector<std::string> names() const;
};

// Detected once (cpuid on x86-64, getauxval(AT_HWCAP) on aarch64) and cached.
// The environment variable MIXNAS_CPU_DISABLE (comma-separated names, e.g. "avx512f,avx512vnni")
// masks features, so tests and benchmarks can exercise the fallback kernels on any machine.
const CpuFeatures& cpu_features();

// Detection without the cache or the mask (for tests).
CpuFeatures detect_cpu_features();

}  // namespace mixnas::rt
