// Low-bit conv rows (conv_lowbit.h): the bit-serial plan, plane packing, and the table of
// (ISA, w_bits, a_bits) rows with the measured rule that decides where they beat int8.
#include "deploy/runtime/kernels/conv_lowbit.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "deploy/runtime/codes.h"
#include "deploy/runtime/kernels/conv_bitserial_job.h"
#include "deploy/runtime/kernels/conv_common.h"
#include "deploy/runtime/kernels/conv_lut_job.h"
#include "deploy/runtime/kernels/conv_row.h"

namespace mixnas::rt {

namespace kernels {

// The bit-serial row of (w_bits, a_bits) runs where K = kernel_h * kernel_w * in_c >= min_k,
// in_c >= min_in_c and out_c >= min_out_c; several rules of one pair are alternatives.
struct PairRule {
  int w_bits, a_bits;
  int min_k, min_in_c, min_out_c;
};

// One ISA's bit-serial kernels (a row per (w_bits, a_bits) of conv_lowbit_rows() runs them) and
// the rules that pick them.
struct LowbitIsa {
  const char* suffix;
  bool (*available)(const CpuFeatures&);
  BitserialShape (*shape)(int w_bits, int a_bits, int* lanes);
  BitserialBlockFn block;
  BitPackFn pack;
  BitSumFn sums;
  const PairRule* rules;  // nullptr: forced only (never picked)
  int num_rules;
  const char* int8_kernel;  // what runs instead (for `mixnas info`)
  const char* why;          // why the other pairs stay on int8 on this CPU class
};

}  // namespace kernels

namespace {

using namespace kernels;

[[noreturn]] void fail(const ConvWeights& w, const std::string& what) {
  kernels::fail_conv("low-bit conv", w, what);
}

// Packed inputs are unpacked in chunks of about this many bytes.
constexpr int kUnpackChunkBytes = 16384;

// ---------------------------------------------------------------------------------------------
// The rows. One bit-serial block function per ISA serves every (w_bits, a_bits); a row per pair
// names it. Which rows make_conv_plan picks is a static rule per ISA (below), derived from
// `mixnas-bench-conv --lowbit-pairs` (docs/kernels.md has the tables): the bit-serial row of a pair
// runs on a layer only where it measured at least ~10% faster than the int8 kernel of the same
// CPU on every YOLOv8n conv of that class; everywhere else the int8 kernel runs on the same codes
// (exact: it takes 1..8-bit codes as bytes). No timing happens at plan time, so the pick, and with
// it the latency, is the same in every process.

#if defined(__x86_64__)
// AVX-512 VPOPCNTDQ vs the VNNI int8 kernel: where the bit-serial rows beat int8 on the YOLOv8n
// conv list by `mixnas-bench-conv --lowbit-pairs` (docs/kernels.md "Selection: where low bits pay,
// per ISA" holds the measured ratios; tests/runtime/kernels/test_lowbit.cpp checks the rules
// against them).
const PairRule kAvx512Rules[] = {
    {1, 1, 144, 64, 1}, {1, 1, 1, 1, 128},   {1, 2, 288, 1, 128}, {1, 2, 720, 1, 1},
    {1, 2, 576, 1, 80}, {2, 1, 512, 128, 1}, {1, 3, 2304, 1, 1},  {3, 1, 2304, 1, 1},
};
// AVX2 vs the AVX2 int8 kernel (vpmaddwd, 16 MACs per instruction; popcount by two vpshufb
// nibble lookups), measured with AVX-512 masked (MIXNAS_CPU_DISABLE); figures in docs/kernels.md.
const PairRule kAvx2Rules[] = {
    {1, 1, 96, 32, 1},  {1, 1, 1, 128, 1},   {1, 2, 144, 64, 1}, {1, 2, 1, 1, 256},
    {2, 1, 144, 64, 1}, {2, 1, 1, 1, 256},   {1, 3, 2304, 1, 1}, {1, 3, 576, 1, 256},
    {3, 1, 720, 1, 1},  {3, 1, 576, 128, 1},
};
// Without AVX2 the int8 rows are the scalar reference (direct loops, one MAC per multiply):
// 64-bit AND + popcount beats it for every pair.
const PairRule kScalarRules[] = {
    {1, 1, 1, 1, 1}, {1, 2, 1, 1, 1}, {1, 3, 1, 1, 1}, {1, 4, 1, 1, 1}, {2, 1, 1, 1, 1},
    {2, 2, 1, 1, 1}, {2, 3, 1, 1, 1}, {2, 4, 1, 1, 1}, {3, 1, 1, 1, 1}, {3, 2, 1, 1, 1},
    {3, 3, 1, 1, 1}, {3, 4, 1, 1, 1}, {4, 1, 1, 1, 1}, {4, 2, 1, 1, 1}, {4, 3, 1, 1, 1},
    {4, 4, 1, 1, 1}, {1, 8, 1, 1, 1}, {2, 8, 1, 1, 1}, {3, 8, 1, 1, 1}, {4, 8, 1, 1, 1},
    {8, 1, 1, 1, 1}, {8, 2, 1, 1, 1}, {8, 3, 1, 1, 1}, {8, 4, 1, 1, 1},
};
#endif
#if defined(__aarch64__)
// Cortex-A72 class (no sdot; the int8 kernel runs smlal, 4 MACs per instruction, on int16 codes
// widened by im2col): vand + vcnt + vadd per 128 MACs per plane pair. Derived from the device
// models of Cortex-A72 and Cortex-A53 (docs/device_models.md: llvm-mca over the aarch64 build's
// own loops, `mixnas-bench-devicemodel --rules`), not from a device run: each rule picks only
// YOLOv8n convs predicted <= 0.9 of int8 on both cores (the A53's ratios are lower throughout).
// tests/runtime/kernels/test_lowbit.cpp holds the predicted table.
const PairRule kNeonRules[] = {
    {1, 1, 32, 16, 1}, {1, 2, 48, 16, 1}, {2, 1, 48, 16, 1}, {2, 2, 48, 32, 1},
    {1, 3, 48, 16, 1}, {3, 1, 48, 16, 1}, {1, 4, 64, 32, 1}, {4, 1, 48, 32, 1},
};
// sdot cores (16 MACs per instruction). Derived from the device models of Cortex-A76 and
// Cortex-A55 the same way, keeping what holds on both: W1A1, W1A2 and W2A1 on deep layers; W2A2,
// W1A3 and wider are predicted at or above int8 on every conv of at least one of the two.
const PairRule kNeondotRules[] = {
    {1, 1, 256, 48, 1},
    {1, 2, 576, 128, 1},
    {2, 1, 512, 128, 1},
};
#endif

#define MIXNAS_RULES(r) r, static_cast<int>(sizeof(r) / sizeof(r[0]))

const LowbitIsa kIsas[] = {
#if defined(__x86_64__)
    {"avx512vpopcnt", has_avx512vpopcnt, conv_bitserial_shape__avx512vpopcnt,
     conv_bitserial_block__avx512vpopcnt, conv_bitpack__avx512vpopcnt, conv_bitsums__avx512vpopcnt,
     MIXNAS_RULES(kAvx512Rules), "conv_qu8_gemm_8x32c4__avx512vnni",
     "each of the W*A plane pairs costs AND+POPCNT+ADD per 512 MACs against one vpdpbusd per 64: "
     "measured slower than (or not reliably 10% faster than) int8 on every YOLOv8n conv; the "
     "vpermb table-lookup rows (conv_lut_*) measured 1.1-2.3x slower than int8"},
    {"avx2", has_avx2, conv_bitserial_shape__avx2, conv_bitserial_block__avx2, conv_bitpack__avx2,
     conv_bitsums__avx2, MIXNAS_RULES(kAvx2Rules), "conv_qu8_gemm_6x16c2__avx2",
     "W*A plane pairs of ~8 instructions per 256 MACs each vs vpmaddwd's 16 MACs: measured slower "
     "than (or within 10% of) int8 on every YOLOv8n conv"},
    {"scalar", no_avx2, conv_bitserial_shape__scalar, conv_bitserial_block__scalar,
     conv_bitpack__scalar, conv_bitsums__scalar, MIXNAS_RULES(kScalarRules), "conv_qu8_reference",
     "(none)"},
#elif defined(__aarch64__)
    {"neondot", has_dotprod, conv_bitserial_shape__neondot, conv_bitserial_block__neondot,
     conv_bitpack__neondot, conv_bitsums__neondot, MIXNAS_RULES(kNeondotRules),
     "conv_qu8_gemm_4x16c4__neondot",
     "sdot does 16 MACs per instruction; W*A plane pairs of vand+vcnt+vadd per 128 MACs each "
     "keep no margin (llvm-mca, Cortex-A76)"},
    {"neon", neon_only, conv_bitserial_shape__neon, conv_bitserial_block__neon, conv_bitpack__neon,
     conv_bitsums__neon, MIXNAS_RULES(kNeonRules), "conv_qu8_gemm_8x8__neon",
     "W*A > 4 plane pairs of vand+vcnt+vadd per 128 MACs each exceed smlal's cost"},
    {"neon", has_neon, conv_bitserial_shape__neon, conv_bitserial_block__neon, conv_bitpack__neon,
     conv_bitsums__neon, nullptr, 0, "", ""},
#endif
    {"scalar", [](const CpuFeatures&) { return true; }, conv_bitserial_shape__scalar,
     conv_bitserial_block__scalar, conv_bitpack__scalar, conv_bitsums__scalar, nullptr, 0, "", ""},
};
#undef MIXNAS_RULES

bool rule_picks(const PairRule& r, int wb, int ab, const ConvGeometry& g) {
  return r.w_bits == wb && r.a_bits == ab && g.reduction() >= r.min_k && g.in_c >= r.min_in_c &&
         g.out_c >= r.min_out_c;
}

// The first available row is the CPU's best ISA; its rules decide.
const LowbitIsa* best_isa(const CpuFeatures& f) {
  for (const LowbitIsa& isa : kIsas)
    if (isa.available(f)) return &isa;
  return nullptr;
}

// "K >= 192 and out_c >= 128"; "" for a rule without conditions.
std::string rule_text(const PairRule& r) {
  std::string t;
  auto add = [&](const char* what, int v) {
    if (v > 1) t += (t.empty() ? "" : " and ") + std::string(what) + " >= " + std::to_string(v);
  };
  add("K", r.min_k);
  add("in_c", r.min_in_c);
  add("out_c", r.min_out_c);
  return t;
}

const int kBits[] = {1, 2, 3, 4, 8};

bool pair_supported(int wb, int ab) {
  auto in = [](int b) { return b == 1 || b == 2 || b == 3 || b == 4 || b == 8; };
  return in(wb) && in(ab) && !(wb == 8 && ab == 8);
}

std::string row_name(const LowbitIsa& isa, int wb, int ab) {
  return "conv_bitserial_w" + std::to_string(wb) + "a" + std::to_string(ab) + "__" + isa.suffix;
}

bool conv_fits(const ConvWeights& w) {
  const ConvGeometry& g = w.geometry;
  return w.precision == ConvPrecision::kInt && g.groups == 1 && pair_supported(w.w_bits, w.a_bits);
}

// ---------------------------------------------------------------------------------------------
// The plan.

// Weight code of output channel o, input channel ic, kernel tap (kh * kernel_w + kx); OIHW codes.
int weight_code(const ConvWeights& w, int o, int ic, int tap) {
  const ConvGeometry& g = w.geometry;
  const int kh = tap / g.kernel_w, kx = tap % g.kernel_w;
  return w
      .weight_codes[((static_cast<size_t>(o) * g.in_c + ic) * g.kernel_h + kh) * g.kernel_w + kx];
}

// Per-channel epilogue constants, n_pad long: scale s_w * s_a, bias, and the zero-point term
// -z_a * sum_k q_w of acc = sum_k q_w * q_a - z_a * sum_k q_w.
void channel_constants(const ConvWeights& w, int n_pad, std::vector<float>& scale,
                       std::vector<float>& bias, std::vector<int32_t>& offset) {
  const ConvGeometry& g = w.geometry;
  scale.assign(n_pad, 0.0f);
  bias.assign(n_pad, 0.0f);
  offset.assign(n_pad, 0);
  const int taps = g.kernel_h * g.kernel_w;
  for (int o = 0; o < g.out_c; ++o) {
    if (!w.bias.empty()) bias[o] = w.bias[o];
    scale[o] = w.weight_scale[o] * w.input_scale;
    int64_t sum = 0;
    for (int ic = 0; ic < g.in_c; ++ic)
      for (int t = 0; t < taps; ++t) sum += weight_code(w, o, ic, t);
    offset[o] = static_cast<int32_t>(-static_cast<int64_t>(w.input_zero_point) * sum);
  }
}

class BitserialPlan final : public ConvPlan {
 public:
  BitserialPlan(const ConvWeights& w, const LowbitIsa& isa) : ConvPlan(w), isa_(isa) {
    const ConvGeometry& g = w.geometry;
    name_ = row_name(isa, w.w_bits, w.a_bits);
    const int W = w.w_bits, A = w.a_bits;
    int lanes = 1;
    const BitserialShape shape = isa.shape(W, A, &lanes);
    ConvJob& j = job_.base;
    j = conv_base_job(w);
    j.k = g.reduction();
    j.k_pad = round_up(j.k, 64);
    j.n_pad = round_up(g.out_c, 16);
    job_.w_bits = W, job_.a_bits = A;
    // The A side (conv_bitserial_job.h): taps of whole words are read in place; otherwise kernel
    // rows of row strings when their starts fall on 16-bit steps (at most 4 shifted copies);
    // otherwise an im2col copy.
    const int taps = g.kernel_h * g.kernel_w;
    int gcd = 64;
    for (int v = g.stride_w * g.in_c; v % gcd != 0;) gcd /= 2;
    if (taps == 1 || g.in_c % 64 == 0) {
      job_.aside = BitserialASide::kTaps;
    } else if (g.dilation_w == 1 && gcd >= 16) {
      job_.aside = BitserialASide::kRowSeg;
      job_.shift = gcd;
      job_.seg_words = (g.kernel_w * g.in_c + 63) / 64;
      job_.padded_w = g.in_w + g.pad_left + g.pad_right;
      job_.row_words = (job_.padded_w * g.in_c + 63) / 64 + job_.seg_words + 1;
    } else {
      job_.aside = BitserialASide::kIm2col;
    }
    // Reduction index kk (taps-major: tap = kh * kernel_w + kx, then channel) -> its bit in the
    // packed k extent: kernel rows padded to whole words for kRowSeg, else contiguous.
    const int seg_bits = g.kernel_w * g.in_c;
    auto bit_of = [&](int kk) {
      if (job_.aside != BitserialASide::kRowSeg) return kk;
      return kk / seg_bits * job_.seg_words * 64 + kk % seg_bits;
    };
    job_.kw = job_.aside == BitserialASide::kRowSeg ? g.kernel_h * job_.seg_words : (j.k + 63) / 64;
    job_.wpp = (g.in_c + 63) / 64;
    job_.w_mul = W == 1 ? 2 : 1;
    job_.w_off = W == 1 ? 1 : 1 << (W - 1);
    // Pixels per block: receptive-field planes within ~32 KiB, at least ~8 blocks.
    const int pixels = j.out_h * j.out_w;
    const size_t row_bytes = static_cast<size_t>(A) * job_.kw * 8;
    int mc =
        static_cast<int>(std::min<size_t>(kMaxBlockPixels, std::max<size_t>(4, 32768 / row_bytes)));
    mc = std::min(mc, round_up((pixels + 7) / 8, 4));
    j.mc = std::max(4, mc / 4 * 4);

    channel_constants(w, j.n_pad, scale_, bias_, offset_);
    const int cin = g.in_c;
    auto code = [&](int o, int kk) {  // weight code at reduction index kk (taps-major)
      return weight_code(w, o, kk % cin, kk / cin);
    };
    // Weights: u = q + 2^(W-1) (W = 1: the stored bit, 1 <-> +1), planes packed per panel of
    // nv * lanes channels (the last one narrower) as [k word][plane][channel].
    const int kw = job_.kw;
    weights_packed_.assign(static_cast<size_t>(j.n_pad) * W * kw, 0);
    for (int n0 = 0; n0 < j.n_pad;) {
      const int width = std::min(shape.nv, (j.n_pad - n0) / lanes) * lanes;
      uint64_t* base = weights_packed_.data() + static_cast<size_t>(n0) * W * kw;
      for (int n = 0; n < width && n0 + n < g.out_c; ++n)
        for (int kk = 0; kk < j.k; ++kk) {
          const int q = code(n0 + n, kk);
          const unsigned u = W == 1 ? (q > 0 ? 1u : 0u) : static_cast<unsigned>(q + (1 << (W - 1)));
          for (int i = 0; i < W; ++i)
            if (u >> i & 1)
              base[(static_cast<size_t>(bit_of(kk) / 64) * W + i) * width + n] |=
                  uint64_t{1} << (bit_of(kk) % 64);
        }
      n0 += width;
    }
    j.scale = scale_.data();
    j.bias = bias_.data();
    j.acc_offset = offset_.data();
    job_.weights = weights_packed_.data();
    scratch_per_thread_ = bitserial_scratch_bytes(job_);
    release_weight_values();  // weights_packed_ holds them now
  }

