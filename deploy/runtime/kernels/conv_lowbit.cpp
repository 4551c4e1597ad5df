// Low-bit conv rows (conv_lowbit.h): the bit-serial plan, plane packing, and the table of
// (ISA, w_bits, a_bits) rows with the measured rule that decides where they beat int8.
#include "deploy/runtime/kernels/conv_lowbit.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "deploy/runtime/kernels/conv_bitserial_job.h"

namespace mixnas::rt {

namespace {

std::string geometry_text(const ConvGeometry& g) {
  return std::to_string(g.in_h) + "x" + std::to_string(g.in_w) + "x" + std::to_string(g.in_c) +
         " -> " + std::to_string(g.out_c) + ", kernel " + std::to_string(g.kernel_h) + "x" +
         std::to_string(g.kernel_w);
}
[[noreturn]] void fail(const ConvWeights& w, const std::string& what) {
  throw Error("low-bit conv (" + geometry_text(w.geometry) + "): " + what);
}

int round_up(int x, int m) {
  return (x + m - 1) / m * m;
}

// ---------------------------------------------------------------------------------------------
// The rows. One bit-serial block function per ISA serves every (w_bits, a_bits); a row per pair
// names it and carries the rule of where it wins.

struct LowbitIsa {
  const char* suffix;
  bool (*available)(const CpuFeatures&);
  BitserialShape (*shape)(int w_bits, int a_bits, int* lanes);
  BitserialBlockFn block;
  BitPackFn pack;
  // Measured on the CPU class this ISA row runs on (bench/mixnas_bench_lowbit.cpp): true where the
  // bit-serial kernel beats the int8 kernel of the same CPU for this layer.
  bool (*wins)(int w_bits, int a_bits, const ConvGeometry& g);
  const char* rule;  // the rule in words, for `mixnas info`
};

[[maybe_unused]] bool never(int, int, const ConvGeometry&) {
  return false;
}

#if defined(__x86_64__)
bool has_avx512vpopcnt(const CpuFeatures& f) {
  return f.avx512f && f.avx512bw && f.avx512vpopcntdq;
}
bool has_avx2(const CpuFeatures& f) {
  return f.avx2;
}
bool no_avx2(const CpuFeatures& f) {
  return !f.avx2;
}
// AVX-512 VPOPCNTDQ vs the VNNI int8 kernel (vpdpbusd: 64 MACs per instruction); bit-serial costs
// 3 instructions (vpandq, vpopcntq, vpaddq) per 512 MACs per plane pair.
// Measured (mixnas-bench-lowbit, YOLOv8n convs): W1A1 wins for K >= 1024, or K >= 128 with
// out_c >= 128; W2A2 runs ~2x slower than int8 on every layer, so 2+ bits stay on int8.
bool wins_avx512(int wb, int ab, const ConvGeometry& g) {
  const int k = g.reduction();
  if (wb * ab == 1) return k >= 1024 || (k >= 128 && g.out_c >= 128);
  return wb * ab == 2 && k >= 1024 && g.out_c >= 128;
}
// AVX2: 7 instructions per 256 MACs per plane pair vs vpmaddwd (16 MACs per instruction).
bool wins_avx2(int wb, int ab, const ConvGeometry& g) {
  return wb * ab <= 1 && g.reduction() >= 128;
}
// Without AVX2 there is no int8 kernel row (the int8 reference runs): bit-serial always wins.
bool wins_always(int wb, int ab, const ConvGeometry&) {
  return wb <= 4 && ab <= 4;
}
#endif
#if defined(__aarch64__)
bool has_neon(const CpuFeatures& f) {
  return f.neon;
}
bool has_dotprod(const CpuFeatures& f) {
  return f.neon && f.dotprod;
}
bool neon_only(const CpuFeatures& f) {
  return f.neon && !f.dotprod;
}
// Cortex-A72 class (no sdot; int8 runs smlal, 4 MACs per instruction): vand + vcnt + vadd per 128
// MACs per plane pair (llvm-mca, bench/mca/report.sh).
bool wins_neon(int wb, int ab, const ConvGeometry& g) {
  return wb * ab <= 4 && g.reduction() >= 64;
}
// sdot cores (16 MACs per instruction): only the 1-bit x 1-bit kernel keeps ahead.
bool wins_neondot(int wb, int ab, const ConvGeometry& g) {
  return wb * ab <= 1 && g.reduction() >= 128;
}
#endif

const LowbitIsa kIsas[] = {
#if defined(__x86_64__)
    {"avx512vpopcnt", has_avx512vpopcnt, conv_bitserial_shape__avx512vpopcnt, conv_bitserial_block__avx512vpopcnt,
     conv_bitpack__avx512vpopcnt, wins_avx512,
     "w1a1: K >= 1024 or (K >= 128 and out_c >= 128); w1a2/w2a1: K >= 1024 and out_c >= 128"},
    {"avx2", has_avx2, conv_bitserial_shape__avx2, conv_bitserial_block__avx2, conv_bitpack__avx2, wins_avx2,
     "w1a1 and K >= 128"},
    {"scalar", no_avx2, conv_bitserial_shape__scalar, conv_bitserial_block__scalar, conv_bitpack__scalar, wins_always,
     "always (no int8 kernel without AVX2)"},
#elif defined(__aarch64__)
    {"neondot", has_dotprod, conv_bitserial_shape__neondot, conv_bitserial_block__neondot, conv_bitpack__neondot, wins_neondot,
     "w1a1 and K >= 128"},
    {"neon", neon_only, conv_bitserial_shape__neon, conv_bitserial_block__neon, conv_bitpack__neon, wins_neon,
     "w_bits * a_bits <= 4 and K >= 64"},
    {"neon", has_neon, conv_bitserial_shape__neon, conv_bitserial_block__neon, conv_bitpack__neon, never, "forced only"},
#endif
    {"scalar", [](const CpuFeatures&) { return true; }, conv_bitserial_shape__scalar, conv_bitserial_block__scalar,
     conv_bitpack__scalar, never, "forced only"},
};

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

class BitserialPlan final : public ConvPlan {
 public:
  BitserialPlan(const ConvWeights& w, const LowbitIsa& isa) : ConvPlan(w), isa_(isa) {
    const ConvGeometry& g = w.geometry;
    name_ = row_name(isa, w.w_bits, w.a_bits);
    const int W = w.w_bits, A = w.a_bits;
    int lanes = 1;
    const BitserialShape shape = isa.shape(W, A, &lanes);
    ConvJob& j = job_.base;
    j = ConvJob{};
    j.in_h = g.in_h, j.in_w = g.in_w, j.in_c = g.in_c;
    j.out_h = g.out_h(), j.out_w = g.out_w(), j.out_c = g.out_c;
    j.kernel_h = g.kernel_h, j.kernel_w = g.kernel_w, j.stride_h = g.stride_h,
    j.stride_w = g.stride_w;
    j.pad_top = g.pad_top, j.pad_left = g.pad_left;
    j.dilation_h = g.dilation_h, j.dilation_w = g.dilation_w;
    j.zero_point = w.input_zero_point;
    j.k = g.reduction();
    j.k_pad = round_up(j.k, 64);
    j.n_pad = round_up(g.out_c, 16);
    job_.w_bits = W, job_.a_bits = A;
    job_.kw = (j.k + 63) / 64;
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

    // Per-channel constants.
    scale_.assign(j.n_pad, 0.0f);
    bias_.assign(j.n_pad, 0.0f);
    offset_.assign(j.n_pad, 0);
    const int cin = g.in_c;
    auto code = [&](int o, int kk) {  // weight code at reduction index kk (taps-major)
      const int ic = kk % cin, tap = kk / cin;
      const int kh = tap / g.kernel_w, kx = tap % g.kernel_w;
      return static_cast<int>(
          w.weight_codes[((static_cast<size_t>(o) * cin + ic) * g.kernel_h + kh) * g.kernel_w +
                         kx]);
    };
    for (int o = 0; o < g.out_c; ++o) {
      if (!w.bias.empty()) bias_[o] = w.bias[o];
      scale_[o] = w.weight_scale[o] * w.input_scale;
      int64_t sum = 0;
      for (int kk = 0; kk < j.k; ++kk) sum += code(o, kk);
      offset_[o] = static_cast<int32_t>(-static_cast<int64_t>(w.input_zero_point) * sum);
    }
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
              base[(static_cast<size_t>(kk / 64) * W + i) * width + n] |= uint64_t{1} << (kk % 64);
        }
      n0 += width;
    }
    pad_planes_.assign(static_cast<size_t>(A) * job_.wpp + 1, 0);
    for (int b = 0; b < A; ++b)
      if (w.input_zero_point >> b & 1)
        for (int c = 0; c < cin; ++c) pad_planes_[b * job_.wpp + c / 64] |= uint64_t{1} << (c % 64);
    j.scale = scale_.data();
    j.bias = bias_.data();
    j.acc_offset = offset_.data();
    job_.weights = weights_packed_.data();
    job_.pad_planes = pad_planes_.data();
    scratch_per_thread_ = bitserial_scratch_bytes(job_);
  }

