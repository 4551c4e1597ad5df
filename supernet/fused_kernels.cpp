#include "supernet/fused_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "supernet/activation.h"

// Versions for AVX-512, AVX2+FMA and baseline x86-64, picked at load time.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MIXNAS_MULTIVERSION \
  __attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))
#else
#define MIXNAS_MULTIVERSION
#endif

namespace mixnas::supernet::fused {

namespace {

constexpr int64_t kBlock = 1024;  // elements per block: the block's temporaries stay in L1
constexpr int kLanes = 16;        // independent partial sums (vectorizable reductions)

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

#define MIXNAS_FOR_EACH_ACT(M)                                                          \
  M(kIdentity)                                                                          \
  M(kRelu) M(kRelu6) M(kLeakyRelu) M(kHardswish) M(kSilu) M(kSigmoid) M(kTanh) M(kGelu) \
      M(kGeluTanh) M(kMish) M(kHardsigmoid)

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

// gx += p * g * f'(x); returns sum g * f(x) (kLanes independent partial sums, then double).
MIXNAS_MULTIVERSION double act_bwd_dispatch(int act, const float* __restrict x,
                                            const float* __restrict g, float* __restrict gx,
                                            int64_t n, float p) {
  float lanes[kLanes] = {};
  double sum = 0.0;
  const int64_t body = n - n % kLanes;
  switch (Act(act)) {
#define M(name)                                              \
  case Act::name:                                            \
    for (int64_t k = 0; k < body; k += kLanes)               \
      for (int j = 0; j < kLanes; ++j) {                     \
        const float v = x[k + j], gv = g[k + j];             \
        lanes[j] += gv * value<int(Act::name)>(v);           \
        gx[k + j] += p * gv * derivative<int(Act::name)>(v); \
      }                                                      \
    for (int64_t k = body; k < n; ++k) {                     \
      sum += double(g[k]) * value<int(Act::name)>(x[k]);     \
      gx[k] += p * g[k] * derivative<int(Act::name)>(x[k]);  \
    }                                                        \
    break;
    MIXNAS_FOR_EACH_ACT(M)
#undef M
  }
  for (int j = 0; j < kLanes; ++j) sum += lanes[j];
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

MIXNAS_MULTIVERSION void quant_bwd_block(const float* x, const float* g, float* gx, int64_t n,
                                         const QuantCandidate c, double* acc) {
  float lv[kLanes] = {}, ls[kLanes] = {}, lb[kLanes] = {};
  if (c.kind == 0) {
    for (int64_t k = 0; k < n; ++k) gx[k] += c.p * g[k];
    double sum = 0.0;
    for (int64_t k = 0; k < n; ++k) sum += double(g[k]) * x[k];
    acc[0] += sum;
    return;
  }
  const bool learned_z = c.kind == 2 && c.z_inside;
  const float lo_ds = c.kind == 2 ? -c.z - (learned_z ? c.beta / c.s : 0.0f) : 0.0f;
  const float hi_ds = c.qmax - c.z - (learned_z ? c.beta / c.s : 0.0f);
  const float out_db = learned_z ? 1.0f : 0.0f;
  const float lo_value = -c.z * c.s, hi_value = (c.qmax - c.z) * c.s;
  auto body = [&](int64_t k, float& v_acc, float& s_acc, float& b_acc) {
    const float xs = x[k] / c.s;
    const float u = xs + c.z;
    const float gv = g[k];
    const bool below = u<0.0f, above = u> c.qmax;
    const float r = round_even(std::min(std::max(u, 0.0f), c.qmax));
    const float inside_value = (r - c.z) * c.s;
    const float value = below ? lo_value : (above ? hi_value : inside_value);
    const float ds = below ? lo_ds : (above ? hi_ds : (r - c.z) - xs);
    const float db = (below || above) ? out_db : 0.0f;
    gx[k] += (below || above) ? 0.0f : c.p * gv;
    v_acc += gv * value;
    s_acc += gv * ds;
    b_acc += gv * db;
  };
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes)
    for (int j = 0; j < kLanes; ++j) body(k + j, lv[j], ls[j], lb[j]);
  float tv = 0, ts = 0, tb = 0;
  for (; k < n; ++k) body(k, tv, ts, tb);
  double sv = tv, ss = ts, sb = tb;
  for (int j = 0; j < kLanes; ++j) {
    sv += lv[j];
    ss += ls[j];
    sb += lb[j];
  }
  acc[0] += sv;
  acc[1] += ss;
  acc[2] += sb;
}

}  // namespace

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
