// Integer conv with 2-bit weights and 1..8-bit activation codes on AArch64 NEON without dot
// product, by table lookup (`tbl`) over the weights' bits: the scheme of T-MAC (Wei et al., 2024,
// "T-MAC: CPU Renaissance via Table Lookup for Low-Bit LLM Deployment on Edge"), made exact.
//
// Weights are 2-bit codes q in [-2, 1], split in two's complement into bits b0, b1 with
// q = b0 - 2 * b1. For four consecutive reduction indexes k = 4g .. 4g + 3 (a "group") and one
// output pixel with activation codes x_0..x_3, a table of 16 entries holds for every 4-bit index i
// the sum of the x_j whose bit j of i is set; the group's contribution to output channel c is then
//   T[i0(c)] - 2 * T[i1(c)]          (i0, i1: bit 0 / bit 1 of channel c's four weights).
// One `tbl` looks up 16 channels at once. Entries reach 4 * 255, more than a byte holds, so each
// code is split into nibbles (x = lo + 16 * hi) and two tables are looked up (entries <= 60):
// byte sums of 4 groups (<= 240) are widened into 16-bit sums (<= 60 per group, exact for up to
// kTblMaxGroups groups), and the result is formed in int32 at the end:
//   acc[c] = (LO0 + 16 * HI0) - 2 * (LO1 + 16 * HI1)  = sum_k q_w * q_a.
// The epilogue adds -z_a * sum_k q_w (padding taps hold z_a; the k_pad tail holds 0 with zero
// weight bits).
//
// Layouts: weights [panel of 16 channels][group][16 bytes], byte c = i0(c) | i1(c) << 4 (packed
// at 2 bits per weight, the resident size of the codes); A rows from im2col, k_pad a multiple of
// 64; tables per pixel [group][32 bytes] (lo table, then hi table), built 16 groups at a time
// (four de-interleaving loads give x_0..x_3 of 16 groups, 11 adds give the 16 entries as vectors
// over the groups, a 16 x 16 byte transpose turns them into one table per group).
#define MIXNAS_KERNEL_ISA isa_neon
#include <arm_neon.h>

#include "deploy/runtime/kernels/conv_impl.h"

