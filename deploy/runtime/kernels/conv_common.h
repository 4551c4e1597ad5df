#pragma once
// Internal helpers shared by the conv kernel tables (conv.cpp, conv_lowbit.cpp): the ISA
// predicates their rows are chosen by, and the geometry text of their error messages. Every
// ISA test of the kernel tables is one of these predicates.
#include <string>

#include "core/error.h"
#include "deploy/runtime/cpu_features.h"
#include "deploy/runtime/kernels/conv.h"

namespace mixnas::rt::kernels {

inline bool always(const CpuFeatures&) {
  return true;
}
#if defined(__x86_64__)
inline bool has_avx2(const CpuFeatures& f) {
  return f.avx2;
}
inline bool no_avx2(const CpuFeatures& f) {
  return !f.avx2;
}
inline bool has_avx2_fma(const CpuFeatures& f) {
  return f.avx2 && f.fma;
}
inline bool has_avx512f(const CpuFeatures& f) {
  return f.avx512f;
}
inline bool has_avx512vnni(const CpuFeatures& f) {
  return f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni;
}
inline bool has_avx512vpopcnt(const CpuFeatures& f) {
  return f.avx512f && f.avx512bw && f.avx512vpopcntdq;
}
inline bool has_avx512vbmi(const CpuFeatures& f) {
  return f.avx512f && f.avx512bw && f.avx512vl && f.avx512vbmi;
}
#endif
#if defined(__aarch64__)
inline bool has_neon(const CpuFeatures& f) {
  return f.neon;
}
inline bool has_dotprod(const CpuFeatures& f) {
  return f.neon && f.dotprod;
}
inline bool neon_only(const CpuFeatures& f) {
  return f.neon && !f.dotprod;
}
#endif

inline int round_up(int x, int m) {
  return (x + m - 1) / m * m;
}

// "80x80x32 -> 64, kernel 3x3, stride 1x1, groups 1"
inline std::string geometry_text(const ConvGeometry& g) {
  return std::to_string(g.in_h) + "x" + std::to_string(g.in_w) + "x" + std::to_string(g.in_c) +
         " -> " + std::to_string(g.out_c) + ", kernel " + std::to_string(g.kernel_h) + "x" +
         std::to_string(g.kernel_w) + ", stride " + std::to_string(g.stride_h) + "x" +
         std::to_string(g.stride_w) + ", groups " + std::to_string(g.groups);
}

// Throws mixnas::Error "<what_conv> (<geometry>): <what>".
[[noreturn]] inline void fail_conv(const char* what_conv, const ConvWeights& w,
                                   const std::string& what) {
  throw Error(std::string(what_conv) + " (" + geometry_text(w.geometry) + "): " + what);
}

}  // namespace mixnas::rt::kernels