  void run(const ConvInputView& in, const ConvEpilogue& ep, int threads) const override {
    const ConvGeometry& g = weights_.geometry;
    const int A = job_.a_bits, wpp = job_.wpp;
    conv_check_epilogue(weights_, ep);
    BitserialJob lj = job_;
    ConvJob& j = lj.base;
    const int in_pixels = g.in_h * g.in_w;
    if (sums_.size() < static_cast<size_t>(in_pixels)) sums_.resize(in_pixels);
    if (in.bit_planes) {
      if (in.plane_stride < wpp || in.row_stride < (A - 1) * in.plane_stride + wpp)
        fail(weights_, "bit-plane input: plane_stride " + std::to_string(in.plane_stride) +
                           " / row_stride " + std::to_string(in.row_stride) +
                           " (uint64 words) too small for " + std::to_string(A) + " planes of " +
                           std::to_string(wpp) + " words");
      lj.planes = in.bit_planes;
      lj.pixel_stride = in.row_stride;
      lj.plane_stride = in.plane_stride;
      lj.pad_planes = pad_planes(in.plane_stride);
      isa_.sums(in.bit_planes, in.row_stride, in.plane_stride, g.in_c, A, in_pixels, sums_.data());
    } else {
      if (!in.codes) fail(weights_, "the input view has neither codes nor bit_planes");
      if (in.row_stride < g.in_c)
        fail(weights_,
             "input row_stride " + std::to_string(in.row_stride) + " is smaller than in_c");
      conv_check_input_storage(weights_, in);
      const size_t words = static_cast<size_t>(in_pixels) * A * wpp;
      if (planes_.size() < words) planes_.resize(words);
      uint64_t* planes = planes_.data();
      int32_t* sums = sums_.data();
      // One pass over the input (a few instructions per 64 codes and plane), on one thread.
      const unsigned all = pack_input(in, planes, sums);
      if (all >> A)
        fail(weights_, "an input code exceeds the " + std::to_string(A) +
                           "-bit range of this conv (a_bits); the producer must write " +
                           std::to_string(A) + "-bit codes");
      lj.planes = planes;
      lj.pixel_stride = A * wpp;
      lj.plane_stride = wpp;
      lj.pad_planes = pad_planes(wpp);
    }
    lj.pixel_sum = sums_.data();
    if (lj.aside == BitserialASide::kRowSeg) build_row_strings(lj);
    conv_fill_run_fields(j, in, ep);
    const int pixels = j.out_h * j.out_w;
    const int blocks = (pixels + j.mc - 1) / j.mc;
    const int t = std::max(1, std::min(threads, blocks));
    const BitserialBlockFn fn = isa_.block;
    const size_t scratch_bytes = scratch_per_thread_;
#pragma omp parallel for num_threads(t) schedule(static)
    for (int b = 0; b < blocks; ++b) {
      fn(lj, b * j.mc, std::min(pixels, (b + 1) * j.mc), thread_scratch(scratch_bytes));
    }
  }
  const char* kernel_name() const override {
    return name_.c_str();
  }
  bool accepts_bit_planes() const override {
    return true;
  }
  // Input codes -> planes and sums of every input pixel; a packed input (codes.h) is unpacked a
  // chunk of pixels at a time. Returns the OR of all codes.
  unsigned pack_input(const ConvInputView& in, uint64_t* planes, int32_t* sums) const {
    const ConvGeometry& g = weights_.geometry;
    const int pixels = g.in_h * g.in_w, A = job_.a_bits;
    if (in.code_storage_bits == 8)
      return isa_.pack(in.codes, in.row_stride, g.in_c, A, 0, pixels, planes, sums);
    const int chunk = std::max(1, kUnpackChunkBytes / g.in_c);
    unpacked_.resize(static_cast<size_t>(chunk) * g.in_c);
    unsigned all = 0;
    for (int q0 = 0; q0 < pixels; q0 += chunk) {
      const int q1 = std::min(pixels, q0 + chunk);
      for (int p = q0; p < q1; ++p)
        unpack_codes(in.codes, in.code_storage_bits, static_cast<int64_t>(p) * in.row_stride,
                     g.in_c, unpacked_.data() + static_cast<size_t>(p - q0) * g.in_c);
      // The packer addresses pixel p at codes + p * row_stride: hand it the chunk's origin.
      const uintptr_t origin = reinterpret_cast<uintptr_t>(unpacked_.data()) -
                               static_cast<uintptr_t>(static_cast<size_t>(q0) * g.in_c);
      all |= isa_.pack(reinterpret_cast<const uint8_t*>(origin), g.in_c, g.in_c, A, q0, q1, planes,
                       sums);
    }
    return all;
  }
  size_t packed_weight_bytes() const override {
    return weights_packed_.size() * 8 + 4 * (scale_.size() + bias_.size() + offset_.size());
  }
  size_t scratch_bytes() const override {
    return planes_.size() * 8 + sums_.size() * 4 + pad_.size() * 8 + rows_.size() * 8 +
           prefix_.size() * 4 + unpacked_.size();
  }
  size_t thread_scratch_bytes() const override {
    return scratch_per_thread_;
  }