  void run(const ConvInputView& in, const ConvEpilogue& ep, int threads) const override {
    const ConvGeometry& g = weights_.geometry;
    const int A = job_.a_bits, wpp = job_.wpp;
    check_epilogue(ep);
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
      const int tail = g.in_c % 64;
      const uint64_t last = tail ? (uint64_t{1} << tail) - 1 : ~uint64_t{0};
      int32_t* sums = sums_.data();
      for (int p = 0; p < in_pixels; ++p) {
        const uint64_t* px = in.bit_planes + static_cast<size_t>(p) * in.row_stride;
        int64_t s = 0;
        for (int b = 0; b < A; ++b)
          for (int w = 0; w < wpp; ++w) {
            const uint64_t v = px[b * in.plane_stride + w] & (w == wpp - 1 ? last : ~uint64_t{0});
            s += static_cast<int64_t>(__builtin_popcountll(v)) << b;
          }
        sums[p] = static_cast<int32_t>(s);
      }
    } else {
      if (!in.codes) fail(weights_, "the input view has neither codes nor bit_planes");
      if (in.row_stride < g.in_c)
        fail(weights_,
             "input row_stride " + std::to_string(in.row_stride) + " is smaller than in_c");
      const size_t words = static_cast<size_t>(in_pixels) * A * wpp;
      if (planes_.size() < words) planes_.resize(words);
      uint64_t* planes = planes_.data();
      int32_t* sums = sums_.data();
      const BitPackFn pack = isa_.pack;
      // One pass over the input (a few instructions per 64 codes and plane), on one thread.
      const unsigned all = pack(in.codes, in.row_stride, g.in_c, A, 0, in_pixels, planes, sums);
      if (all >> A)
        fail(weights_, "an input code exceeds the " + std::to_string(A) +
                           "-bit range of this conv (a_bits); the producer must write " +
                           std::to_string(A) + "-bit codes");
      lj.planes = planes;
      lj.pixel_stride = A * wpp;
      lj.plane_stride = wpp;
    }
    lj.pixel_sum = sums_.data();
    j.in_codes = in.codes;
    j.in_stride = in.row_stride;
    j.act = ep.act;
    j.residual = ep.residual;
    j.residual_stride = ep.residual_row_stride;
    j.sinks = ep.sinks.data();
    j.num_sinks = static_cast<int>(ep.sinks.size());
    const int pixels = j.out_h * j.out_w;
    const int blocks = (pixels + j.mc - 1) / j.mc;
    const int t = std::max(1, std::min(threads, blocks));
    if (scratch_.size() < static_cast<size_t>(t)) scratch_.resize(t);
    for (int i = 0; i < t; ++i) scratch_[i].resize(scratch_per_thread_ + 64);
    const BitserialBlockFn fn = isa_.block;
#pragma omp parallel for num_threads(t) schedule(static)
    for (int b = 0; b < blocks; ++b) {
      unsigned char* s = scratch_[omp_get_thread_num()].data();
      fn(lj, b * j.mc, std::min(pixels, (b + 1) * j.mc), s);
    }
  }
  const char* kernel_name() const override {
    return name_.c_str();
  }
  size_t packed_weight_bytes() const override {
    return weights_packed_.size() * 8 + 4 * (scale_.size() + bias_.size() + offset_.size());
  }
  size_t scratch_bytes() const override {
    return scratch_per_thread_ + planes_.size() * 8 + sums_.size() * 4;
  }

 private:
  void check_epilogue(const ConvEpilogue& ep) const {
    const ConvWeights& w = weights_;
    const int oc = w.geometry.out_c;
    if (ep.sinks.empty()) fail(w, "the epilogue has no sinks; the output would go nowhere");
    if (ep.residual && ep.residual_row_stride < oc)
      fail(w, "residual_row_stride " + std::to_string(ep.residual_row_stride) +
                  " is smaller than out_c");
    for (size_t s = 0; s < ep.sinks.size(); ++s) {
      const ConvSink& k = ep.sinks[s];
      const std::string at = "sink " + std::to_string(s) + ": ";
      if (!k.data) fail(w, at + "data is null");
      if (k.kind == ConvSink::kF32 || k.kind == ConvSink::kCodes) {
        if (k.channel_offset < 0 || k.row_stride < k.channel_offset + oc)
          fail(w, at + "row_stride " + std::to_string(k.row_stride) + " < channel_offset " +
                      std::to_string(k.channel_offset) + " + out_c");
      } else if (k.kind == ConvSink::kBitPlanes) {
        const int words = (k.channel_offset + oc + 63) / 64;
        if (k.channel_offset < 0 || k.plane_stride < words ||
            k.row_stride < (k.bits - 1) * k.plane_stride + words)
          fail(w, at + "bit planes of channel_offset " + std::to_string(k.channel_offset) +
                      " + out_c need plane_stride >= " + std::to_string(words) +
                      " and row_stride >= (bits - 1) * plane_stride + that (uint64 words)");
      } else {
        fail(w, at + "unknown sink kind");
      }
      if (k.kind != ConvSink::kF32) {
        if (k.bits < 1 || k.bits > 8) fail(w, at + "bits must be 1..8");
        if (k.zero_point < 0 || k.zero_point > (1 << k.bits) - 1)
          fail(w, at + "zero_point outside [0, 2^bits - 1]");
        if (!std::isfinite(k.scale) || k.scale <= 0)
          fail(w, at + "scale must be positive and finite");
      }
    }
  }

  const LowbitIsa& isa_;
  std::string name_;
  BitserialJob job_{};
  std::vector<uint64_t> weights_packed_, pad_planes_;
  std::vector<float> scale_, bias_;
  std::vector<int32_t> offset_;
  size_t scratch_per_thread_ = 0;
  mutable std::vector<std::vector<unsigned char>> scratch_;
  mutable std::vector<uint64_t> planes_;
  mutable std::vector<int32_t> sums_;
};

}  // namespace

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
  for (const LowbitIsa& isa : kIsas)
    for (int wb : kBits)
      for (int ab : kBits)
        if (pair_supported(wb, ab))
          out.push_back({row_name(isa, wb, ab), "gemm", ConvPrecision::kInt, wb, wb, ab, ab,
                         isa.available(features)});
  return out;
}

