#include "deploy/runtime/kernels/conv.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "core/error.h"
#include "deploy/runtime/codes.h"
#include "deploy/runtime/kernels/conv_common.h"
#include "deploy/runtime/kernels/conv_job.h"
#include "deploy/runtime/kernels/conv_lowbit.h"
#include "deploy/runtime/kernels/conv_row.h"
#include "deploy/runtime/kernels/conv_wpack.h"

#define MIXNAS_KERNEL_ISA isa_reference
#include "deploy/runtime/kernels/conv_impl.h"
#undef MIXNAS_KERNEL_ISA

namespace mixnas::rt {

void conv_epilogue_baseline(const ConvJob& job, int pixel_begin, int pixel_end, void* acc,
                            bool int_acc) {
  isa_reference::epilogue<4>(job, pixel_begin, pixel_end - pixel_begin, acc, int_acc);
}

int ConvGeometry::out_h() const {
  return (in_h + pad_top + pad_bottom - dilation_h * (kernel_h - 1) - 1) / stride_h + 1;
}
int ConvGeometry::out_w() const {
  return (in_w + pad_left + pad_right - dilation_w * (kernel_w - 1) - 1) / stride_w + 1;
}
int ConvGeometry::reduction() const {
  return kernel_h * kernel_w * (in_c / std::max(groups, 1));
}

unsigned char* thread_scratch(size_t bytes) {
  thread_local std::vector<unsigned char> buffer;
  if (buffer.size() < bytes + 64) buffer.resize(bytes + 64);
  unsigned char* s = buffer.data();
  return s + (64 - reinterpret_cast<uintptr_t>(s) % 64) % 64;
}

ConvPlan::~ConvPlan() = default;

namespace {

using namespace kernels;

// |acc| <= K * 128 * 255 must stay below 2^31: K < 65793.
constexpr long long kMaxReduction = 65792;
// Microkernel tiles per block at least, where GEMM weight codes are held packed.
constexpr int kPackedMinTiles = 8;

[[noreturn]] void fail(const ConvWeights& w, const std::string& what) {
  kernels::fail_conv("conv", w, what);
}

void validate_weights(const ConvWeights& w) {
  const ConvGeometry& g = w.geometry;
  if (g.in_h <= 0 || g.in_w <= 0 || g.in_c <= 0 || g.out_c <= 0)
    fail(w, "in_h, in_w, in_c and out_c must be positive");
  if (g.kernel_h <= 0 || g.kernel_w <= 0 || g.stride_h <= 0 || g.stride_w <= 0 ||
      g.dilation_h <= 0 || g.dilation_w <= 0)
    fail(w, "kernel, stride and dilation must be positive");
  if (g.pad_top < 0 || g.pad_left < 0 || g.pad_bottom < 0 || g.pad_right < 0)
    fail(w, "padding must not be negative");
  if (g.groups <= 0 || g.in_c % g.groups != 0 || g.out_c % g.groups != 0)
    fail(w, "groups must divide in_c and out_c");
  if (g.in_h + g.pad_top + g.pad_bottom < g.dilation_h * (g.kernel_h - 1) + 1 ||
      g.in_w + g.pad_left + g.pad_right < g.dilation_w * (g.kernel_w - 1) + 1)
    fail(w, "the (dilated) kernel is larger than the padded input; check kernel and padding");
  const size_t count = static_cast<size_t>(g.out_c) * g.reduction();
  if (!w.bias.empty() && w.bias.size() != static_cast<size_t>(g.out_c))
    fail(w, "bias has " + std::to_string(w.bias.size()) +
                " values, expected out_c = " + std::to_string(g.out_c) + " (or none)");
  for (float b : w.bias)
    if (!std::isfinite(b)) fail(w, "bias holds a non-finite value");
  if (w.precision == ConvPrecision::kF32) {
    if (w.weights_f32.size() != count)
      fail(w, "weights_f32 has " + std::to_string(w.weights_f32.size()) +
                  " values, expected out_c * in_c / groups * kernel_h * kernel_w = " +
                  std::to_string(count));
    return;
  }
  if (w.w_bits < 1 || w.w_bits > 8) fail(w, "w_bits must be 1..8, got " + std::to_string(w.w_bits));
  if (w.a_bits < 1 || w.a_bits > 8) fail(w, "a_bits must be 1..8, got " + std::to_string(w.a_bits));
  if (g.reduction() > kMaxReduction)
    fail(w, "reduction kernel_h * kernel_w * in_c / groups = " + std::to_string(g.reduction()) +
                " exceeds " + std::to_string(kMaxReduction) +
                ", beyond which the int32 accumulator could overflow; split the conv");
  if (w.weight_codes.size() != count)
    fail(w, "weight_codes has " + std::to_string(w.weight_codes.size()) + " codes, expected " +
                std::to_string(count));
  const int lo = w.w_bits == 1 ? -1 : -(1 << (w.w_bits - 1));
  const int hi = w.w_bits == 1 ? 1 : (1 << (w.w_bits - 1)) - 1;
  for (size_t i = 0; i < count; ++i) {
    const int q = w.weight_codes[i];
    if (q < lo || q > hi || (w.w_bits == 1 && q == 0))
      fail(w, "weight code " + std::to_string(q) + " at index " + std::to_string(i) +
                  " is outside the " + std::to_string(w.w_bits) + "-bit range" +
                  (w.w_bits == 1 ? " (1-bit codes are -1 or +1)" : ""));
  }
  if (w.weight_scale.size() != static_cast<size_t>(g.out_c))
    fail(w, "weight_scale has " + std::to_string(w.weight_scale.size()) +
                " values, expected one per output channel (" + std::to_string(g.out_c) + ")");
  for (float s : w.weight_scale)
    if (!std::isfinite(s) || s < 0) fail(w, "weight_scale holds a negative or non-finite value");
  if (!std::isfinite(w.input_scale) || w.input_scale <= 0)
    fail(w, "input_scale must be positive and finite");
  if (w.input_zero_point < 0 || w.input_zero_point > (1 << w.a_bits) - 1)
    fail(w, "input_zero_point " + std::to_string(w.input_zero_point) +
                " is outside [0, 2^a_bits - 1]");
  if (w.input_storage_bits != 8 && w.input_storage_bits != code_storage_bits(w.a_bits))
    fail(w, "input_storage_bits " + std::to_string(w.input_storage_bits) + " is neither 8 nor " +
                std::to_string(code_storage_bits(w.a_bits)) + " (packed " +
                std::to_string(w.a_bits) + "-bit codes, codes.h)");
}

// ---------------------------------------------------------------------------------------------
// The tiled rows (conv_row.h): GEMM then depthwise, in priority order, the first available row
// that fits wins.

bool tiled_fits(const ConvWeights& w, const ConvRow& row) {
  const ConvGeometry& g = w.geometry;
  const bool depthwise = g.is_depthwise();
  if (depthwise != (std::strcmp(row.family, "depthwise") == 0)) return false;
  if (!depthwise && g.groups != 1) return false;  // general grouped conv: reference only
  if (row.precision != w.precision) return false;
  if (w.precision == ConvPrecision::kInt) {
    if (w.w_bits < row.min_w_bits || w.w_bits > row.max_w_bits) return false;
    if (w.a_bits < row.min_a_bits || w.a_bits > row.max_a_bits) return false;
  }
  return true;
}

bool picks_every_fit(const ConvWeights&, const ConvRow&, const CpuFeatures&) {
  return true;
}

std::unique_ptr<ConvPlan> make_tiled_plan(const ConvWeights& w, const ConvRow& row);

ConvRow tiled(const char* name, const char* family, ConvPrecision precision, int min_w_bits,
              int max_w_bits, int min_a_bits, int max_a_bits, bool (*available)(const CpuFeatures&),
              TiledKernel kernel) {
  ConvRow row{name,
              family,
              precision,
              min_w_bits,
              max_w_bits,
              min_a_bits,
              max_a_bits,
              available,
              tiled_fits,
              picks_every_fit,
              make_tiled_plan,
              "conv",
              "family, precision or bits",
              kernel,
              nullptr};
  return row;
}

#if defined(__aarch64__)
// The table-lookup row of 2-bit weights (conv_qu8_tbl__neon.cpp): its 16-bit sums take up to 1092
// groups of 4 (60 per group; the k_pad tail holds zero codes), a reduction of up to 4368.
constexpr int kTblMaxGroups = 65535 / 60;
// Where it runs (tbl_picks): K >= kTblMinK and out_c >= kTblMinOutC.
constexpr int kTblMinK = 192, kTblMinOutC = 32;

bool tbl_fits(const ConvWeights& w, const ConvRow& row) {
  return tiled_fits(w, row) && (w.geometry.reduction() + 3) / 4 <= kTblMaxGroups;
}

// Cores without sdot (Cortex-A72 and A53 class), where the int8 kernel runs smlal on widened codes.
// Derived from the device models of Cortex-A72 and Cortex-A53 (docs/device_models.md "Selection
// rules derived from the models"): the A72's rule (47 of 62 YOLOv8n convs, predicted 0.61-0.88 of
// int8; the A53 predicts every conv below 0.9); tests/runtime/kernels/test_lowbit.cpp holds the
// predicted table. On sdot cores the int8 kernel runs.
bool tbl_picks(const ConvWeights& w, const ConvRow&, const CpuFeatures& f) {
  return !f.dotprod && w.geometry.reduction() >= kTblMinK && w.geometry.out_c >= kTblMinOutC;
}

ConvRow tbl_row() {
  ConvRow row =
      tiled("conv_qu8_tbl_w2_1x16__neon", "gemm", ConvPrecision::kInt, 2, 2, 1, 8, has_neon,
            {Layout::kTblW2, 1, 16, 64, 1, false, false, false, Offset::kMinusZeroSum,
             conv_qu8_tbl_w2_1x16__neon});
  row.fits = tbl_fits;
  row.picks = tbl_picks;
  row.needs = "groups, precision, bits, or a reduction deeper than 4368";
  return row;
}
#endif

constexpr ConvPrecision kF32 = ConvPrecision::kF32;
constexpr ConvPrecision kInt = ConvPrecision::kInt;

// Integer rows take weight codes of 1..8 bits and activation codes of 1..8 bits as bytes; kernels
// for narrower codes (bit-serial, LUT) are the low-bit rows above them with tighter bit ranges.
const std::vector<ConvRow>& tiled_rows() {
  static const std::vector<ConvRow> rows = {
#if defined(__x86_64__)
    tiled("conv_f32_gemm_8x32__avx512f", "gemm", kF32, 0, 0, 0, 0, has_avx512f,
          {Layout::kF32KxN, 8, 32, 1, 4, true, true, true, Offset::kNone,
           conv_f32_gemm_8x32__avx512f}),
    tiled("conv_f32_gemm_6x16__avx2_fma", "gemm", kF32, 0, 0, 0, 0, has_avx2_fma,
          {Layout::kF32KxN, 6, 16, 1, 4, true, true, true, Offset::kNone,
           conv_f32_gemm_6x16__avx2_fma}),
    tiled("conv_f32_gemm_4x8__sse2", "gemm", kF32, 0, 0, 0, 0, always,
          {Layout::kF32KxN, 4, 8, 1, 4, true, true, true, Offset::kNone, conv_f32_gemm_4x8__sse2}),
    tiled("conv_qu8_gemm_8x32c4__avx512vnni", "gemm", kInt, 1, 8, 1, 8, has_avx512vnni,
          {Layout::kS8C4, 8, 32, 4, 1, true, true, true, Offset::kMinusZeroSum,
           conv_qu8_gemm_8x32c4__avx512vnni}),
    tiled("conv_qu8_gemm_6x16c2__avx2", "gemm", kInt, 1, 8, 1, 8, has_avx2,
          {Layout::kS16C2, 6, 16, 2, 2, false, false, true, Offset::kMinusZeroSum,
           conv_qu8_gemm_6x16c2__avx2}),
#elif defined(__aarch64__)
    tbl_row(),
    tiled(
        "conv_f32_gemm_6x16__neon", "gemm", kF32, 0, 0, 0, 0, has_neon,
        {Layout::kF32KxN, 6, 16, 1, 4, true, true, true, Offset::kNone, conv_f32_gemm_6x16__neon}),
    tiled("conv_qu8_gemm_4x16c4__neondot", "gemm", kInt, 1, 8, 1, 8, has_dotprod,
          {Layout::kS8C4, 4, 16, 4, 1, false, false, true, Offset::kSignedShift,
           conv_qu8_gemm_4x16c4__neondot}),
    tiled("conv_qu8_gemm_8x8__neon", "gemm", kInt, 1, 8, 1, 8, has_neon,
          {Layout::kS16KxN, 8, 8, 1, 2, false, false, true, Offset::kMinusZeroSum,
           conv_qu8_gemm_8x8__neon}),
#endif
#if defined(__x86_64__)
    tiled("conv_f32_dwconv_16c__avx512f", "depthwise", kF32, 0, 0, 0, 0, has_avx512f,
          {Layout::kDwF32, 1, 16, 1, 0, false, false, false, Offset::kNone,
           conv_f32_dwconv_16c__avx512f}),
    tiled(
        "conv_f32_dwconv_8c__avx2", "depthwise", kF32, 0, 0, 0, 0, has_avx2,
        {Layout::kDwF32, 1, 8, 1, 0, false, false, false, Offset::kNone, conv_f32_dwconv_8c__avx2}),
    tiled("conv_qu8_dwconv_16c__avx512f", "depthwise", kInt, 1, 8, 1, 8, has_avx512f,
          {Layout::kDwCodes, 1, 16, 1, 0, false, false, false, Offset::kNone,
           conv_qu8_dwconv_16c__avx512f}),
    tiled("conv_qu8_dwconv_8c__avx2", "depthwise", kInt, 1, 8, 1, 8, has_avx2,
          {Layout::kDwCodes, 1, 8, 1, 0, false, false, false, Offset::kNone,
           conv_qu8_dwconv_8c__avx2}),
#endif
    tiled("conv_f32_dwconv_4c__baseline", "depthwise", kF32, 0, 0, 0, 0, always,
          {Layout::kDwF32, 1, 4, 1, 0, false, false, false, Offset::kNone,
           conv_f32_dwconv_4c__baseline}),
    tiled("conv_qu8_dwconv_4c__baseline", "depthwise", kInt, 1, 8, 1, 8, always,
          {Layout::kDwCodes, 1, 4, 1, 0, false, false, false, Offset::kNone,
           conv_qu8_dwconv_4c__baseline}),
  };
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Packing.

// Weight of output channel o at reduction index kk = (kh * kernel_w + kw) * in_c + ic (the
// im2col order), read from OIHW.
template <class T>
T oihw_at(const std::vector<T>& w, const ConvGeometry& g, int o, int kk) {
  const int cin = g.in_c / g.groups;
  const int ic = kk % cin, tap = kk / cin;
  const int kh = tap / g.kernel_w, kw = tap % g.kernel_w;
  return w[((static_cast<size_t>(o) * cin + ic) * g.kernel_h + kh) * g.kernel_w + kw];
}

struct Packed {
  std::vector<unsigned char> bytes;
  std::vector<float> scale, bias;
  std::vector<int32_t> offset;
};

// The codes of the GEMM panel of channels [n0, n0 + width) in the element order of `layout`.
template <class CodeAt>
std::vector<int8_t> panel_codes(Layout layout, int n0, int width, int k_pad, const CodeAt& value) {
  std::vector<int8_t> codes;
  codes.reserve(static_cast<size_t>(k_pad) * width);
  const int group = layout == Layout::kS8C4 ? 4 : layout == Layout::kS16C2 ? 2 : 1;
  for (int kg = 0; kg < k_pad; kg += group)
    for (int j = 0; j < width; ++j)
      for (int t = 0; t < group; ++t) codes.push_back(static_cast<int8_t>(value(n0 + j, kg + t)));
  return codes;
}

// Appends a panel's codes: packed at storage_bits (1, 2, 4), else as the layout's int8 / int16.
void append_panel(std::vector<unsigned char>& bytes, const std::vector<int8_t>& codes,
                  Layout layout, int storage_bits) {
  const size_t at = bytes.size();
  if (storage_bits > 0) {
    bytes.resize(at + wpack_bytes(codes.size(), storage_bits));
    wpack_codes(codes.data(), codes.size(), storage_bits, bytes.data() + at);
  } else if (layout == Layout::kS8C4) {
    bytes.resize(at + codes.size());
    std::memcpy(bytes.data() + at, codes.data(), codes.size());
  } else {
    bytes.resize(at + codes.size() * 2);
    int16_t* dst = reinterpret_cast<int16_t*>(bytes.data() + at);
    for (size_t i = 0; i < codes.size(); ++i) dst[i] = codes[i];
  }
}

// storage_bits: how the integer codes are held (ConvJob::w_storage_bits).
Packed pack(const TiledKernel& row, const ConvWeights& w, int k, int k_pad, int n_pad,
            int storage_bits) {
  const ConvGeometry& g = w.geometry;
  const bool is_int = w.precision == ConvPrecision::kInt;
  Packed p;
  p.scale.assign(n_pad, 0.0f);
  p.bias.assign(n_pad, 0.0f);
  p.offset.assign(n_pad, 0);
  for (int o = 0; o < g.out_c; ++o) {
    if (!w.bias.empty()) p.bias[o] = w.bias[o];
    if (is_int) p.scale[o] = w.weight_scale[o] * w.input_scale;
  }
  auto value = [&](int o, int kk) -> int {  // int weight code, 0 in the padding
    if (o >= g.out_c || kk >= k) return 0;
    return oihw_at(w.weight_codes, g, o, kk);
  };
  if (is_int && row.offset != Offset::kNone) {
    const int z = w.input_zero_point;
    for (int o = 0; o < g.out_c; ++o) {
      int32_t sum = 0;
      for (int kk = 0; kk < k; ++kk) sum += value(o, kk);
      p.offset[o] = row.offset == Offset::kMinusZeroSum ? -z * sum : (128 - z) * sum;
    }
  }
  // GEMM panels: full NR-wide panels, the last one NR/2 wide when the plan allows it.
  const int nr = row.nr;
  std::vector<std::pair<int, int>> panels;  // (first channel, width)
  for (int n0 = 0; n0 < n_pad;) {
    const int width = (row.half_ok && n_pad - n0 < nr) ? nr / 2 : nr;
    panels.push_back({n0, width});
    n0 += width;
  }
  switch (row.layout) {
    case Layout::kF32KxN: {
      p.bytes.assign(static_cast<size_t>(n_pad) * k_pad * 4, 0);
      float* dst = reinterpret_cast<float*>(p.bytes.data());
      for (auto [n0, width] : panels)
        for (int kk = 0; kk < k_pad; ++kk)
          for (int j = 0; j < width; ++j) {
            const int o = n0 + j;
            *dst++ = (o < g.out_c && kk < k) ? oihw_at(w.weights_f32, g, o, kk) : 0.0f;
          }
      break;
    }
    case Layout::kS8C4:
    case Layout::kS16C2:
    case Layout::kS16KxN:
      for (auto [n0, width] : panels)
        append_panel(p.bytes, panel_codes(row.layout, n0, width, k_pad, value), row.layout,
                     storage_bits);
      break;
    case Layout::kTblW2:
      p.bytes.assign(static_cast<size_t>(n_pad) * k_pad / 4, 0);  // n_pad / 16 panels
      for (int n0 = 0; n0 < n_pad; n0 += 16)
        for (int kg = 0; kg < k_pad; kg += 4)
          for (int j = 0; j < 16; ++j) {
            uint8_t byte = 0;
            for (int t = 0; t < 4; ++t) {
              const int u = value(n0 + j, kg + t) & 3;  // two's complement: q = b0 - 2 * b1
              byte |= static_cast<uint8_t>((u & 1) << t | (u >> 1) << (4 + t));
            }
            p.bytes[(static_cast<size_t>(n0) * k_pad / 4 + static_cast<size_t>(kg) / 4 * 16) + j] =
                byte;
          }
      break;
    case Layout::kDwF32: {
      const int taps = g.kernel_h * g.kernel_w;
      p.bytes.assign(static_cast<size_t>(taps) * n_pad * 4, 0);
      float* dst = reinterpret_cast<float*>(p.bytes.data());
      for (int t = 0; t < taps; ++t)
        for (int c = 0; c < g.out_c; ++c)
          dst[static_cast<size_t>(t) * n_pad + c] =
              w.weights_f32[static_cast<size_t>(c) * taps + t];
      break;
    }
    case Layout::kDwCodes: {
      const int taps = g.kernel_h * g.kernel_w;
      std::vector<int8_t> codes(static_cast<size_t>(taps) * n_pad, 0);
      for (int t = 0; t < taps; ++t)
        for (int c = 0; c < g.out_c; ++c)
          codes[static_cast<size_t>(t) * n_pad + c] =
              w.weight_codes[static_cast<size_t>(c) * taps + t];
      p.bytes.resize(wpack_bytes(codes.size(), storage_bits));
      wpack_codes(codes.data(), codes.size(), storage_bits, p.bytes.data());
      break;
    }
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Plans.

void check_run_args(const ConvWeights& w, const ConvInputView& in, const ConvEpilogue& ep) {
  const ConvGeometry& g = w.geometry;
  const bool is_int = w.precision == ConvPrecision::kInt;
  if (is_int ? in.codes == nullptr : in.f32 == nullptr)
    fail(w, is_int ? "the input view has no codes (int precision reads ConvInputView::codes)"
                   : "the input view has no floats (fp32 precision reads ConvInputView::f32)");
  if (in.row_stride < g.in_c)
    fail(w, "input row_stride " + std::to_string(in.row_stride) + " is smaller than in_c");
  if (is_int) conv_check_input_storage(w, in);
  conv_check_epilogue(w, ep);
}

// Input codes of pixels [first, first + count) as bytes, rows of in_c (the row stride dropped).
void unpack_pixels(const ConvInputView& in, int in_c, int64_t first, int64_t count, uint8_t* out) {
  if (in.row_stride == in_c) {
    unpack_codes(in.codes, in.code_storage_bits, first * in_c, count * in_c, out);
    return;
  }
  for (int64_t p = 0; p < count; ++p)
    unpack_codes(in.codes, in.code_storage_bits, (first + p) * in.row_stride, in_c, out + p * in_c);
}

// n pixels of c byte codes, `stride` apart, as pixels of pc codes (the extra ones z).
void pad_pixels(const uint8_t* src, int stride, int c, int pc, uint8_t z, int64_t n, uint8_t* dst) {
  int64_t p = 0;
  if (c == 3 && pc == 4 && stride == 3) {
    // RGB codes: 4 pixels (12 bytes) per step as two loads and two 8-byte stores.
    const uint64_t zz = uint64_t{z} << 24 | uint64_t{z} << 56;
    for (; p + 4 <= n; p += 4, src += 12, dst += 16) {
      uint64_t a;
      uint32_t b;
      std::memcpy(&a, src, 8);
      std::memcpy(&b, src + 8, 4);
      const uint64_t lo = (a & 0xFFFFFF) | (a >> 24 & 0xFFFFFF) << 32;
      const uint64_t hi = (a >> 48) | (uint64_t{b} & 0xFF) << 16 | (uint64_t{b} >> 8) << 32;
      const uint64_t v0 = lo | zz, v1 = hi | zz;
      std::memcpy(dst, &v0, 8);
      std::memcpy(dst + 8, &v1, 8);
    }
  }
  for (; p < n; ++p, src += stride, dst += pc)
    for (int k = 0; k < pc; ++k) dst[k] = k < c ? src[k] : z;
}

class KernelPlan final : public ConvPlan {
 public:
  KernelPlan(const ConvWeights& w, const ConvRow& entry)
      : ConvPlan(w), entry_(entry), row_(entry.tiled) {
    const TiledKernel& row = row_;
    const bool depthwise = std::strcmp(entry.family, "depthwise") == 0;
    // Integer convs over 1..3 channels (an image stem) read their input padded to the k-group with
    // zero-weight channels, a band of rows per block in the thread scratch: per-tap pointers then
    // replace an im2col of 3-byte runs (0.conv of YOLOv8n: the padding costs ~1 byte write per
    // code, the im2col ~60% of the layer).
    const ConvWeights* packed_from = &w;
    ConvWeights padded;
    if (w.precision == ConvPrecision::kInt && !depthwise && row.indirect_ok &&
        w.geometry.in_c < row.k_group && w.geometry.in_c % row.k_group != 0) {
      pad_c_ = row.k_group;
      padded = w;
      const ConvGeometry& g0 = w.geometry;
      padded.geometry.in_c = pad_c_;
      padded.weight_codes.assign(static_cast<size_t>(g0.out_c) * pad_c_ * g0.kernel_h * g0.kernel_w,
                                 0);
      const size_t hw = static_cast<size_t>(g0.kernel_h) * g0.kernel_w;
      for (int o = 0; o < g0.out_c; ++o)
        for (int c = 0; c < g0.in_c; ++c)
          std::copy_n(w.weight_codes.begin() + (static_cast<size_t>(o) * g0.in_c + c) * hw, hw,
                      padded.weight_codes.begin() + (static_cast<size_t>(o) * pad_c_ + c) * hw);
      packed_from = &padded;
    }
    const ConvGeometry& g = packed_from->geometry;
    job_ = conv_base_job(*packed_from);
    job_.k = depthwise ? g.kernel_h * g.kernel_w : g.reduction();
    job_.k_pad = round_up(job_.k, row.k_group);
    job_.n_pad = round_up(g.out_c, row.half_ok ? row.nr / 2 : row.nr);
    job_.half_nr = row.half_ok ? 1 : 0;
    job_.direct = row.direct_ok && g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 &&
                  g.stride_w == 1 && g.pad_top == 0 && g.pad_left == 0 && g.pad_bottom == 0 &&
                  g.pad_right == 0 && g.in_c % row.k_group == 0;
    // Per-tap pointers instead of an im2col copy; k_pad is then taps * in_c exactly.
    job_.indirect = !job_.direct && !depthwise && row.indirect_ok && g.in_c % row.k_group == 0;
    // Pixels per block: A rows within ~32 KiB, at least ~8 blocks when the layer allows (so that
    // threads share the work), a multiple of MR.
    const int pixels = job_.out_h * job_.out_w;
    const size_t a_row =
        depthwise || job_.indirect ? 64 : static_cast<size_t>(job_.k_pad) * row.a_bytes;
    int mc =
        static_cast<int>(std::min<size_t>(kMaxBlockPixels, std::max<size_t>(1, 32768 / a_row)));
    mc = std::min(mc, round_up((pixels + 7) / 8, row.mr));
    mc = std::max(row.mr, mc / row.mr * row.mr);
    set_weight_storage(row, w, depthwise);
    // Packed GEMM codes are unpacked once per panel per block: kPackedMinTiles tiles share each
    // unpack (docs/kernels.md, "Packed weights": fewer, larger blocks on small layers).
    if (job_.w_storage_bits && !depthwise)
      mc = std::max(mc, std::min(kPackedMinTiles * row.mr, round_up(pixels, row.mr)));
    job_.mc = mc;
    packed_ = pack(row, *packed_from, job_.k, job_.k_pad, job_.n_pad, job_.w_storage_bits);
    job_.packed = packed_.bytes.data();
    job_.scale = packed_.scale.data();
    job_.bias = packed_.bias.data();
    job_.acc_offset = packed_.offset.data();
    kernel_scratch_ = depthwise ? conv_scratch_acc_bytes(job_) + job_.weight_scratch_bytes + 64
                                : conv_scratch_bytes(job_, row.a_bytes);
    release_weight_values();  // packed_ holds them now
    if (pad_c_ || (w.precision == ConvPrecision::kInt && w.input_storage_bits < 8))
      band_bytes_ = max_band_rows() * g.in_w * g.in_c + 64;  // + the im2col over-read
    if (job_.indirect) {
      pad_row_.assign((g.in_c + 64) * static_cast<size_t>(row.a_bytes),
                      w.precision == ConvPrecision::kInt  // byte codes read in place: pad = z_a
                          ? static_cast<unsigned char>(job_.zero_point)
                          : 0);
    }
  }

  void run(const ConvInputView& input, const ConvEpilogue& ep, int threads) const override {
    check_run_args(weights_, input, ep);
    ConvInputView in = input;
    if (pad_c_ && in.code_storage_bits < 8) in = unpacked_input(input);
    ConvJob j = job_;
    conv_fill_run_fields(j, in, ep);
    const bool band =
        pad_c_ || (entry_.precision == ConvPrecision::kInt && in.code_storage_bits < 8);
    if (band) j.in_stride = job_.in_c;  // the kernels read the band: rows of in_c (padded) codes
    std::vector<size_t> tap_offsets;    // indirect: bytes from a pixel to each of its taps
    if (j.indirect) tap_offsets = tap_byte_offsets(j.in_stride);
    const int pixels = j.out_h * j.out_w;
    const int blocks = (pixels + j.mc - 1) / j.mc;
    const int t = std::max(1, std::min(threads, blocks));
    const ConvBlockFn fn = row_.run;
    const size_t kernel_bytes = kernel_scratch_, total_bytes = kernel_bytes + band_bytes_;
#pragma omp parallel for num_threads(t) schedule(static)
    for (int b = 0; b < blocks; ++b) {
      const int p0 = b * j.mc, p1 = std::min(pixels, p0 + j.mc);
      unsigned char* scratch = thread_scratch(total_bytes);
      ConvJob bj = j;
      if (band)
        bj.in_codes = pad_c_ ? pad_band(in, p0, p1, scratch + kernel_bytes)
                             : unpack_band(in, p0, p1, scratch + kernel_bytes);
      if (bj.indirect) {
        const void** ptrs = reinterpret_cast<const void**>(scratch);
        build_indirection(bj, tap_offsets.data(), p0, p1, ptrs);
        bj.indirection = ptrs;
      }
      fn(bj, p0, p1, scratch);
    }
  }
  const char* kernel_name() const override {
    return entry_.name.c_str();
  }
  size_t packed_weight_bytes() const override {
    return packed_.bytes.size() +
           4 * (packed_.scale.size() + packed_.bias.size() + packed_.offset.size());
  }
  size_t scratch_bytes() const override {
    return pad_row_.size() + unpacked_.size();
  }
  size_t thread_scratch_bytes() const override {
    return kernel_scratch_ + band_bytes_;
  }

 private:
  // How the integer codes are held (ConvJob::w_storage_bits) and the scratch their unpack needs.
  // 1-bit codes cannot hold the zero weights of the channels pad_c_ adds (those read z_a, not 0):
  // such a conv stores 2-bit codes.
  void set_weight_storage(const TiledKernel& row, const ConvWeights& w, bool depthwise) {
    if (w.precision != ConvPrecision::kInt) return;
    if (row.layout == Layout::kTblW2) {  // held at 2 bits already; the scratch holds the tables
      job_.weight_scratch_bytes = round_up_64(static_cast<size_t>(job_.k_pad) / 4 * 32);
      return;
    }
    const int s = wpack_storage_bits(w.w_bits);
    if (depthwise) {
      job_.w_storage_bits = s;
      const size_t codes = static_cast<size_t>(job_.kernel_h) * job_.kernel_w * job_.n_pad;
      job_.weight_scratch_bytes = round_up_64(wpack_unpacked_codes(codes, s) * 4);
      return;
    }
    if (s == 8) return;
    job_.w_storage_bits = s == 1 && pad_c_ > 0 ? 2 : s;
    const size_t codes = static_cast<size_t>(job_.k_pad) * row.nr;
    const size_t elem = row.layout == Layout::kS8C4 ? 1 : 2;
    job_.weight_scratch_bytes =
        round_up_64(wpack_unpacked_codes(codes, job_.w_storage_bits) * elem);
  }
  static size_t round_up_64(size_t bytes) {
    return (bytes + 63) / 64 * 64;
  }

  // Input rows a block of mc output pixels can need at most: its output rows (a partial one at
  // each end) and the kernel's reach below the last of them.
  int max_band_rows() const {
    const int out_rows = std::min(job_.out_h, (job_.mc + job_.out_w - 1) / job_.out_w + 1);
    return std::min(job_.in_h,
                    (out_rows - 1) * job_.stride_h + (job_.kernel_h - 1) * job_.dilation_h + 1);
  }

  // Unpacks the input rows that output pixels [p0, p1) read into `band` (rows of in_c byte codes)
  // and returns the address at which row 0 of the whole input would start, so that the kernels'
  // addressing (row * in_w * in_c) lands in the band for every row they read.
  const uint8_t* unpack_band(const ConvInputView& in, int p0, int p1, unsigned char* band) const {
    const ConvJob& j = job_;
    if (j.direct) {  // 1x1, stride 1, no padding: exactly the block's pixels
      unpack_pixels(in, j.in_c, p0, p1 - p0, band);
      return reinterpret_cast<const uint8_t*>(reinterpret_cast<uintptr_t>(band) -
                                              static_cast<uintptr_t>(p0) * j.in_c);
    }
    const auto [lo, hi] = band_rows(p0, p1);
    if (hi >= lo)
      unpack_pixels(in, j.in_c, int64_t{lo} * j.in_w, int64_t{hi - lo + 1} * j.in_w, band);
    return band_origin(band, lo);
  }

  // Input rows [first, last] that output pixels [p0, p1) read (last < first: none).
  std::pair<int, int> band_rows(int p0, int p1) const {
    const ConvJob& j = job_;
    const int oh0 = p0 / j.out_w, oh1 = (p1 - 1) / j.out_w;
    return {std::max(0, oh0 * j.stride_h - j.pad_top),
            std::min(j.in_h - 1, oh1 * j.stride_h - j.pad_top + (j.kernel_h - 1) * j.dilation_h)};
  }
  // The address at which row 0 of the whole input would start for a band holding row `first` on.
  const uint8_t* band_origin(unsigned char* band, int first) const {
    const uintptr_t rows = static_cast<uintptr_t>(first) * job_.in_w * job_.in_c;
    return reinterpret_cast<const uint8_t*>(reinterpret_cast<uintptr_t>(band) - rows);
  }

  // The input rows that output pixels [p0, p1) read, padded to pad_c_ channels (the extra ones
  // z_a; their weights are 0), into `band`; returns band_origin. `in` holds byte codes.
  const uint8_t* pad_band(const ConvInputView& in, int p0, int p1, unsigned char* band) const {
    const auto [lo, hi] = band_rows(p0, p1);
    if (hi >= lo) {
      const int64_t first = int64_t{lo} * job_.in_w, n = int64_t{hi - lo + 1} * job_.in_w;
      pad_pixels(in.codes + first * in.row_stride, in.row_stride, weights_.geometry.in_c, pad_c_,
                 static_cast<uint8_t>(job_.zero_point), n, band);
    }
    return band_origin(band, lo);
  }

  // Bytes from an input pixel to the pixel of each kernel tap (kh-major), for pixels `stride`
  // elements apart.
  std::vector<size_t> tap_byte_offsets(int stride) const {
    const ConvJob& j = job_;
    const size_t pixel = static_cast<size_t>(stride) * row_.a_bytes;
    std::vector<size_t> off;
    for (int kh = 0; kh < j.kernel_h; ++kh)
      for (int kw = 0; kw < j.kernel_w; ++kw)
        off.push_back((static_cast<size_t>(kh) * j.dilation_h * j.in_w + kw * j.dilation_w) *
                      pixel);
    return off;
  }

  // The per-tap input pointers of output pixels [p0, p1) as [tile][tap][MR] (rows past p1 repeat
  // the last pixel; padding taps point at a row of padding values). Pixels whose whole receptive
  // field lies inside the input take their pixel's address plus the tap offsets.
  void build_indirection(const ConvJob& j, const size_t* tap_off, int p0, int p1,
                         const void** out) const {
    const int mr = row_.mr, taps = j.kernel_h * j.kernel_w, m = p1 - p0;
    const size_t pixel = static_cast<size_t>(j.in_stride) * row_.a_bytes;
    const unsigned char* base = entry_.precision == ConvPrecision::kInt
                                    ? j.in_codes
                                    : reinterpret_cast<const unsigned char*>(j.in_f32);
    const int reach_h = (j.kernel_h - 1) * j.dilation_h, reach_w = (j.kernel_w - 1) * j.dilation_w;
    int oh = p0 / j.out_w, ow = p0 % j.out_w;
    for (int i = 0; i < m; ++i) {
      const void** tp = out + static_cast<size_t>(i / mr) * taps * mr + i % mr;
      const int ih0 = oh * j.stride_h - j.pad_top, iw0 = ow * j.stride_w - j.pad_left;
      if (ih0 >= 0 && ih0 + reach_h < j.in_h && iw0 >= 0 && iw0 + reach_w < j.in_w) {
        const unsigned char* px = base + (static_cast<size_t>(ih0) * j.in_w + iw0) * pixel;
        for (int t = 0; t < taps; ++t) tp[t * mr] = px + tap_off[t];
      } else {
        for (int kh = 0, t = 0; kh < j.kernel_h; ++kh) {
          const int ih = ih0 + kh * j.dilation_h;
          for (int kw = 0; kw < j.kernel_w; ++kw, ++t) {
            const int iw = iw0 + kw * j.dilation_w;
            const bool inside = ih >= 0 && ih < j.in_h && iw >= 0 && iw < j.in_w;
            tp[t * mr] = inside ? base + (static_cast<size_t>(ih) * j.in_w + iw) * pixel
                                : static_cast<const void*>(pad_row_.data());
          }
        }
      }
      if (++ow == j.out_w) ow = 0, ++oh;
    }
    const void** last = out + static_cast<size_t>((m - 1) / mr) * taps * mr + (m - 1) % mr;
    for (int i = m; i % mr; ++i) {
      const void** tp = out + static_cast<size_t>(i / mr) * taps * mr + i % mr;
      for (int t = 0; t < taps; ++t) tp[t * mr] = last[t * mr];
    }
  }

  // 1..3 channels of packed codes (rare: a stem reads 8-bit images) as a whole byte-code copy.
  ConvInputView unpacked_input(const ConvInputView& packed) const {
    const int c = weights_.geometry.in_c, pixels = job_.in_h * job_.in_w;
    unpacked_.resize(static_cast<size_t>(pixels) * c);
    unpack_pixels(packed, c, 0, pixels, unpacked_.data());
    ConvInputView in = packed;
    in.codes = unpacked_.data();
    in.row_stride = c;
    in.code_storage_bits = 8;
    return in;
  }

  const ConvRow& entry_;
  const TiledKernel& row_;  // entry_.tiled
  int pad_c_ = 0;           // > 0: the input is padded to this many channels (see the constructor)
  mutable std::vector<uint8_t> unpacked_;
  ConvJob job_;
  Packed packed_;
  size_t kernel_scratch_ = 0;  // per thread: the kernel's block scratch (conv_job.h)
  size_t band_bytes_ = 0;      // per thread, after it: the unpacked input band (packed inputs)
  std::vector<unsigned char> pad_row_;  // indirect: the padding pixel (z_a codes or zeros)
};

// Direct loops over OIHW weights, any groups; exact int32 sums; the shared epilogue.
class ReferencePlan final : public ConvPlan {
 public:
  explicit ReferencePlan(const ConvWeights& w) : ConvPlan(w) {
    const ConvGeometry& g = w.geometry;
    job_ = conv_base_job(w);
    job_.n_pad = round_up(g.out_c, 4);
    job_.mc = 1;
    const bool is_int = w.precision == ConvPrecision::kInt;
    scale_.assign(job_.n_pad, 0.0f);
    bias_.assign(job_.n_pad, 0.0f);
    offset_.assign(job_.n_pad, 0);
    for (int o = 0; o < g.out_c; ++o) {
      if (!w.bias.empty()) bias_[o] = w.bias[o];
      if (is_int) scale_[o] = w.weight_scale[o] * w.input_scale;
    }
    job_.scale = scale_.data();
    job_.bias = bias_.data();
    job_.acc_offset = offset_.data();
  }

  void run(const ConvInputView& input, const ConvEpilogue& ep, int /*threads*/) const override {
    check_run_args(weights_, input, ep);
    ConvInputView in = input;
    std::vector<uint8_t> unpacked;  // the reference reads byte codes
    if (in.codes && in.code_storage_bits < 8) {
      const int pixels = weights_.geometry.in_h * weights_.geometry.in_w;
      unpacked.resize(static_cast<size_t>(pixels) * weights_.geometry.in_c);
      unpack_pixels(in, weights_.geometry.in_c, 0, pixels, unpacked.data());
      in.codes = unpacked.data();
      in.row_stride = weights_.geometry.in_c;
      in.code_storage_bits = 8;
    }
    ConvJob j = job_;
    conv_fill_run_fields(j, in, ep);
    const ConvGeometry& g = weights_.geometry;
    const bool is_int = weights_.precision == ConvPrecision::kInt;
    const int cin = g.in_c / g.groups, cout = g.out_c / g.groups;
    const int z = j.zero_point;
    std::vector<int32_t> iacc(j.n_pad);
    std::vector<float> facc(j.n_pad);
    for (int oh = 0; oh < j.out_h; ++oh)
      for (int ow = 0; ow < j.out_w; ++ow) {
        std::fill(iacc.begin(), iacc.end(), 0);
        std::fill(facc.begin(), facc.end(), 0.0f);
        for (int o = 0; o < g.out_c; ++o) {
          const int grp = o / cout;
          for (int kh = 0; kh < g.kernel_h; ++kh)
            for (int kw = 0; kw < g.kernel_w; ++kw) {
              const int ih = oh * g.stride_h - g.pad_top + kh * g.dilation_h;
              const int iw = ow * g.stride_w - g.pad_left + kw * g.dilation_w;
              if (ih < 0 || ih >= g.in_h || iw < 0 || iw >= g.in_w) continue;  // zero / z_a
              const size_t pix = (static_cast<size_t>(ih) * g.in_w + iw) * in.row_stride;
              for (int ic = 0; ic < cin; ++ic) {
                const size_t wi =
                    ((static_cast<size_t>(o) * cin + ic) * g.kernel_h + kh) * g.kernel_w + kw;
                const size_t ai = pix + grp * cin + ic;
                if (is_int) {
                  iacc[o] += weights_.weight_codes[wi] * (static_cast<int>(in.codes[ai]) - z);
                } else {
                  facc[o] += weights_.weights_f32[wi] * in.f32[ai];
                }
              }
            }
        }
        const int p = oh * j.out_w + ow;
        if (is_int) {
          conv_epilogue_baseline(j, p, p + 1, iacc.data(), true);
        } else {
          conv_epilogue_baseline(j, p, p + 1, facc.data(), false);
        }
      }
  }
  const char* kernel_name() const override {
    return weights_.precision == ConvPrecision::kInt ? "conv_qu8_reference" : "conv_f32_reference";
  }
  // The reference reads the OIHW weights as given: one byte per code, or floats.
  size_t packed_weight_bytes() const override {
    return weights_.weight_codes.size() + 4 * weights_.weights_f32.size() +
           4 * (scale_.size() + bias_.size() + offset_.size());
  }

 private:
  ConvJob job_;
  std::vector<float> scale_, bias_;
  std::vector<int32_t> offset_;
};

std::unique_ptr<ConvPlan> make_tiled_plan(const ConvWeights& w, const ConvRow& row) {
  return std::make_unique<KernelPlan>(w, row);
}

}  // namespace

namespace kernels {

const ConvRow* pick_conv_row(const std::vector<ConvRow>& rows, const ConvWeights& w,
                             const CpuFeatures& features) {
  for (const ConvRow& r : rows)
    if (r.picks && r.fits(w, r) && r.available(features) && r.picks(w, r, features)) return &r;
  return nullptr;
}

std::unique_ptr<ConvPlan> make_named_row_plan(const std::vector<ConvRow>& rows,
                                              const ConvWeights& w, const std::string& kernel) {
  const CpuFeatures& cpu = cpu_features();
  const ConvRow* found = nullptr;
  for (const ConvRow& r : rows)  // rows of one name may repeat: the first available one
    if (r.name == kernel && (!found || (!found->available(cpu) && r.available(cpu)))) found = &r;
  if (!found) return nullptr;
  validate_weights(w);
  if (!found->available(cpu))
    throw Error("conv kernel '" + kernel +
                "' needs an ISA this CPU lacks (or MIXNAS_CPU_DISABLE masks)");
  if (!found->fits(w, *found))
    fail_conv(found->what_conv, w,
              "kernel '" + kernel + "' does not support this conv (" + found->needs + ")");
  return found->make(w, *found);
}

}  // namespace kernels

ConvJob conv_base_job(const ConvWeights& w) {
  const ConvGeometry& g = w.geometry;
  ConvJob j{};
  j.in_h = g.in_h, j.in_w = g.in_w, j.in_c = g.in_c;
  j.out_h = g.out_h(), j.out_w = g.out_w(), j.out_c = g.out_c;
  j.kernel_h = g.kernel_h, j.kernel_w = g.kernel_w, j.stride_h = g.stride_h,
  j.stride_w = g.stride_w;
  j.pad_top = g.pad_top, j.pad_left = g.pad_left;
  j.dilation_h = g.dilation_h, j.dilation_w = g.dilation_w;
  j.zero_point = w.precision == ConvPrecision::kInt ? w.input_zero_point : 0;
  return j;
}

void conv_fill_run_fields(ConvJob& j, const ConvInputView& in, const ConvEpilogue& ep) {
  j.in_f32 = in.f32;
  j.in_codes = in.codes;
  j.in_stride = in.row_stride;
  j.act = ep.act;
  j.residual = ep.residual;
  j.residual_stride = ep.residual_row_stride;
  j.sinks = ep.sinks.data();
  j.num_sinks = static_cast<int>(ep.sinks.size());
}

void conv_check_epilogue(const ConvWeights& w, const ConvEpilogue& ep) {
  const ConvGeometry& g = w.geometry;
  if (ep.sinks.empty()) fail(w, "the epilogue has no sinks; the output would go nowhere");
  if (ep.residual && ep.residual_row_stride < g.out_c)
    fail(w, "residual_row_stride " + std::to_string(ep.residual_row_stride) +
                " is smaller than out_c");
  for (size_t s = 0; s < ep.sinks.size(); ++s) {
    const ConvSink& k = ep.sinks[s];
    const std::string at = "sink " + std::to_string(s) + ": ";
    if (!k.data) fail(w, at + "data is null");
    const int words = (k.channel_offset + g.out_c + 63) / 64;  // kBitPlanes: words per plane
    if (k.kind == ConvSink::kBitPlanes && (k.channel_offset < 0 || k.plane_stride < words ||
                                           k.row_stride < (k.bits - 1) * k.plane_stride + words))
      fail(w, at + "bit planes need plane_stride >= " + std::to_string(words) +
                  " and row_stride >= (bits - 1) * plane_stride + that (uint64 words)");
    const bool some = k.kind == ConvSink::kF32 && k.channels != 0;
    if (some && (k.first_channel < 0 || k.channels < 0 || k.first_channel + k.channels > g.out_c))
      fail(w, at + "float channels " + std::to_string(k.first_channel) + " + " +
                  std::to_string(k.channels) + " exceed out_c " + std::to_string(g.out_c));
    if (k.kind != ConvSink::kF32 && (k.first_channel != 0 || k.channels != 0))
      fail(w, at + "only float sinks take a channel range (first_channel, channels)");
    const bool detect = k.kind == ConvSink::kDetectBoxes || k.kind == ConvSink::kDetectScores ||
                        k.kind == ConvSink::kDetectBest;
    if (k.kind == ConvSink::kDetectBoxes &&
        (k.reg_max < 1 || k.reg_max > 64 || g.out_c != 4 * k.reg_max || k.grid_width != g.out_w() ||
         !(k.anchor_stride > 0)))
      fail(w, at + "a Detect box sink needs out_c = 4 * reg_max (reg_max 1..64), grid_width = "
                   "out_w and a positive stride");
    const int written = some                               ? k.channels
                        : k.kind == ConvSink::kDetectBoxes ? 4
                        : k.kind == ConvSink::kDetectBest  ? 2
                                                           : g.out_c;
    if (k.kind != ConvSink::kBitPlanes &&
        (k.channel_offset < 0 || k.row_stride < k.channel_offset + written))
      fail(w, at + "row_stride " + std::to_string(k.row_stride) + " < channel_offset " +
                  std::to_string(k.channel_offset) + " + the channels written");
    if (k.kind == ConvSink::kCodes && k.storage_bits != 8 &&
        (k.storage_bits != code_storage_bits(k.bits) ||
         int64_t{k.row_stride} * k.storage_bits % 8 != 0 ||
         int64_t{k.channel_offset} * k.storage_bits % 8 != 0))
      fail(w, at + "packed codes need storage_bits = code_storage_bits(bits) (or 8) and rows and "
                   "channel_offset that start on bytes");
    if (k.kind == ConvSink::kCodes || k.kind == ConvSink::kBitPlanes) {
      if (k.bits < 1 || k.bits > 8) fail(w, at + "bits must be 1..8");
      if (k.zero_point < 0 || k.zero_point > (1 << k.bits) - 1)
        fail(w, at + "zero_point outside [0, 2^bits - 1]");
      if (!std::isfinite(k.scale) || k.scale <= 0)
        fail(w, at + "scale must be positive and finite");
    } else if (k.kind != ConvSink::kF32 && !detect) {
      fail(w, at + "unknown sink kind");
    }
  }
}

void conv_check_input_storage(const ConvWeights& w, const ConvInputView& in) {
  if (in.code_storage_bits != w.input_storage_bits)
    fail(w, "the input codes are held at " + std::to_string(in.code_storage_bits) +
                " bits each, the plan was made for " + std::to_string(w.input_storage_bits) +
                " (ConvWeights::input_storage_bits)");
  if (in.code_storage_bits != 8 && int64_t{in.row_stride} * in.code_storage_bits % 8 != 0)
    fail(w, "packed input rows must start on bytes (row_stride * storage bits a multiple of 8)");
}

std::unique_ptr<ConvPlan> make_conv_plan(const ConvWeights& w, const CpuFeatures& features) {
  validate_weights(w);
  // Low-bit rows (conv_lowbit.h) first, where they measured faster than int8 for this layer.
  for (const std::vector<ConvRow>* rows : {&conv_lowbit_rows(), &tiled_rows()})
    if (const ConvRow* row = pick_conv_row(*rows, w, features)) return row->make(w, *row);
  return std::make_unique<ReferencePlan>(w);
}

std::unique_ptr<ConvPlan> make_conv_plan_reference(const ConvWeights& w) {
  validate_weights(w);
  return std::make_unique<ReferencePlan>(w);
}

std::unique_ptr<ConvPlan> make_conv_plan_named(const ConvWeights& w, const std::string& kernel) {
  validate_weights(w);
  if (kernel == "conv_f32_reference" || kernel == "conv_qu8_reference")
    return std::make_unique<ReferencePlan>(w);
  for (const std::vector<ConvRow>* rows : {&conv_lowbit_rows(), &tiled_rows()})
    if (auto plan = make_named_row_plan(*rows, w, kernel)) return plan;
  throw Error("unknown conv kernel '" + kernel + "'; `mixnas info` lists the kernels");
}

std::vector<ConvKernelInfo> conv_kernel_table(const CpuFeatures& features) {
  std::vector<ConvKernelInfo> out;
  for (const ConvRow& r : tiled_rows()) out.push_back(r.info(features));
  return out;
}

std::vector<std::string> conv_kernel_names_for(const CpuFeatures& features) {
  std::vector<std::string> out;
  for (const char* family : {"gemm", "depthwise"})
    for (ConvPrecision prec : {ConvPrecision::kF32, ConvPrecision::kInt}) {
      std::string name = prec == ConvPrecision::kInt ? "conv_qu8_reference" : "conv_f32_reference";
      for (const ConvRow& r : tiled_rows())
        if (name.find("reference") != std::string::npos && r.precision == prec &&
            std::strcmp(r.family, family) == 0 && r.available(features))
          name = r.name;
      out.push_back(std::string(family) + "/" + (prec == ConvPrecision::kInt ? "int8" : "fp32") +
                    ": " + name);
    }
  for (const std::string& line : conv_lowbit_kernel_names_for(features)) out.push_back(line);
  return out;
}

}  // namespace mixnas::rt