 private:
  // kRowSeg: every input row's planes as one string per plane (padding columns and the padding
  // row hold z_a), its shifted copies, and the prefix sums of the codes along each row.
  void build_row_strings(BitserialJob& lj) const {
    const ConvJob& j = lj.base;
    const int A = lj.a_bits, in_c = j.in_c, rw = lj.row_words, wp = lj.padded_w;
    const int copies = 64 / lj.shift;
    const size_t row_block = static_cast<size_t>(A) * rw, copy_block = (j.in_h + 1) * row_block;
    rows_.resize(copies * copy_block);
    prefix_.resize(static_cast<size_t>(j.in_h + 1) * (wp + 1));
    std::fill(rows_.begin(), rows_.begin() + copy_block, 0);
    const int32_t pad_sum = in_c * j.zero_point;
    for (int r = 0; r <= j.in_h; ++r) {
      uint64_t* row = rows_.data() + r * row_block;
      int32_t* prefix = prefix_.data() + static_cast<size_t>(r) * (wp + 1);
      prefix[0] = 0;
      for (int x = 0; x < wp; ++x) {
        const int iw = x - j.pad_left;
        const uint64_t* src = lj.pad_planes;
        int32_t sum = pad_sum;
        if (r < j.in_h && iw >= 0 && iw < j.in_w) {
          const size_t pix = static_cast<size_t>(r) * j.in_w + iw;
          src = lj.planes + pix * lj.pixel_stride;
          sum = lj.pixel_sum[pix];
        }
        prefix[x + 1] = prefix[x] + sum;
        for (int b = 0; b < A; ++b)
          append_bits(row + static_cast<size_t>(b) * rw, x * in_c, src + b * lj.plane_stride, in_c);
      }
    }
    for (int c = 1; c < copies; ++c) {
      const int sh = c * lj.shift;
      uint64_t* dst = rows_.data() + c * copy_block;
      for (size_t r = 0; r < (j.in_h + 1) * static_cast<size_t>(A); ++r) {
        const uint64_t* src = rows_.data() + r * rw;
        uint64_t* d = dst + r * rw;
        for (int w = 0; w + 1 < rw; ++w) d[w] = src[w] >> sh | src[w + 1] << (64 - sh);
        d[rw - 1] = src[rw - 1] >> sh;
      }
    }
    lj.rows = rows_.data();
    lj.row_prefix = prefix_.data();
  }
  // ORs the low `nbits` bits of src (words) into dst at bit `pos` (dst has a word to spare).
  static void append_bits(uint64_t* dst, int pos, const uint64_t* src, int nbits) {
    const int sh = pos & 63;
    uint64_t* d = dst + (pos >> 6);
    for (int w = 0; w * 64 < nbits; ++w) {
      uint64_t v = src[w];
      if (nbits - w * 64 < 64) v &= (uint64_t{1} << (nbits - w * 64)) - 1;
      d[w] |= v << sh;
      if (sh) d[w + 1] |= v >> (64 - sh);
    }
  }
  // The padding pixel (every channel z_a) as a_bits planes `stride` words apart, plus one spare
  // word (im2col may read one word past a plane).
  const uint64_t* pad_planes(int stride) const {
    if (stride == pad_stride_) return pad_.data();
    const ConvWeights& w = weights_;
    pad_.assign(static_cast<size_t>(w.a_bits) * stride + 1, 0);
    for (int b = 0; b < w.a_bits; ++b)
      if (w.input_zero_point >> b & 1)
        for (int c = 0; c < w.geometry.in_c; ++c)
          pad_[static_cast<size_t>(b) * stride + c / 64] |= uint64_t{1} << (c % 64);
    pad_stride_ = stride;
    return pad_.data();
  }

