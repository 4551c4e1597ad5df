#pragma once
// Internal: the plain-data description of one conv run that conv.cpp hands to a kernel's block
// function. Kernel sources (compiled per ISA) see only this header and raw pointers.
#include <cstddef>
#include <cstdint>

#include "deploy/runtime/kernels/activation.h"
#include "deploy/runtime/kernels/conv.h"

namespace mixnas::rt {

struct ConvJob {
  // Geometry (out_h/out_w already computed).
  int in_h, in_w, in_c, out_h, out_w, out_c;
  int kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w;
  int k;          // GEMM reduction length kernel_h * kernel_w * in_c (taps-major, channels minor)
  int k_pad;      // k rounded up to the kernel's k-group (c4: 4, c2: 2)
  int n_pad;      // out_c rounded up to the kernel's NR (GEMM) or vector width (depthwise)
  int mc;         // output pixels per block, a multiple of MR, at most kMaxBlockPixels
  bool direct;    // GEMM: A rows are the input pixels themselves (1x1, stride 1, no padding)
  bool indirect;  // GEMM: A rows are read through per-tap pointers into the input (no im2col copy)
  // indirect: pointers [pixel tile][tap][MR rows] for the MR-pixel tiles of the block being run
  // (rows past the block's last pixel repeat it), built by the plan per block in the scratch.
  const void* const* indirection;
  int half_nr;  // GEMM: the last panel is NR/2 wide when out_c needs no more (0: never)
  // Input.
  const float* in_f32;
  const uint8_t* in_codes;
  int in_stride;   // elements between pixels
  int zero_point;  // z_a (int precision)
  // Packed weights and per-channel constants, each n_pad long.
  const void* packed;
  // Integer GEMM and depthwise rows: 1, 2 or 4 when the codes are held at that width
  // (conv_wpack.h; GEMM: each panel's codes, depthwise: [tap][n_pad]), 8 for depthwise int8
  // codes, 0 when `packed` is the kernel's own element layout. Blocks unpack into the scratch
  // region of weight_scratch_bytes (see conv_scratch_bytes).
  int w_storage_bits;
  size_t weight_scratch_bytes;
  const float* scale;         // int precision: s_w[c] * s_a
  const float* bias;          // zeros when the model has none
  const int32_t* acc_offset;  // int precision: added to the raw accumulator (zero point terms)
  // Epilogue.
  ActivationSpec act;
  const float* residual;
  int residual_stride;
  const ConvSink* sinks;
  int num_sinks;
};

// A job's geometry and input zero point from validated weights (the rest zero), and the fields
// one run sets from its input and epilogue (conv.cpp).
ConvJob conv_base_job(const ConvWeights& w);
void conv_fill_run_fields(ConvJob& j, const ConvInputView& in, const ConvEpilogue& ep);
// Throws mixnas::Error naming the conv and the sink when an epilogue does not fit `w` (no sinks,
// null data, strides smaller than the channels written, bits, zero points or scales out of range).
void conv_check_epilogue(const ConvWeights& w, const ConvEpilogue& ep);
// Throws mixnas::Error when an int input view's code storage differs from the plan's
// (ConvWeights::input_storage_bits) or its packed rows do not start on bytes.
void conv_check_input_storage(const ConvWeights& w, const ConvInputView& in);

constexpr int kMaxBlockPixels = 256;

// Scratch for one block: the A side (indirect: the block's tap pointers, mc * taps of them, mc
// being a multiple of MR; else the im2col rows, mc * k_pad elements of a_bytes each, after
// mc + 16 row pointers), then the accumulator tile (mc * n_pad 32-bit values), then the unpacked
// weights (weight_scratch_bytes: one GEMM panel, or a depthwise layer's [tap][n_pad] int32); each
// start 64-byte aligned. Depthwise blocks have no A side: their tile starts the scratch.
inline size_t conv_scratch_a_bytes(const ConvJob& j, int a_bytes) {
  const size_t im2col = (j.mc + 16) * sizeof(void*) + static_cast<size_t>(j.mc) * j.k_pad * a_bytes;
  const size_t indirect = static_cast<size_t>(j.mc) * j.kernel_h * j.kernel_w * sizeof(void*);
  return ((j.indirect ? indirect : im2col) + 63) / 64 * 64;
}
inline size_t conv_scratch_acc_bytes(const ConvJob& j) {
  return (static_cast<size_t>(j.mc) * j.n_pad * 4 + 63) / 64 * 64;
}
inline size_t conv_scratch_bytes(const ConvJob& j, int a_bytes) {
  return conv_scratch_a_bytes(j, a_bytes) + conv_scratch_acc_bytes(j) + j.weight_scratch_bytes + 64;
}

// Computes output pixels [pixel_begin, pixel_end) (at most mc of them) into every sink.
using ConvBlockFn = void (*)(const ConvJob& job, int pixel_begin, int pixel_end,
                             unsigned char* scratch);

// Block functions of the kernel tables (conv.cpp), one per kernel source.
#define MIXNAS_CONV_BLOCK_FN(name) \
  void name(const ConvJob& job, int pixel_begin, int pixel_end, unsigned char* scratch)
MIXNAS_CONV_BLOCK_FN(conv_f32_gemm_8x32__avx512f);
MIXNAS_CONV_BLOCK_FN(conv_f32_gemm_6x16__avx2_fma);
MIXNAS_CONV_BLOCK_FN(conv_f32_gemm_4x8__sse2);
MIXNAS_CONV_BLOCK_FN(conv_f32_gemm_6x16__neon);
MIXNAS_CONV_BLOCK_FN(conv_qu8_gemm_8x32c4__avx512vnni);
MIXNAS_CONV_BLOCK_FN(conv_qu8_gemm_6x16c2__avx2);
MIXNAS_CONV_BLOCK_FN(conv_qu8_gemm_8x8__neon);
MIXNAS_CONV_BLOCK_FN(conv_qu8_gemm_4x16c4__neondot);
MIXNAS_CONV_BLOCK_FN(conv_qu8_tbl_w2_1x16__neon);
MIXNAS_CONV_BLOCK_FN(conv_f32_dwconv_16c__avx512f);
MIXNAS_CONV_BLOCK_FN(conv_qu8_dwconv_16c__avx512f);
MIXNAS_CONV_BLOCK_FN(conv_f32_dwconv_8c__avx2);
MIXNAS_CONV_BLOCK_FN(conv_qu8_dwconv_8c__avx2);
MIXNAS_CONV_BLOCK_FN(conv_f32_dwconv_4c__baseline);
MIXNAS_CONV_BLOCK_FN(conv_qu8_dwconv_4c__baseline);
// The scalar reference's epilogue (the baseline instantiation of the shared epilogue).
void conv_epilogue_baseline(const ConvJob& job, int pixel_begin, int pixel_end, void* acc,
                            bool int_acc);

}  // namespace mixnas::rt
