#pragma once
// Internal: what conv_lowbit.cpp hands to the bit-serial block functions (one per ISA source).
#include <cstddef>
#include <cstdint>

#include "deploy/runtime/kernels/conv_job.h"

namespace mixnas::rt {

// Microkernel tile of the bit-serial kernels: MR output pixels x NV vectors of L channels (one
// 64-bit lane per channel: each lane ANDs its channel's weight-plane word with the pixel's
// broadcast activation-plane word and counts the bits). Chosen to maximise MR * NV (work per load)
// with MR * NV * S accumulators (S = w_bits + a_bits - 1 significance groups) plus MR * a_bits
// broadcasts and NV * w_bits weight vectors within `regs` vector registers.
struct BitserialShape {
  int mr, nv;
};
constexpr BitserialShape bitserial_shape(int regs, int w_bits, int a_bits) {
  const int s = w_bits + a_bits - 1;
  BitserialShape best{1, 1};
  for (int nv = 1; nv <= 4; ++nv)
    for (int mr = 1; mr <= 8; ++mr) {
      // Beyond two planes of each side, broadcasts and weights are streamed (not all live).
      const int live =
          mr * nv * s + mr * (a_bits < 2 ? a_bits : 2) + nv * (w_bits < 2 ? w_bits : 2);
      if (live <= regs && mr * nv > best.mr * best.nv) best = {mr, nv};
    }
  return best;
}

// How the microkernel reads the receptive field (the "A side"). The reduction is `taps` segments
// of `seg` words per plane, each segment read through a pointer:
//   kTaps:   one segment per kernel tap = the input pixel's own planes (taps of whole words:
//            in_c % 64 == 0, or a single tap; no copy);
//   kRowSeg: one segment per kernel row = kernel_w * in_c consecutive bits of a "row string"
//            (every input row's pixels' planes concatenated along the channels, padding columns
//            holding z_a, kept in 64 / shift copies shifted by multiples of `shift` =
//            gcd(stride_w * in_c, 64) bits so that every segment start is word-aligned in one of
//            them; for dilation_w == 1 and shift >= 16; no per-pixel copy);
//   kIm2col: one segment of kw words = a per-pixel bit-plane im2col copy (anything else).
enum class BitserialASide : uint8_t { kTaps, kRowSeg, kIm2col };

struct BitserialJob {
  ConvJob base;  // geometry, epilogue; base.n_pad = out_c rounded up to 16 (multiple of NR)
  int w_bits, a_bits;
  int kw;   // words per plane of one receptive field (the packed weights' k extent)
  int wpp;  // words per plane of one input pixel: ceil(in_c / 64)
  BitserialASide aside;
  // Input planes of every input pixel and their code sums (sum of the in_c codes).
  const uint64_t* planes;
  int pixel_stride, plane_stride;
  const int32_t* pixel_sum;
  // a_bits planes, plane_stride words apart: every channel holds z_a (the padding pixel).
  const uint64_t* pad_planes;
  // kRowSeg: row strings [copy][in_h + 1 rows (the last: a padding row)][a_bits][row_words] and
  // the prefix sums of their codes over padded columns [in_h + 1][padded width + 1].
  const uint64_t* rows;
  const int32_t* row_prefix;
  int row_words, seg_words, shift, padded_w;
  // Packed weights: panels of NV * L channels (the last one may be narrower: the rest of n_pad,
  // a multiple of L), each [kw][w_bits][panel width] words (k word, weight plane, channel).
  const uint64_t* weights;
  int w_mul, w_off;  // acc = w_mul * R - w_off * S_a (then + acc_offset in the epilogue)
};

inline int bitserial_taps(const BitserialJob& j) {
  switch (j.aside) {
    case BitserialASide::kTaps:
      return j.base.kernel_h * j.base.kernel_w;
    case BitserialASide::kRowSeg:
      return j.base.kernel_h;
    default:
      return 1;
  }
}

// Scratch per thread for blocks of mc pixels: per-segment row pointers of the tiles (MR <= 8),
// the im2col rows (kIm2col), S_a per pixel, the int32 accumulator tile.
inline size_t bitserial_scratch_bytes(const BitserialJob& j) {
  const size_t mc = j.base.mc + 8;
  const size_t taps = static_cast<size_t>(bitserial_taps(j));
  const size_t rows = j.aside == BitserialASide::kIm2col ? (mc * j.a_bits * j.kw + 8) * 8 : 0;
  return 64 + mc * taps * sizeof(void*) + 64 + rows + 64 + mc * 4 + 64 + mc * j.base.n_pad * 4 + 64;
}

using BitserialBlockFn = void (*)(const BitserialJob& job, int pixel_begin, int pixel_end,
                                  unsigned char* scratch);
// Packs codes of pixels [p0, p1) into planes (pixel_stride = a_bits * wpp, plane_stride = wpp) and
// their code sums; returns the OR of all codes read (the caller checks they fit a_bits).
using BitPackFn = unsigned (*)(const uint8_t* codes, int row_stride, int in_c, int a_bits, int p0,
                               int p1, uint64_t* planes, int32_t* sums);

// Code sums of pixels [0, pixels) given as a_bits planes (pixel_stride / plane_stride words apart;
// bits past in_c in the last word of a plane are ignored).
using BitSumFn = void (*)(const uint64_t* planes, int pixel_stride, int plane_stride, int in_c,
                          int a_bits, int pixels, int32_t* sums);

// Per ISA: the tile shape (and lanes L) it uses, the block function, the plane packer and the
// code sums of planes.
#define MIXNAS_BITSERIAL_FNS(isa)                                                                  \
  BitserialShape conv_bitserial_shape__##isa(int w_bits, int a_bits, int* lanes);                  \
  void conv_bitserial_block__##isa(const BitserialJob& job, int pixel_begin, int pixel_end,        \
                                   unsigned char* scratch);                                        \
  unsigned conv_bitpack__##isa(const uint8_t* codes, int row_stride, int in_c, int a_bits, int p0, \
                               int p1, uint64_t* planes, int32_t* sums);                           \
  void conv_bitsums__##isa(const uint64_t* planes, int pixel_stride, int plane_stride, int in_c,   \
                           int a_bits, int pixels, int32_t* sums);
MIXNAS_BITSERIAL_FNS(scalar)
MIXNAS_BITSERIAL_FNS(avx512vpopcnt)
MIXNAS_BITSERIAL_FNS(avx2)
MIXNAS_BITSERIAL_FNS(neon)
MIXNAS_BITSERIAL_FNS(neondot)
#undef MIXNAS_BITSERIAL_FNS

}  // namespace mixnas::rt