std::unique_ptr<ConvPlan> make_conv_plan_lowbit(const ConvWeights& w, const CpuFeatures& features) {
  if (!conv_fits(w)) return nullptr;
  for (const LowbitIsa& isa : kIsas)
    if (isa.available(features)) {
      // The first available ISA is the CPU's best; when it does not win, int8 does.
      if (isa.wins(w.w_bits, w.a_bits, w.geometry)) return std::make_unique<BitserialPlan>(w, isa);
      return nullptr;
    }
  return nullptr;
}

std::unique_ptr<ConvPlan> make_conv_plan_lowbit_named(const ConvWeights& w,
                                                      const std::string& kernel) {
  const LowbitIsa* found = nullptr;
  int fw = 0, fa = 0;
  for (const LowbitIsa& isa : kIsas)
    for (int wb : kBits)
      for (int ab : kBits) {
        if (!pair_supported(wb, ab) || row_name(isa, wb, ab) != kernel) continue;
        // Rows of one ISA may repeat with different rules: the first available one.
        if (!found || (!found->available(cpu_features()) && isa.available(cpu_features())))
          found = &isa, fw = wb, fa = ab;
      }
  if (!found) return nullptr;
  make_conv_plan_reference(w);  // validates w
  if (!found->available(cpu_features()))
    throw Error("conv kernel '" + kernel +
                "' needs an ISA this CPU lacks (or MIXNAS_CPU_DISABLE masks)");
  if (!conv_fits(w) || w.w_bits != fw || w.a_bits != fa)
    fail(w, "kernel '" + kernel + "' does not support this conv (groups, precision or bits)");
  return std::make_unique<BitserialPlan>(w, *found);
}