  const LowbitIsa& isa_;
  std::string name_;
  BitserialJob job_{};
  std::vector<uint64_t> weights_packed_;
  mutable std::vector<uint64_t> pad_;
  mutable int pad_stride_ = -1;
  std::vector<float> scale_, bias_;
  std::vector<int32_t> offset_;
  size_t scratch_per_thread_ = 0;
  mutable std::vector<uint64_t> planes_;
  mutable std::vector<int32_t> sums_, prefix_;
  mutable std::vector<uint64_t> rows_;
  mutable std::vector<uint8_t> unpacked_;  // packed inputs: one chunk of byte codes
};

#if defined(__x86_64__)
// ---------------------------------------------------------------------------------------------
// The table-lookup plan (conv_lut_job.h): 1- or 2-bit activations, 1- or 2-bit weights.

// Entry range of a (w_bits, a_bits) table: entries are entry_bias + sum of cpg products.
struct LutRange {
  int cpg, entry_bias, range, flush_steps;
};
LutRange lut_range(int w_bits, int a_bits) {
  const int cpg = 6 / a_bits, amax = (1 << a_bits) - 1;
  const int qmin = w_bits == 1 ? -1 : -(1 << (w_bits - 1));
  const int qmax = w_bits == 1 ? 1 : (1 << (w_bits - 1)) - 1;
  const int bias = cpg * -qmin * amax, range = bias + cpg * qmax * amax;
  return {cpg, bias, range, 255 / range};
}

// A conv the LUT rows can run: 1-/2-bit activations and weights, no dilation, and 16-bit sums that
// cannot overflow (taps * groups * range <= 65535: for W2A2 a reduction of up to 7281).
bool lut_fits(const ConvWeights& w) {
  const ConvGeometry& g = w.geometry;
  if (w.precision != ConvPrecision::kInt || g.groups != 1 || w.a_bits > 2 || w.w_bits > 2 ||
      g.dilation_h != 1 || g.dilation_w != 1)
    return false;
  const LutRange r = lut_range(w.w_bits, w.a_bits);
  const int64_t steps =
      static_cast<int64_t>(g.kernel_h) * g.kernel_w * ((g.in_c + r.cpg - 1) / r.cpg);
  return steps * r.range <= 65535;
}

std::string lut_row_name(int wb, int ab) {
  return "conv_lut_w" + std::to_string(wb) + "a" + std::to_string(ab) + "__avx512vbmi";
}

class LutPlan final : public ConvPlan {
 public:
  explicit LutPlan(const ConvWeights& w) : ConvPlan(w) {
    const ConvGeometry& g = w.geometry;
    const int W = w.w_bits, A = w.a_bits;
    name_ = lut_row_name(W, A);
    const LutRange lr = lut_range(W, A);
    ConvJob& j = job_.base;
    j = conv_base_job(w);
    j.k = g.reduction();
    j.k_pad = j.k;
    j.n_pad = round_up(g.out_c, 16);
    job_.w_bits = W, job_.a_bits = A;
    job_.cpg = lr.cpg;
    job_.groups = (g.in_c + lr.cpg - 1) / lr.cpg;
    job_.taps = g.kernel_h * g.kernel_w;
    job_.entry_bias = lr.entry_bias;
    job_.flush_steps = lr.flush_steps;
    // Phase images: wide enough for every output column plus its taps, tall enough for every
    // load of the last vector, and a 64-byte gap after each (the index builder's spill).
    const int sh = g.stride_h, sw = g.stride_w;
    const int wp = g.in_w + g.pad_left + g.pad_right;
    job_.wq = (wp + sw - 1) / sw;
    const int positions = j.out_h * job_.wq;
    job_.vectors = (positions + 63) / 64;
    const int max_off = (g.kernel_h - 1) / sh * job_.wq + (g.kernel_w - 1) / sw;
    const int rows = (job_.vectors * 64 + max_off + job_.wq - 1) / job_.wq;
    job_.phase_bytes = static_cast<size_t>(rows) * job_.wq + 64;
    job_.group_bytes = static_cast<size_t>(sh) * sw * job_.phase_bytes;
    tap_off_.resize(job_.taps);
    for (int ky = 0; ky < g.kernel_h; ++ky)
      for (int kx = 0; kx < g.kernel_w; ++kx)
        tap_off_[ky * g.kernel_w + kx] =
            static_cast<int32_t>(((ky % sh) * sw + kx % sw) * job_.phase_bytes +
                                 static_cast<size_t>(ky / sh) * job_.wq + kx / sw);
    for (int gi = 0; gi < job_.groups; ++gi)
      for (int t = 0; t < job_.taps; ++t) {
        steps_.push_back(static_cast<int32_t>(gi * job_.group_bytes + tap_off_[t]));
        steps_.push_back((gi * job_.taps + t) * 64);
      }
    channel_constants(w, j.n_pad, scale_, bias_, offset_);
    const int cin = g.in_c;
    // Tables [out channel (rounded up to 4)][group][tap][index].
    const int oc4 = round_up(g.out_c, 4), G = job_.groups, amax = (1 << A) - 1;
    const size_t table_bytes = static_cast<size_t>(oc4) * G * job_.taps * 64;
    tables_.assign(table_bytes + 64, 0);
    uint8_t* tables = align64(tables_.data());
    for (int o = 0; o < oc4; ++o)
      for (int gi = 0; gi < G; ++gi)
        for (int t = 0; t < job_.taps; ++t) {
          uint8_t* e = tables + ((static_cast<size_t>(o) * G + gi) * job_.taps + t) * 64;
          for (int idx = 0; idx < 64; ++idx) {
            int v = lr.entry_bias;
            for (int q = 0; q < lr.cpg && o < g.out_c; ++q) {
              const int ic = gi * lr.cpg + q;
              if (ic < cin) v += weight_code(w, o, ic, t) * (idx >> (A * q) & amax);
            }
            e[idx] = static_cast<uint8_t>(v);  // in [0, range] (range <= 255)
          }
        }
    // The padding pixel's index bytes: z_a in every channel of the group.
    pad_byte_.assign(G + 64, 0);
    for (int gi = 0; gi < G; ++gi)
      for (int q = 0; q < lr.cpg && gi * lr.cpg + q < cin; ++q)
        pad_byte_[gi] |= static_cast<uint8_t>(w.input_zero_point << (A * q));
    j.scale = scale_.data();
    j.bias = bias_.data();
    j.acc_offset = offset_.data();
    job_.tables = tables;
    job_.tap_off = tap_off_.data();
    job_.steps = steps_.data();
    scratch_per_thread_ = lut_scratch_bytes(job_);
    release_weight_values();  // the tables hold them now
  }