namespace mixnas::rt {
namespace isa_neon {
namespace {

// r[0..15] (rows) -> columns, in place: after it r[j] lane i = old r[i] lane j.
inline void transpose16x16(uint8x16_t r[16]) {
  uint8x16_t t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = vtrn1q_u8(r[i], r[i + 1]);
    t[i + 1] = vtrn2q_u8(r[i], r[i + 1]);
  }
  uint16x8_t u[16];
  for (int b = 0; b < 16; b += 4)
    for (int i = 0; i < 2; ++i) {
      const uint16x8_t x = vreinterpretq_u16_u8(t[b + i]), y = vreinterpretq_u16_u8(t[b + i + 2]);
      u[b + i] = vtrn1q_u16(x, y);
      u[b + i + 2] = vtrn2q_u16(x, y);
    }
  uint32x4_t v[16];
  for (int b = 0; b < 16; b += 8)
    for (int i = 0; i < 4; ++i) {
      const uint32x4_t x = vreinterpretq_u32_u16(u[b + i]), y = vreinterpretq_u32_u16(u[b + i + 4]);
      v[b + i] = vtrn1q_u32(x, y);
      v[b + i + 4] = vtrn2q_u32(x, y);
    }
  for (int i = 0; i < 8; ++i) {
    const uint64x2_t x = vreinterpretq_u64_u32(v[i]), y = vreinterpretq_u64_u32(v[i + 8]);
    r[i] = vreinterpretq_u8_u64(vtrn1q_u64(x, y));
    r[i + 8] = vreinterpretq_u8_u64(vtrn2q_u64(x, y));
  }
}

// The 16 entries of the tables of 16 groups, entry e as a vector over the groups.
inline void table_entries(const uint8x16_t x[4], uint8x16_t e[16]) {
  e[0] = vdupq_n_u8(0);
  e[1] = x[0];
  e[2] = x[1];
  e[3] = vaddq_u8(x[0], x[1]);
  e[4] = x[2];
  e[5] = vaddq_u8(x[2], x[0]);
  e[6] = vaddq_u8(x[2], x[1]);
  e[7] = vaddq_u8(x[2], e[3]);
  for (int i = 0; i < 8; ++i) e[8 + i] = vaddq_u8(x[3], e[i]);
}

// The tables of one pixel's A row (k_pad codes) into tables[group][32].
void tbl_build_tables(const uint8_t* row, int k_pad, uint8_t* tables) {
  for (int k0 = 0; k0 < k_pad; k0 += 64) {
    const uint8x16x4_t x = vld4q_u8(row + k0);  // x.val[j] lane g: code 4g + j of the chunk
    const uint8x16_t mask = vdupq_n_u8(15);
    uint8x16_t lo[4], hi[4];
    for (int j = 0; j < 4; ++j) {
      lo[j] = vandq_u8(x.val[j], mask);
      hi[j] = vshrq_n_u8(x.val[j], 4);
    }
    uint8x16_t e[16];
    uint8_t* out = tables + static_cast<size_t>(k0 / 4) * 32;
    table_entries(lo, e);
    transpose16x16(e);
    for (int g = 0; g < 16; ++g) vst1q_u8(out + g * 32, e[g]);
    table_entries(hi, e);
    transpose16x16(e);
    for (int g = 0; g < 16; ++g) vst1q_u8(out + g * 32 + 16, e[g]);
  }
}

// One panel of 16 channels over every group: out[0..15] = sum_k q_w * q_a.
void tbl_w2_panel(const uint8_t* tables, const uint8_t* w, int groups, int32_t* out) {
  const uint8x16_t mask = vdupq_n_u8(15);
  uint16x8_t s[2][2][2];  // [plane][lo/hi table][channel half]
  for (int p = 0; p < 2; ++p)
    for (int h = 0; h < 2; ++h) s[p][h][0] = s[p][h][1] = vdupq_n_u16(0);
  for (int g0 = 0; g0 < groups; g0 += 4) {  // groups is a multiple of 16
    uint8x16_t b[2][2];                     // byte sums of 4 groups: [plane][lo/hi]
    for (int p = 0; p < 2; ++p) b[p][0] = b[p][1] = vdupq_n_u8(0);
    for (int g = g0; g < g0 + 4; ++g) {
      const uint8x16_t wv = vld1q_u8(w + static_cast<size_t>(g) * 16);
      const uint8x16_t i0 = vandq_u8(wv, mask), i1 = vshrq_n_u8(wv, 4);
      const uint8x16_t tlo = vld1q_u8(tables + static_cast<size_t>(g) * 32);
      const uint8x16_t thi = vld1q_u8(tables + static_cast<size_t>(g) * 32 + 16);
      b[0][0] = vaddq_u8(b[0][0], vqtbl1q_u8(tlo, i0));
      b[0][1] = vaddq_u8(b[0][1], vqtbl1q_u8(thi, i0));
      b[1][0] = vaddq_u8(b[1][0], vqtbl1q_u8(tlo, i1));
      b[1][1] = vaddq_u8(b[1][1], vqtbl1q_u8(thi, i1));
    }
    for (int p = 0; p < 2; ++p)
      for (int h = 0; h < 2; ++h) {
        s[p][h][0] = vaddw_u8(s[p][h][0], vget_low_u8(b[p][h]));
        s[p][h][1] = vaddw_high_u8(s[p][h][1], b[p][h]);
      }
  }
  for (int half = 0; half < 2; ++half)
    for (int q = 0; q < 2; ++q) {
      auto widen = [&](int p, int h) {
        const uint16x8_t v = s[p][h][half];
        return vreinterpretq_s32_u32(q == 0 ? vmovl_u16(vget_low_u16(v)) : vmovl_high_u16(v));
      };
      const int32x4_t plane0 = vaddq_s32(widen(0, 0), vshlq_n_s32(widen(0, 1), 4));
      const int32x4_t plane1 = vaddq_s32(widen(1, 0), vshlq_n_s32(widen(1, 1), 4));
      vst1q_s32(out + half * 8 + q * 4, vsubq_s32(plane0, vshlq_n_s32(plane1, 1)));
    }
}

}  // namespace
}  // namespace isa_neon

// A block of pixels: im2col rows, then per pixel its tables and every panel, then the epilogue.
// Scratch (conv_job.h): the A side (mc rows of k_pad codes), the accumulator tile, then the
// tables of one pixel (weight_scratch_bytes).
MIXNAS_CONV_BLOCK_FN(conv_qu8_tbl_w2_1x16__neon) {
  using namespace isa_neon;
  const int m = pixel_end - pixel_begin;
  uint8_t* rows = scratch + static_cast<size_t>(m + 16) * sizeof(void*);
  im2col<uint8_t>(job, job.in_codes, pixel_begin, m, rows, static_cast<uint8_t>(job.zero_point),
                  CopyU8{});
  auto* acc = reinterpret_cast<int32_t*>(acc_tile(job, scratch, 1));
  uint8_t* tables = reinterpret_cast<uint8_t*>(acc) + conv_scratch_acc_bytes(job);
  const int groups = job.k_pad / 4, panels = job.n_pad / 16;
  const auto* w = static_cast<const uint8_t*>(job.packed);
  for (int i = 0; i < m; ++i) {
    tbl_build_tables(rows + static_cast<size_t>(i) * job.k_pad, job.k_pad, tables);
    int32_t* out = acc + static_cast<size_t>(i) * job.n_pad;
    for (int p = 0; p < panels; ++p)
      tbl_w2_panel(tables, w + static_cast<size_t>(p) * groups * 16, groups, out + p * 16);
  }
  epilogue<4>(job, pixel_begin, m, acc, true);
}

}  // namespace mixnas::rt
