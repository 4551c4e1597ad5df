#pragma once
// Internal: what conv_lowbit.cpp hands to the table-lookup (LUT) conv kernels.
//
// The LUT kernel computes sum_k q_w * q_a for 1- and 2-bit activations with byte table lookups:
// the codes of `cpg` consecutive input channels of one pixel (cpg = 6 / a_bits: 3 for 2-bit, 6 for
// 1-bit codes) form a 6-bit index; per (output channel, kernel tap, channel group) a 64-byte table
// holds, for every index, bias + sum_j q_w[j] * code_j(index). One vpermb looks up 64 output
// positions at once (192 MACs for 2-bit codes) and one vpaddb accumulates them in bytes; the bytes
// are added into 16-bit sums every `flush_steps` lookups. Exact:
//   sum of entries = sum_k q_w * q_a + steps * entry_bias   (steps = taps * groups)
// and the epilogue adds -z_a * sum_k q_w (padding taps hold z_a, so they contribute 0).
// Bounds (checked by the plan): entries in [0, range], flush_steps * range <= 255,
// steps * range <= 65535 (16-bit sums).
//
// The A side: "index images". The padded input is split into stride_h x stride_w phases (phase
// (py, px) holds padded pixels (Y * stride_h + py, X * stride_w + px)); each phase is `rows` x
// `wq` bytes per channel group. An output position f = oy * wq + ox reads, for kernel tap
// (ky, kx), byte f + tap_offset[tap] of its group's images, tap_offset = phase * phase_bytes +
// (ky / stride_h) * wq + kx / stride_w: a contiguous 64-byte load per 64 positions. Positions with
// ox >= out_w are computed and dropped.
#include <cstddef>
#include <cstdint>

#include "deploy/runtime/kernels/conv_job.h"

namespace mixnas::rt {

struct LutJob {
  ConvJob base;  // geometry, epilogue constants (n_pad = out_c rounded up to 16)
  int w_bits, a_bits;
  int cpg;                 // input channels per index byte
  int groups;              // index bytes per pixel: ceil(in_c / cpg)
  int taps;                // kernel_h * kernel_w
  int wq;                  // width of a phase image (output positions per output row)
  size_t phase_bytes;      // rows * wq
  size_t group_bytes;      // stride_h * stride_w * phase_bytes
  int vectors;             // 64-position vectors covering out_h * wq positions
  const uint8_t* index;    // [group][phase][rows][wq]
  const int32_t* tap_off;  // [tap]
  // The lookups in order, [group][tap] flattened: {offset into the index images (group *
  // group_bytes
  // + tap_off[tap]), offset into an output channel's tables ((group * taps + tap) * 64)}.
  const int32_t* steps;
  // Tables [out channel (out_c rounded up to 4)][group][tap][64] (entries in [0, range]).
  const uint8_t* tables;
  int entry_bias;   // subtracted steps times
  int flush_steps;  // lookups per byte accumulator before it is added into 16-bit sums
};

// Output positions per block of the LUT kernel (4 vectors of 64).
constexpr int kLutBlockVectors = 4;

// Scratch per thread: the 16-bit sums of 4 channels, 16 channels' int32 results, each position's
// tile row, the accumulator tile of the block's pixels (at most 256) for the shared epilogue.
inline size_t lut_scratch_bytes(const LutJob& j) {
  const size_t lanes = 64 * kLutBlockVectors;
  return 64 + 4 * lanes * 2 * 2 + 64 + 16 * lanes * 4 + 64 + lanes * 4 + 64 +
         lanes * j.base.n_pad * 4 + 64;
}

// The index builder's pixel-major staging rows: 64 rows of this many bytes (each pixel's group
// indexes, stored 64 bytes per load of gpc = 63 / cpg groups), plus 64 bytes of slack.
inline int lut_index_row_bytes(const LutJob& j) {
  const int gpc = 63 / j.cpg, chunks = (j.groups + gpc - 1) / gpc;
  return ((chunks - 1) * gpc + 64 + 7) / 8 * 8;
}
inline size_t lut_index_temp_bytes(const LutJob& j) {
  return static_cast<size_t>(64) * lut_index_row_bytes(j) + 64;
}

// Computes the output positions of vectors [vector_begin, vector_end) into every sink.
void conv_lut_block__avx512vbmi(const LutJob& job, int vector_begin, int vector_end,
                                unsigned char* scratch);
// Builds the index images of `job` from codes [in_h * in_w][row_stride] into `index` (the plan
// allocates group_bytes * groups bytes), staging through `temp` (lut_index_temp_bytes); pad_byte[g]
// is group g's padding index (z_a in every channel of the group). Returns the OR of every code read
// (the caller checks they fit a_bits).
unsigned conv_lut_index__avx512vbmi(const LutJob& job, const uint8_t* codes, int row_stride,
                                    const uint8_t* pad_byte, uint8_t* index, uint8_t* temp);

}  // namespace mixnas::rt