  void run(const ConvInputView& in, const ConvEpilogue& ep, int threads) const override {
    const ConvGeometry& g = weights_.geometry;
    conv_check_epilogue(weights_, ep);
    if (!in.codes) fail(weights_, "the input view has no codes (this kernel reads codes)");
    if (in.row_stride < g.in_c)
      fail(weights_, "input row_stride " + std::to_string(in.row_stride) + " is smaller than in_c");
    conv_check_input_storage(weights_, in);
    if (in.code_storage_bits < 8) {
      // Forced rows only (never picked): the whole input unpacked once, then read as bytes.
      ConvInputView bytes = in;
      unpacked_.resize(static_cast<size_t>(g.in_h) * g.in_w * g.in_c);
      for (int64_t p = 0; p < int64_t{g.in_h} * g.in_w; ++p)
        unpack_codes(in.codes, in.code_storage_bits, p * in.row_stride, g.in_c,
                     unpacked_.data() + p * g.in_c);
      bytes.codes = unpacked_.data();
      bytes.row_stride = g.in_c;
      bytes.code_storage_bits = 8;
      return run_bytes(bytes, ep, threads);
    }
    run_bytes(in, ep, threads);
  }

  void run_bytes(const ConvInputView& in, const ConvEpilogue& ep, int threads) const {
    LutJob lj = job_;
    ConvJob& j = lj.base;
    const size_t bytes = lj.group_bytes * lj.groups + 64 * (kLutBlockVectors + 1);
    if (index_.size() < bytes + 64) index_.resize(bytes + 64);
    uint8_t* index = align64(index_.data());
    if (index_temp_.size() < lut_index_temp_bytes(lj)) index_temp_.resize(lut_index_temp_bytes(lj));
    const unsigned all = conv_lut_index__avx512vbmi(lj, in.codes, in.row_stride, pad_byte_.data(),
                                                    index, index_temp_.data());
    if (all >> weights_.a_bits)
      fail(weights_, "an input code exceeds the " + std::to_string(weights_.a_bits) +
                         "-bit range of this conv (a_bits); the producer must write " +
                         std::to_string(weights_.a_bits) + "-bit codes");
    lj.index = index;
    conv_fill_run_fields(j, in, ep);
    const int blocks = (lj.vectors + kLutBlockVectors - 1) / kLutBlockVectors;
    const int t = std::max(1, std::min(threads, blocks));
    const size_t scratch_bytes = scratch_per_thread_;
#pragma omp parallel for num_threads(t) schedule(static)
    for (int b = 0; b < blocks; ++b) {
      conv_lut_block__avx512vbmi(lj, b * kLutBlockVectors,
                                 std::min(lj.vectors, (b + 1) * kLutBlockVectors),
                                 thread_scratch(scratch_bytes));
    }
  }
  const char* kernel_name() const override {
    return name_.c_str();
  }
  size_t packed_weight_bytes() const override {
    return tables_.size() +
           4 * (scale_.size() + bias_.size() + offset_.size() + tap_off_.size() + steps_.size());
  }
  size_t scratch_bytes() const override {
    return index_.size() + index_temp_.size() + unpacked_.size();
  }
  size_t thread_scratch_bytes() const override {
    return scratch_per_thread_;
  }

