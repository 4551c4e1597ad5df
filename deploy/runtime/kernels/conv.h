#pragma once
// Conv2d for the mixnas runtime: NHWC, batch 1, fp32 or integer (weights w_bits 1..8 as int8
// codes, activations a_bits 1..8 as uint8 codes), with a fused epilogue
// (scale/bias -> activation -> residual add -> any number of float / code outputs).
//
// Numerics follow docs/numerics.md ("Convolution and its epilogue"):
//   int:  acc[c] = sum q_w * (q_a - z_a)  (padding pixels hold the code z_a, so contribute 0)
//         |acc| <= K * 128 * 255 with K = kernel_h * kernel_w * in_c / groups: exact in int32 for
//         K < 65793 (make_conv_plan rejects deeper reductions).
//         y = (s_w[c] * s_a) * float(acc) + bias[c]     (a float multiply, then a float add)
//   fp32: y = acc + bias[c]
//   then y = act(y) (apply_activation, bit-identical on every ISA), y += residual (if any),
//   then every sink receives y: a float copy, or codes
//         q = clamp(round_half_even(y / scale) + zero_point, 0, 2^bits - 1).
// Integer kernels match make_conv_plan_reference() bit for bit (float outputs and codes); fp32
// kernels differ from it only by summation order and FMA (tests allow 1e-4 * (1 + |y|), codes one
// apart on <= 0.1% of outputs).
//
// Kernel tables (conv.cpp), first available row wins; "mixnas info" lists them:
//   gemm fp32:  conv_f32_gemm_8x32__avx512f, _6x16__avx2_fma, _4x8__sse2 | _6x16__neon
//   gemm int:   conv_qu8_gemm_8x32c4__avx512vnni, _6x16c2__avx2 | _4x16c4__neondot, _8x8__neon
//   depthwise:  conv_{f32,qu8}_dwconv_16c__avx512f, _8c__avx2, _4c__baseline (SSE2 / NEON)
//   low-bit:    conv_bitserial_w<W>a<A>__<isa> (conv_lowbit.h), above the int rows, per layer
//               where the ISA's rule says they beat int8 (docs/kernels.md)
//   otherwise (grouped convs, x86 without AVX2 for int): the scalar reference.
// GEMM kernels read 1x1/stride-1 inputs in place, other convs through per-tap input pointers
// (indirect GEMM, built per block of output pixels) when in_c suits the kernel's k-group, else
// through an im2col copy. A packed input (1..4-bit codes, codes.h) is unpacked per block: the band
// of input rows the block's receptive fields cover, into the thread's scratch; the kernels then
// read it as byte codes.
//
// Plans pack the weights once. run() may be called any number of times; it is NOT safe to call
// run() of one plan from two threads at once (the low-bit plans own input buffers, see
// scratch_bytes()). The per-block working memory (tap pointers, im2col rows, unpacked input bands,
// accumulator tiles) is not the plan's: every thread has one scratch buffer that all plans share
// (thread_scratch()), since one thread runs one block of one conv at a time. Results are identical
// for any thread count and either input storage.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "deploy/runtime/cpu_features.h"
#include "deploy/runtime/kernels/activation.h"

namespace mixnas::rt {

struct ConvGeometry {
  int in_h = 0, in_w = 0, in_c = 0, out_c = 0;
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int dilation_h = 1, dilation_w = 1;
  int groups = 1;

