#include "supernet/fused_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "supernet/activation.h"

// Versions for AVX-512, AVX2 and baseline x86-64, picked at load time by CPU feature (an
// "arch=<cpu>" clone would be picked only on that exact CPU model: a newer or virtualised CPU with
// the same features would run the baseline version). The file is compiled with
// -ffp-contract=off, so every version computes the same floats.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MIXNAS_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MIXNAS_MULTIVERSION
#endif

namespace mixnas::supernet::fused {

namespace {

constexpr int64_t kBlock = 1024;  // elements per block: the block's temporaries stay in L1

// exp(x) for x in [-87, 88]: 2^n * e^r with |r| <= ln2/2, degree-6 polynomial (< 2 ulp).
inline float fast_exp(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  constexpr float kMagic = 12582912.0f;  // round to nearest integer (|x| < 2^22)
  const float n = (x * 1.44269504088896341f + kMagic) - kMagic;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float q = 1.0f / 720.0f;
  q = q * r + 1.0f / 120.0f;
  q = q * r + 1.0f / 24.0f;
  q = q * r + 1.0f / 6.0f;
  q = q * r + 0.5f;
  q = q * r + 1.0f;
  q = q * r + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return q * scale;
}
inline float fast_sigmoid(float x) {
  return 1.0f / (1.0f + fast_exp(-x));
}

// Value and derivative of each activation (definitions of docs/numerics.md).
template <int A>
inline float value(float x) {
  switch (Act(A)) {
    case Act::kIdentity:
      return x;
    case Act::kRelu:
      return std::max(x, 0.0f);
    case Act::kRelu6:
      return std::min(std::max(x, 0.0f), 6.0f);
    case Act::kLeakyRelu:
      return x >= 0.0f ? x : kLeakySlope * x;
    case Act::kHardswish:
      return x * std::min(std::max(x + 3.0f, 0.0f), 6.0f) * (1.0f / 6.0f);
    case Act::kSilu:
      return x * fast_sigmoid(x);
    case Act::kSigmoid:
      return fast_sigmoid(x);
    case Act::kTanh:
      return 2.0f * fast_sigmoid(2.0f * x) - 1.0f;
    case Act::kHardsigmoid:
      return std::min(std::max(x * (1.0f / 6.0f) + 0.5f, 0.0f), 1.0f);
    default:
      return act_value(Act(A), x);
  }
}
template <int A>
inline float derivative(float x) {
  switch (Act(A)) {
    case Act::kIdentity:
      return 1.0f;
    case Act::kRelu:
      return x > 0.0f ? 1.0f : 0.0f;
    case Act::kRelu6:
      return (x >= 0.0f && x <= 6.0f) ? 1.0f : 0.0f;
    case Act::kLeakyRelu:
      return x > 0.0f ? 1.0f : kLeakySlope;
    case Act::kHardswish:
      return x < -3.0f ? 0.0f : (x < 3.0f ? (2.0f * x + 3.0f) * (1.0f / 6.0f) : 1.0f);
    case Act::kSilu: {
      const float s = fast_sigmoid(x);
      return s * (1.0f + x * (1.0f - s));
    }
    case Act::kSigmoid: {
      const float s = fast_sigmoid(x);
      return s * (1.0f - s);
    }
    case Act::kTanh: {
      const float t = 2.0f * fast_sigmoid(2.0f * x) - 1.0f;
      return 1.0f - t * t;
    }
    case Act::kHardsigmoid:
      return (x > -3.0f && x < 3.0f) ? 1.0f / 6.0f : 0.0f;
    default:
      return act_derivative(Act(A), x);
  }
}

// clang-format 14 reflows this list differently on every run.
// clang-format off
#define MIXNAS_FOR_EACH_ACT(M) \
  M(kIdentity) M(kRelu) M(kRelu6) M(kLeakyRelu) M(kHardswish) M(kSilu) M(kSigmoid) M(kTanh) \
  M(kGelu) M(kGeluTanh) M(kMish) M(kHardsigmoid)
// clang-format on

MIXNAS_MULTIVERSION void act_fwd_dispatch(int act, const float* __restrict x, float* __restrict out,
                                          int64_t n, float p) {
  switch (Act(act)) {
#define M(name)                                                                \
  case Act::name:                                                              \
    for (int64_t k = 0; k < n; ++k) out[k] += p * value<int(Act::name)>(x[k]); \
    return;
    MIXNAS_FOR_EACH_ACT(M)
#undef M
  }
}

// gx += p * g * f'(x); returns sum g * f(x) (a SIMD reduction: float partial sums per lane).
MIXNAS_MULTIVERSION double act_bwd_dispatch(int act, const float* __restrict x,
                                            const float* __restrict g, float* __restrict gx,
                                            int64_t n, float p) {
  float sum = 0.0f;
  switch (Act(act)) {
#define M(name)                                                              \
  case Act::name:                                                            \
    _Pragma("omp simd reduction(+ : sum)") for (int64_t k = 0; k < n; ++k) { \
      const float v = x[k], gv = g[k];                                       \
      sum += gv * value<int(Act::name)>(v);                                  \
      gx[k] += p * gv * derivative<int(Act::name)>(v);                       \
    }                                                                        \
    break;
    MIXNAS_FOR_EACH_ACT(M)
#undef M
  }
  return sum;
}

// Round half to even by adding and removing 1.5 * 2^23 (valid for |v| < 2^22; callers clamp).
inline float round_even(float v) {
  constexpr float kMagic = 12582912.0f;
  return (v + kMagic) - kMagic;
}

MIXNAS_MULTIVERSION void quant_fwd_block(const float* x, float* out, int64_t n,
                                         const QuantCandidate c) {
  if (c.kind == 0) {
    for (int64_t k = 0; k < n; ++k) out[k] += c.p * x[k];
    return;
  }
  for (int64_t k = 0; k < n; ++k) {
    const float u = std::min(std::max(x[k] / c.s + c.z, 0.0f), c.qmax);
    out[k] += c.p * ((round_even(u) - c.z) * c.s);
  }
}

MIXNAS_MULTIVERSION void quant_bwd_block(const float* __restrict x, const float* __restrict g,
                                         float* __restrict gx, int64_t n, const QuantCandidate c,
                                         double* acc) {
  const float p = c.p;
  if (c.kind == 0) {
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t k = 0; k < n; ++k) {
      gx[k] += p * g[k];
      sum += g[k] * x[k];
    }
    acc[0] += sum;
    return;
  }
  const bool learned_z = c.kind == 2 && c.z_inside;
  const float s = c.s, z = c.z, qmax = c.qmax;
  const float lo_ds = c.kind == 2 ? -z - (learned_z ? c.beta / s : 0.0f) : 0.0f;
  const float hi_ds = qmax - z - (learned_z ? c.beta / s : 0.0f);
  const float out_db = learned_z ? 1.0f : 0.0f;
  const float lo_value = -z * s, hi_value = (qmax - z) * s;
  float sv = 0.0f, ss = 0.0f, sb = 0.0f;
#pragma omp simd reduction(+ : sv, ss, sb)
  for (int64_t k = 0; k < n; ++k) {
    const float xs = x[k] / s;
    const float u = xs + z;
    const float gv = g[k];
    const bool below = u<0.0f, above = u> qmax;
    const float r = round_even(std::min(std::max(u, 0.0f), qmax));
    const float value = below ? lo_value : (above ? hi_value : (r - z) * s);
    const float ds = below ? lo_ds : (above ? hi_ds : (r - z) - xs);
    const float db = (below || above) ? out_db : 0.0f;
    gx[k] += (below || above) ? 0.0f : p * gv;
    sv += gv * value;
    ss += gv * ds;
    sb += gv * db;
  }
  acc[0] += sv;
  acc[1] += ss;
  acc[2] += sb;
}

// Weight codes: b >= 2: clamp(round(w / s), -2^(b-1), 2^(b-1) - 1) (clamped first, as the bounds
// are integers); b = 1: w >= 0 ? +1 : -1. Value s * code.
MIXNAS_MULTIVERSION void weight_fwd_row(const float* __restrict w, float* __restrict out, int64_t n,
                                        int bits, float p, float s) {
  if (bits == 32) {
    for (int64_t k = 0; k < n; ++k) out[k] += p * w[k];
  } else if (bits == 1) {
    for (int64_t k = 0; k < n; ++k) out[k] += p * ((w[k] >= 0.0f ? 1.0f : -1.0f) * s);
  } else {
    const float lo = -float(int64_t{1} << (bits - 1)), hi = float((int64_t{1} << (bits - 1)) - 1);
    for (int64_t k = 0; k < n; ++k) {
      const float u = std::min(std::max(w[k] / s, lo), hi);
      out[k] += p * (round_even(u) * s);
    }
  }
}

// gw += p * g inside the clipping range (bounds included, as clamp's gradient); adds sum g * value
// to acc[0] and sum g * d value / ds to acc[1]. kBinary: 1-bit weights (sign codes).
template <bool kBinary>
inline void weight_bwd_body(const float* __restrict w, const float* __restrict g,
                            float* __restrict gw, int64_t n, float lo, float hi, float p, float s,
                            double* acc) {
  float sv = 0.0f, ss = 0.0f;
#pragma omp simd reduction(+ : sv, ss)
  for (int64_t k = 0; k < n; ++k) {
    const float v = w[k] / s, gv = g[k];
    const bool below = v<lo, above = v> hi;
    float code, ds;
    if (kBinary) {
      code = w[k] >= 0.0f ? 1.0f : -1.0f;
      ds = (below || above) ? code : code - v;
    } else {
      code = round_even(std::min(std::max(v, lo), hi));
      ds = below ? lo : (above ? hi : code - v);
    }
    gw[k] += (below || above) ? 0.0f : p * gv;
    sv += gv * (code * s);
    ss += gv * ds;
  }
  acc[0] += sv;
  acc[1] += ss;
}

MIXNAS_MULTIVERSION void weight_bwd_row(const float* __restrict w, const float* __restrict g,
                                        float* __restrict gw, int64_t n, int bits, float p, float s,
                                        double* acc) {
  if (bits == 32) {
    float sv = 0.0f;
#pragma omp simd reduction(+ : sv)
    for (int64_t k = 0; k < n; ++k) {
      sv += g[k] * w[k];
      gw[k] += p * g[k];
    }
    acc[0] += sv;
  } else if (bits == 1) {
    weight_bwd_body<true>(w, g, gw, n, -1.0f, 1.0f, p, s, acc);
  } else {
    weight_bwd_body<false>(w, g, gw, n, -float(int64_t{1} << (bits - 1)),
                           float((int64_t{1} << (bits - 1)) - 1), p, s, acc);
  }
}

}  // namespace