 private:
  static uint8_t* align64(uint8_t* p) {
    return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63});
  }
  std::string name_;
  LutJob job_{};
  std::vector<uint8_t> tables_, pad_byte_;
  std::vector<int32_t> tap_off_, steps_;
  std::vector<float> scale_, bias_;
  std::vector<int32_t> offset_;
  size_t scratch_per_thread_ = 0;
  mutable std::vector<uint8_t> index_, index_temp_;
  mutable std::vector<uint8_t> unpacked_;  // packed inputs, unpacked whole (forced rows only)
};
#endif

// ---------------------------------------------------------------------------------------------
// The rows (conv_row.h).

bool bitserial_fits(const ConvWeights& w, const ConvRow& row) {
  return conv_fits(w) && w.w_bits == row.min_w_bits && w.a_bits == row.min_a_bits;
}

// The CPU's best ISA's rules decide (a lower ISA's rules never do).
bool bitserial_picks(const ConvWeights& w, const ConvRow& row, const CpuFeatures& features) {
  if (best_isa(features) != row.isa || !row.isa->rules) return false;
  for (int i = 0; i < row.isa->num_rules; ++i)
    if (rule_picks(row.isa->rules[i], w.w_bits, w.a_bits, w.geometry)) return true;
  return false;
}

std::unique_ptr<ConvPlan> make_bitserial_plan(const ConvWeights& w, const ConvRow& row) {
  return std::make_unique<BitserialPlan>(w, *row.isa);
}