  int out_h() const;
  int out_w() const;
  // Reduction length per output: kernel_h * kernel_w * in_c / groups.
  int reduction() const;
  bool is_depthwise() const { return groups > 1 && groups == in_c && groups == out_c; }
};

enum class ConvPrecision : uint8_t { kF32, kInt };

struct ConvWeights {
  ConvGeometry geometry;
  ConvPrecision precision = ConvPrecision::kF32;
  int w_bits = 8;                    // int precision: 1..8 (1 = binary, codes +-1)
  int a_bits = 8;                    // int precision: 1..8, input codes in [0, 2^a_bits - 1]
  std::vector<float> weights_f32;    // OIHW [out_c][in_c / groups][kh][kw], fp32 precision
  std::vector<int8_t> weight_codes;  // OIHW, int precision
  std::vector<float> weight_scale;   // per output channel s_w[c], int precision
  std::vector<float> bias;           // per output channel; empty = zero
  float input_scale = 1.0f;          // s_a, int precision
  int input_zero_point = 0;          // z_a, int precision
  // Int precision: bits per code the input is held at (codes.h): 8 = one byte per code, 1/2/4 =
  // packed. Plans size their per-thread scratch for the band of unpacked input rows a block needs.
  int input_storage_bits = 8;
};

// Input tensor [in_h][in_w][in_c] with row_stride elements between consecutive pixels
// (row_stride >= in_c). f32 for fp32 precision, codes for int precision.
struct ConvInputView {
  const float* f32 = nullptr;
  const uint8_t* codes = nullptr;
  int row_stride = 0;
  // Bits per code of `codes` (codes.h): 8, or 1/2/4 for a packed stream (element pixel *
  // row_stride + channel); must equal the plan's ConvWeights::input_storage_bits.
  int code_storage_bits = 8;
  // Low-bit kernels only (conv_lowbit.h): the input as bit planes (BitPlaneLayout) instead of
  // codes, as a ConvSink::kBitPlanes producer wrote them; row_stride then counts uint64 words
  // between pixels and plane_stride words between the planes of one pixel.
  const uint64_t* bit_planes = nullptr;
  int plane_stride = 0;
};

// One destination of the conv output [out_h][out_w][out_c], written at
// data + pixel * row_stride + channel_offset + c (row_stride >= channel_offset + out_c).
struct ConvSink {
  // kDetectBoxes / kDetectScores / kDetectBest: a YOLOv8 Detect level's box (4 * reg_max DFL
  // logits) or class conv decoded straight into rows of the decoded table (detect_rows.h): per
  // pixel p, floats at data + p * row_stride + channel_offset: [x1, y1, x2, y2], the out_c sigmoid
  // scores, or only the best of them and its class [score, class] (the compact table).
  enum Kind : uint8_t { kF32, kCodes, kBitPlanes, kDetectBoxes, kDetectScores, kDetectBest };
  Kind kind = kF32;
  void* data = nullptr;  // float* (kF32) or uint8_t* (kCodes)
  int row_stride = 0;
  int channel_offset = 0;
  float scale = 1.0f;  // kCodes
  int zero_point = 0;  // kCodes, in [0, 2^bits - 1]
  int bits = 8;        // kCodes, 1..8
  // kCodes: bits per code in memory (codes.h): 8 = one byte per code, or code_storage_bits(bits)
  // for a packed stream in which code c of pixel p is element p * row_stride + channel_offset + c;
  // packed rows and slices must start on bytes.
  int storage_bits = 8;
  // kBitPlanes (codes as in kCodes, written as bit planes, conv_lowbit.h BitPlaneLayout): data is
  // uint64_t*, row_stride counts words between pixels, plane_stride words between the planes of a
  // pixel (plane b holds bit b of every code), channel_offset + c is the bit index in a plane.
  int plane_stride = 0;
  // kF32: the output channels [first_channel, first_channel + channels) only, written at
  // channel_offset + c - first_channel (channels = 0: all out_c).
  int first_channel = 0;
  int channels = 0;
  // kDetectBoxes: DFL bins per side, the level's width in cells and its stride in input pixels.
  int reg_max = 0;
  int grid_width = 0;
  float anchor_stride = 0.0f;
};

struct ConvEpilogue {
  ActivationSpec act;
  const float* residual = nullptr;  // [out_h][out_w][out_c] at residual_row_stride, added after act
  int residual_row_stride = 0;
  std::vector<ConvSink> sinks;
};

class ConvPlan {
 public:
  virtual ~ConvPlan();
  // Throws mixnas::Error on an input/epilogue that does not fit the plan (null data, strides
  // smaller than the channel count, sink bits or zero points out of range, no sinks).
  virtual void run(const ConvInputView& input, const ConvEpilogue& epilogue, int threads) const = 0;
  // e.g. "conv_qu8_gemm_8x32c4__avx512vnni".
  virtual const char* kernel_name() const = 0;
  virtual size_t packed_weight_bytes() const = 0;
  // Memory the plan owns besides the packed weights: for indirect kernels the per-tap input
  // pointers of every output pixel (out_h * out_w * kernel_h * kernel_w pointers, rebuilt when the
  // input address changes), padding rows, bit-plane buffers.
  virtual size_t scratch_bytes() const { return 0; }
  // The per-thread working memory one block needs (taken from thread_scratch() while it runs).
  virtual size_t thread_scratch_bytes() const { return 0; }
  // True when run() reads ConvInputView::bit_planes (the low-bit rows, conv_lowbit.h): a producer
  // conv can then write this plan's input as bit planes (ConvSink::kBitPlanes) and no packing pass
  // runs. Plans that return false read codes only.
  virtual bool accepts_bit_planes() const { return false; }
  // The validated weights as given, except that plans which packed them keep only the geometry,
  // precision, bits, scales and input grid (weights_f32 and weight_codes are empty): the packed
  // copy is what packed_weight_bytes() counts.
  const ConvWeights& weights() const { return weights_; }

 protected:
  explicit ConvPlan(const ConvWeights& w) : weights_(w) {}
  // Frees weights_f32 and weight_codes once the plan has packed them.
  void release_weight_values() {
    std::vector<float>().swap(weights_.weights_f32);
    std::vector<int8_t>().swap(weights_.weight_codes);
  }
  ConvWeights weights_;  // validated copy (packing sources, geometry, scales)
};

// This thread's scratch buffer, at least `bytes` long, 64-byte aligned; grows and is kept for the
// thread's lifetime (OpenMP's worker threads persist). Every plan's blocks share it: a session's
// scratch is the largest thread_scratch_bytes() of its plans per thread, not their sum.
unsigned char* thread_scratch(size_t bytes);

// Validates `w` (throws mixnas::Error naming the field), packs the weights, and picks the kernel
// from the table of its family (gemm or depthwise) for `features`.
std::unique_ptr<ConvPlan> make_conv_plan(const ConvWeights& w,
                                         const CpuFeatures& features = cpu_features());
// The scalar reference: direct loops, exact integer accumulation, the shared epilogue.
std::unique_ptr<ConvPlan> make_conv_plan_reference(const ConvWeights& w);
// Forces one kernel of the tables by name (tests and benchmarks). Throws mixnas::Error when the
// name is unknown, the kernel does not support `w`, or this CPU lacks its ISA.
std::unique_ptr<ConvPlan> make_conv_plan_named(const ConvWeights& w, const std::string& kernel);

struct ConvKernelInfo {
  std::string name;
  std::string family;  // "gemm" or "depthwise"
  ConvPrecision precision;
  int min_w_bits, max_w_bits, min_a_bits, max_a_bits;  // int precision only
  bool available;                                      // on the CpuFeatures asked about
};
// Every row of every table, in priority order, with `available` for `features` (the low-bit rows:
// conv_lowbit_kernel_table()).
std::vector<ConvKernelInfo> conv_kernel_table(const CpuFeatures& features = cpu_features());
// The kernel make_conv_plan picks per (family, precision) on `features`, as "family/precision:
// name" lines, for `mixnas info`.
std::vector<std::string> conv_kernel_names_for(const CpuFeatures& features = cpu_features());

}  // namespace mixnas::rt