void mixed_weight_forward(const float* w, float* out, int64_t rows, int64_t cols,
                          const WeightCandidate* c, int count) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < cols; b += kBlock) {
      const int64_t m = std::min(kBlock, cols - b), at = r * cols + b;
      std::fill(out + at, out + at + m, 0.0f);
      for (int j = 0; j < count; ++j)
        weight_fwd_row(w + at, out + at, m, c[j].bits, c[j].p,
                       c[j].bits == 32 ? 1.0f : c[j].step[r]);
    }
}

void mixed_weight_backward(const float* w, const float* g, float* gw, int64_t rows, int64_t cols,
                           const WeightCandidate* c, int count, double* gp, double* gs) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < cols; b += kBlock) {
      const int64_t m = std::min(kBlock, cols - b), at = r * cols + b;
      std::fill(gw + at, gw + at + m, 0.0f);
      for (int j = 0; j < count; ++j) {
        double acc[2] = {0.0, 0.0};
        weight_bwd_row(w + at, g + at, gw + at, m, c[j].bits, c[j].p,
                       c[j].bits == 32 ? 1.0f : c[j].step[r], acc);
        gp[j] += acc[0];
        gs[j * rows + r] += acc[1];
      }
    }
}

void mixed_act_forward(const float* x, float* out, int64_t n, const int* acts, const float* p,
                       int count) {
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t m = std::min(kBlock, n - b);
    std::fill(out + b, out + b + m, 0.0f);
    for (int i = 0; i < count; ++i) act_fwd_dispatch(acts[i], x + b, out + b, m, p[i]);
  }
}

void mixed_act_backward(const float* x, const float* g, float* gx, int64_t n, const int* acts,
                        const float* p, int count, double* gp) {
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t m = std::min(kBlock, n - b);
    std::fill(gx + b, gx + b + m, 0.0f);
    for (int i = 0; i < count; ++i)
      gp[i] += act_bwd_dispatch(acts[i], x + b, g + b, gx + b, m, p[i]);
  }
}

void mixed_quant_forward(const float* x, float* out, int64_t n, const QuantCandidate* c,
                         int count) {
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t m = std::min(kBlock, n - b);
    std::fill(out + b, out + b + m, 0.0f);
    for (int i = 0; i < count; ++i) quant_fwd_block(x + b, out + b, m, c[i]);
  }
}

void mixed_quant_backward(const float* x, const float* g, float* gx, int64_t n,
                          const QuantCandidate* c, int count, double* acc) {
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t m = std::min(kBlock, n - b);
    std::fill(gx + b, gx + b + m, 0.0f);
    for (int i = 0; i < count; ++i) quant_bwd_block(x + b, g + b, gx + b, m, c[i], acc + 3 * i);
  }
}

}  // namespace mixnas::supernet::fused