#if defined(__x86_64__)
bool lut_row_fits(const ConvWeights& w, const ConvRow& row) {
  return lut_fits(w) && w.w_bits == row.min_w_bits && w.a_bits == row.min_a_bits;
}

std::unique_ptr<ConvPlan> make_lut_plan(const ConvWeights& w, const ConvRow&) {
  return std::make_unique<LutPlan>(w);
}
#endif

// A low-bit row of one (w_bits, a_bits) pair, without its kernel.
ConvRow pair_row(std::string name, int wb, int ab, bool (*available)(const CpuFeatures&)) {
  ConvRow r{};
  r.name = std::move(name);
  r.family = "gemm";
  r.precision = ConvPrecision::kInt;
  r.min_w_bits = r.max_w_bits = wb;
  r.min_a_bits = r.max_a_bits = ab;
  r.available = available;
  r.what_conv = "low-bit conv";
  return r;
}

std::vector<ConvRow> make_lowbit_rows() {
  std::vector<ConvRow> rows;
  for (const LowbitIsa& isa : kIsas)
    for (int wb : kBits)
      for (int ab : kBits) {
        if (!pair_supported(wb, ab)) continue;
        ConvRow r = pair_row(row_name(isa, wb, ab), wb, ab, isa.available);
        r.fits = bitserial_fits;
        r.picks = bitserial_picks;
        r.make = make_bitserial_plan;
        r.needs = "groups, precision or bits";
        r.isa = &isa;
        rows.push_back(r);
      }
#if defined(__x86_64__)
  for (int wb : {1, 2})
    for (int ab : {1, 2}) {
      ConvRow r = pair_row(lut_row_name(wb, ab), wb, ab, has_avx512vbmi);
      r.fits = lut_row_fits;
      r.picks = nullptr;  // measured slower than int8 (kIsas): forced only
      r.make = make_lut_plan;
      r.needs = "groups, precision, bits, dilation, or a reduction too deep for its 16-bit sums";
      rows.push_back(r);
    }
#endif
  return rows;
}

}  // namespace