std::vector<std::string> conv_lowbit_kernel_names_for(const CpuFeatures& features) {
  std::vector<std::string> out;
  for (const LowbitIsa& isa : kIsas) {
    if (!isa.available(features)) continue;
    std::string active, int8;
    for (int wb : kBits)
      for (int ab : kBits) {
        if (!pair_supported(wb, ab) || wb == 8 || ab == 8) continue;
        // Does the rule pick the row for some layer? Probe a deep 3x3 conv.
        ConvGeometry g;
        g.in_h = g.in_w = 8, g.in_c = 256, g.out_c = 64, g.kernel_h = g.kernel_w = 3;
        const std::string pair = "w" + std::to_string(wb) + "a" + std::to_string(ab);
        std::string& list = isa.wins(wb, ab, g) ? active : int8;
        list += (list.empty() ? "" : " ") + pair;
      }
    if (!active.empty())
      out.push_back(std::string("gemm/lowbit: conv_bitserial_*__") + isa.suffix + " for " + active +
                    " where " + isa.rule + ", else int8");
    out.push_back(std::string("gemm/lowbit: int8 kernels for ") + (int8.empty() ? "none" : int8) +
                  (active.empty() ? " (bit-serial never beats int8 on this CPU)" : ""));
    break;
  }
  return out;
}

}  // namespace mixnas::rt
