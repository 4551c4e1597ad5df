#pragma once
// Fused element-wise kernels of the mixed operations (mixture of activations, mixture of
// activation quantizers), written as blocked loops the compiler vectorizes; built for AVX-512,
// AVX2 and baseline x86-64 and chosen at load time (GCC target_clones).
#include <cstdint>

namespace mixnas::supernet::fused {

// out[k] = sum_i p[i] * act_i(x[k]) for k < n. acts: Act codes.
void mixed_act_forward(const float* x, float* out, int64_t n, const int* acts, const float* p,
                       int count);
// gx[k] = g[k] * sum_i p[i] * act_i'(x[k]); gp[i] += sum_k g[k] * act_i(x[k]).
void mixed_act_backward(const float* x, const float* g, float* gx, int64_t n, const int* acts,
                        const float* p, int count, double* gp);

// One activation-quantizer candidate. kind: 0 fp32, 1 unsigned, 2 signed LSQ+, 3 image grid.
struct QuantCandidate {
  int kind;
  float p, s, z, qmax, beta;
  bool z_inside;
};
// out[k] = sum_i p_i * Q_i(x[k]).
void mixed_quant_forward(const float* x, float* out, int64_t n, const QuantCandidate* c, int count);
// gx[k] = g[k] * sum_i p_i * 1[inside_i]; acc[3 i + 0..2] += sum_k g * (Q_i, dQ_i/ds, dQ_i/dbeta).
void mixed_quant_backward(const float* x, const float* g, float* gx, int64_t n,
                          const QuantCandidate* c, int count, double* acc);

// One weight-quantizer candidate: bits 1..8 (LSQ, one step per output channel) or 32 (fp32).
struct WeightCandidate {
  int bits;
  float p;
  const float* step;  // [rows]; unused for 32 bits
};
// out[r][k] = sum_j p_j * Q_j(w[r][k]) over `rows` output channels of `cols` contiguous weights.
void mixed_weight_forward(const float* w, float* out, int64_t rows, int64_t cols,
                          const WeightCandidate* c, int count);
// gw = g * sum_j p_j * 1[inside_j]; gp[j] += sum g * Q_j(w); gs[j * rows + r] += sum over row r of
// g * dQ_j/ds (without p_j and the LSQ gradient scale).
void mixed_weight_backward(const float* w, const float* g, float* gw, int64_t rows, int64_t cols,
                           const WeightCandidate* c, int count, double* gp, double* gs);

}  // namespace mixnas::supernet::fused