const std::vector<ConvRow>& kernels::conv_lowbit_rows() {
  static const std::vector<ConvRow> rows = make_lowbit_rows();
  return rows;
}

void pack_bit_planes(const uint8_t* codes, int pixels, int row_stride, const BitPlaneLayout& layout,
                     uint64_t* planes) {
  if (layout.bits < 1 || layout.bits > 8 || layout.channels < 1 || row_stride < layout.channels)
    throw Error("pack_bit_planes: bits must be 1..8, channels >= 1 and row_stride >= channels");
  std::vector<int32_t> sums(pixels);
  const unsigned all = conv_bitpack__scalar(codes, row_stride, layout.channels, layout.bits, 0,
                                            pixels, planes, sums.data());
  if (all >> layout.bits)
    throw Error("pack_bit_planes: a code exceeds the " + std::to_string(layout.bits) +
                "-bit range");
}

void unpack_bit_planes(const uint64_t* planes, int pixels, const BitPlaneLayout& layout,
                       uint8_t* codes, int row_stride) {
  const int wpp = layout.words_per_plane();
  for (int p = 0; p < pixels; ++p) {
    const uint64_t* px = planes + static_cast<size_t>(p) * layout.words_per_pixel();
    for (int c = 0; c < layout.channels; ++c) {
      unsigned q = 0;
      for (int b = 0; b < layout.bits; ++b)
        q |= static_cast<unsigned>(px[b * wpp + c / 64] >> (c % 64) & 1) << b;
      codes[static_cast<size_t>(p) * row_stride + c] = static_cast<uint8_t>(q);
    }
  }
}

std::vector<ConvKernelInfo> conv_lowbit_kernel_table(const CpuFeatures& features) {
  std::vector<ConvKernelInfo> out;
  for (const ConvRow& r : conv_lowbit_rows()) out.push_back(r.info(features));
  return out;
}

std::string conv_lowbit_pick(const ConvWeights& w, const CpuFeatures& features) {
  const ConvRow* row = pick_conv_row(conv_lowbit_rows(), w, features);
  return row ? row->name : "";
}

std::unique_ptr<ConvPlan> make_conv_plan_lowbit(const ConvWeights& w, const CpuFeatures& features) {
  const ConvRow* row = pick_conv_row(conv_lowbit_rows(), w, features);
  return row ? row->make(w, *row) : nullptr;
}

std::unique_ptr<ConvPlan> make_conv_plan_lowbit_named(const ConvWeights& w,
                                                      const std::string& kernel) {
  return make_named_row_plan(conv_lowbit_rows(), w, kernel);
}

std::vector<std::string> conv_lowbit_kernel_names_for(const CpuFeatures& features) {
  std::vector<std::string> out;
  const LowbitIsa* isa = best_isa(features);
  if (!isa) return out;
  std::string int8;
  for (int wb : kBits)
    for (int ab : kBits) {
      if (!pair_supported(wb, ab)) continue;
      const std::string pair = "w" + std::to_string(wb) + "a" + std::to_string(ab);
      std::vector<std::string> alternatives;
      bool always = false;
      for (int i = 0; i < isa->num_rules; ++i)
        if (isa->rules[i].w_bits == wb && isa->rules[i].a_bits == ab) {
          alternatives.push_back(rule_text(isa->rules[i]));
          always = always || alternatives.back().empty();
        }
      if (alternatives.empty()) {
        int8 += (int8.empty() ? "" : " ") + pair;
      } else if (always) {
        out.push_back("gemm/lowbit " + pair + ": " + row_name(*isa, wb, ab) +
                      " on every layer (int8 would run " + isa->int8_kernel + ")");
      } else {
        std::string where;
        for (const std::string& a : alternatives)
          where +=
              (where.empty() ? "" : " or ") +
              (alternatives.size() > 1 && a.find(" and ") != std::string::npos ? "(" + a + ")" : a);
        out.push_back("gemm/lowbit " + pair + ": " + row_name(*isa, wb, ab) + " where " + where +
                      ", else int8 (" + isa->int8_kernel + ")");
      }
    }
  if (!int8.empty())
    out.push_back(std::string("gemm/lowbit int8 fallback: ") + int8 + " run " +
                  (isa->rules ? isa->int8_kernel : "the int8 kernel") + " on their codes: " +
                  (isa->rules ? isa->why : "no bit-serial rule for this CPU"));
  return out;
}

}  // namespace mixnas::rt
