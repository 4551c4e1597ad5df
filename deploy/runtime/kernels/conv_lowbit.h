#pragma once
// Low-bit (1..4-bit, and 8-bit x 1..4-bit) integer conv kernels of the mixnas runtime: bit-serial
// GEMM rows that sit above the int8 rows of the gemm table (conv.h), chosen per layer only where
// they measured faster than the int8 kernel on that CPU class (conv_lowbit_pick, docs/kernels.md).
//
// Bit planes (BitPlaneLayout): a code tensor [pixels][channels] of `bits`-bit codes is stored as
// `bits` planes per pixel; plane b holds bit b of every code, channel c at bit c % 64 of word
// c / 64; bits past the last channel are zero. Pixel p's plane b starts at
//   planes + p * pixel_stride + b * plane_stride   (uint64 words).
// The dense layout has plane_stride = words_per_plane() and pixel_stride = bits * that.
//
// Bit-serial arithmetic (exact, for every reduction make_conv_plan accepts):
//   weights are re-based to unsigned u = q_w + o_w (o_w = 2^(w_bits-1); 1-bit weights: the stored
//   bit, q_w = 2u - 1) and split into planes u_i; activations into planes a_j. Then
//     R = sum_k u * q_a = sum_{i,j} 2^(i+j) popcount(u_i AND a_j)            (unsigned, < 2^33)
//     acc = m_w * R - o_w * S_a - z_a * sum_k q_w     (m_w = 2 for 1-bit weights, else 1;
//                                                      S_a = sum_k q_a over the receptive field,
//                                                      padding taps counting the code z_a)
//   which equals sum_k q_w * (q_a - z_a). R and the terms are formed in int64; the result obeys
//   |acc| <= K * 128 * 255 < 2^31 (K <= 65792, the bound make_conv_plan enforces).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "deploy/runtime/kernels/conv.h"

namespace mixnas::rt {

struct BitPlaneLayout {
  int channels = 0;
  int bits = 0;
  int words_per_plane() const { return (channels + 63) / 64; }
  int words_per_pixel() const { return bits * words_per_plane(); }
};

// codes [pixels][row_stride] (channels used) -> dense planes [pixels][bits][words_per_plane].
// Throws mixnas::Error when a code does not fit in `bits` bits.
void pack_bit_planes(const uint8_t* codes, int pixels, int row_stride, const BitPlaneLayout& layout,
                     uint64_t* planes);
// Dense planes -> codes [pixels][row_stride] (channels written).
void unpack_bit_planes(const uint64_t* planes, int pixels, const BitPlaneLayout& layout,
                       uint8_t* codes, int row_stride);

// The low-bit rows (bit-serial GEMM per ISA, one row per (w_bits, a_bits)), in priority order.
std::vector<ConvKernelInfo> conv_lowbit_kernel_table(const CpuFeatures& features = cpu_features());
// The low-bit row make_conv_plan runs for `w` on `features`: the bit-serial row of the CPU's best
// ISA where that ISA's static rule (conv_lowbit.cpp, docs/kernels.md) says it beats the int8
// kernel for this layer's shape and bit-widths; "" where the int8 kernel runs (the same results:
// it reads 1..8-bit codes as bytes).
std::string conv_lowbit_pick(const ConvWeights& w, const CpuFeatures& features = cpu_features());
// A plan of conv_lowbit_pick's row, nullptr when it is "" (use the int8 rows).
// `w` must have been validated (make_conv_plan does).
std::unique_ptr<ConvPlan> make_conv_plan_lowbit(const ConvWeights& w,
                                                const CpuFeatures& features = cpu_features());
// Forces the low-bit row `kernel` (tests, benchmarks); nullptr when no low-bit row has that name.
// Throws mixnas::Error when the row does not fit `w` or this CPU lacks its ISA. Validates `w`.
std::unique_ptr<ConvPlan> make_conv_plan_lowbit_named(const ConvWeights& w,
                                                      const std::string& kernel);
// For `mixnas info`: per (w_bits, a_bits) pair with a rule on `features`, the bit-serial row and
// where it runs ("gemm/lowbit w1a1: <row> where K >= ..., else int8 (<int8 kernel>)"), then the
// pairs that always run the int8 kernel and why ("gemm/lowbit int8 fallback: ...").
std::vector<std::string> conv_lowbit_kernel_names_for(const CpuFeatures& features = cpu_features());

}  // namespace mixnas::rt
