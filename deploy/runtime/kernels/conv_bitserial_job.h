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
      const int live = mr * nv * s + mr * (a_bits < 2 ? a_bits : 2) + nv * (w_bits < 2 ? w_bits : 2);
      if (live <= regs && mr * nv > best.mr * best.nv) best = {mr, nv};
    }
  return best;
}

struct BitserialJob {
  ConvJob base;  // geometry, epilogue; base.n_pad = out_c rounded up to 16 (multiple of NR)
  int w_bits, a_bits;
  int kw;   // words per plane of one receptive-field row: ceil(K / 64) rounded up to 8
  int wpp;  // words per plane of one input pixel: ceil(in_c / 64)
  // Input planes of every input pixel and their code sums (sum of the in_c codes).
  const uint64_t* planes;
  int pixel_stride, plane_stride;
  const int32_t* pixel_sum;
  const uint64_t* pad_planes;  // a_bits planes of wpp words: every channel holds z_a
  // Packed weights: panels of NV * L channels (the last one may be narrower: the rest of n_pad,
  // a multiple of L), each [kw][w_bits][panel width] words (k word, weight plane, channel).
  const uint64_t* weights;
  int w_mul, w_off;  // acc = w_mul * R - w_off * S_a (then + acc_offset in the epilogue)
};

// Scratch per thread for blocks of mc pixels.
inline size_t bitserial_scratch_bytes(const BitserialJob& j) {
  const size_t mc = j.base.mc + 8;
  return 64 + mc * sizeof(void*) + 64 + (mc * j.a_bits * j.kw + 8) * 8 + 64 + mc * 4 + 64 +
         mc * j.base.n_pad * 4 + 64;
}

using BitserialBlockFn = void (*)(const BitserialJob& job, int pixel_begin, int pixel_end,
                                  unsigned char* scratch);
// Packs codes of pixels [p0, p1) into planes (pixel_stride = a_bits * wpp, plane_stride = wpp) and
// their code sums; returns the OR of all codes read (the caller checks they fit a_bits).
using BitPackFn = unsigned (*)(const uint8_t* codes, int row_stride, int in_c, int a_bits, int p0,
                               int p1, uint64_t* planes, int32_t* sums);

// Per ISA: the tile shape (and lanes L) it uses, the block function and the plane packer.
#define MIXNAS_BITSERIAL_FNS(isa)                                                                  \
  BitserialShape conv_bitserial_shape__##isa(int w_bits, int a_bits, int* lanes);                 \
  void conv_bitserial_block__##isa(const BitserialJob& job, int pixel_begin, int pixel_end,        \
                                   unsigned char* scratch);                                        \
  unsigned conv_bitpack__##isa(const uint8_t* codes, int row_stride, int in_c, int a_bits, int p0, \
                               int p1, uint64_t* planes, int32_t* sums);
MIXNAS_BITSERIAL_FNS(scalar)
MIXNAS_BITSERIAL_FNS(avx512vpopcnt)
MIXNAS_BITSERIAL_FNS(avx2)
MIXNAS_BITSERIAL_FNS(neon)
MIXNAS_BITSERIAL_FNS(neondot)
#undef MIXNAS_BITSERIAL_FNS

}  // namespace mixnas::rt
