#pragma once
// Internal: the parts every conv kernel shares, as templates instantiated once per ISA source
// (the source defines MIXNAS_KERNEL_ISA first, see simd.h):
// - gemm_block<Ukernel>: im2col (or the input rows in place) -> MRxNR microkernel tiles into the
//   32-bit accumulator tile -> epilogue;
// - dw_block<N, Int>: depthwise conv, N channels per vector;
// - epilogue<N>: scale/bias, activation, residual, sinks.
#include "deploy/runtime/codes.h"
#include "deploy/runtime/kernels/activation_impl.h"
#include "deploy/runtime/kernels/conv_job.h"
#include "deploy/runtime/kernels/conv_wpack.h"
#include "deploy/runtime/kernels/detect_rows.h"
#include "deploy/runtime/kernels/simd.h"

namespace mixnas::rt::MIXNAS_KERNEL_ISA {

inline int imin(int a, int b) {
  return a < b ? a : b;
}

inline float* acc_tile(const ConvJob& j, unsigned char* scratch, size_t a_bytes_per_elem) {
  return reinterpret_cast<float*>(scratch +
                                  conv_scratch_a_bytes(j, static_cast<int>(a_bytes_per_elem)));
}

template <int B>
struct PlaneCount {
  static constexpr int value = B;
};

inline bool same_grid(const ConvSink& a, const ConvSink& b) {
  return a.bits == b.bits && a.zero_point == b.zero_point && a.scale == b.scale;
}

// For a kBitPlanes sink that the loop of a code sink fills from the codes it quantizes: that code
// sink (the first kCodes sink of the same grid; it fills the first such plane sink only), else -1
// (the planes are quantized on their own). -1 for other sinks.
inline int planes_source(const ConvJob& j, int s) {
  const ConvSink& p = j.sinks[s];
  if (p.kind != ConvSink::kBitPlanes) return -1;
  for (int t = 0; t < s; ++t)  // an earlier plane sink of the grid takes the code sink's loop
    if (j.sinks[t].kind == ConvSink::kBitPlanes && same_grid(j.sinks[t], p)) return -1;
  for (int t = 0; t < j.num_sinks; ++t)
    if (j.sinks[t].kind == ConvSink::kCodes && same_grid(j.sinks[t], p)) return t;
  return -1;
}

// Writes bits[b] (bit t = bit b of the code of channel channel + t, n <= 64 channels) into the
// planes of pixel p, keeping the bits of other channels.
inline void store_plane_bits(const ConvSink& sink, int p, int channel, int n,
                             const uint64_t* bits) {
  uint64_t* px = static_cast<uint64_t*>(sink.data) + static_cast<size_t>(p) * sink.row_stride;
  const int bit = sink.channel_offset + channel, sh = bit & 63;
  const uint64_t keep = n == 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1;
  for (int b = 0; b < sink.bits; ++b) {
    const uint64_t g = bits[b] & keep;
    uint64_t* w = px + static_cast<size_t>(b) * sink.plane_stride + (bit >> 6);
    w[0] = (w[0] & ~(keep << sh)) | (g << sh);
    if (sh + n > 64) w[1] = (w[1] & ~(keep >> (64 - sh))) | (g >> (64 - sh));
  }
}

// Lanes of 8 codes (one per byte, each < 2^s) packed into 8 * s bits each (codes.h order: the
// first code in the lowest bits), in the low bits of every lane. Works on one uint64 or on a
// vector of them alike.
template <class V>
inline V pack8_codes(V x, int s) {
  if (s == 4) {
    x = (x | x >> 4) & 0x00FF00FF00FF00FFull;  // byte 2k: code 2k | code 2k+1 << 4
    x = (x | x >> 8) & 0x0000FFFF0000FFFFull;
    return (x | x >> 16) & 0xFFFFFFFFull;
  }
  if (s == 2) {
    x = (x | x >> 6) & 0x000F000F000F000Full;  // 16-bit lane k: codes 2k, 2k+1
    x = (x | x >> 12) & 0x000000FF000000FFull;
    return (x | x >> 24) & 0xFFFFull;
  }
  return (x * 0x0102040810204080ull) >> 56;  // bit 8k -> bit 56 + k, no carries between them
}

// The N codes (32-bit lanes, each < 2^s) packed at s bits each (N * s <= 64), in the low bits of
// one word. The packing runs in registers: a byte buffer read back as words would stall store
// forwarding.
template <int N>
__attribute__((always_inline)) inline uint64_t packed_bits(typename Vec<N>::I code, int s) {
  const typename Vec<N>::U8 q = __builtin_convertvector(code, typename Vec<N>::U8);
  static_assert(N <= 16, "N * s must fit one word");
  if constexpr (N == 16) {
    // 4 and 2 bits from the 32-bit lanes: the 64-bit lane k holds codes 2k (low half) and
    // 2k + 1; a shift joins them in its low byte and a narrowing conversion keeps that byte
    // (a code < 2^s shifted by at most 8 - s stays in it). Two such steps for 2 bits.
    typedef uint64_t U64x8 __attribute__((vector_size(64)));
    typedef uint16_t U16x8 __attribute__((vector_size(16)));
    typedef uint32_t U32x4 __attribute__((vector_size(16)));
    typedef uint8_t U8x8 __attribute__((vector_size(8)));
    typedef uint8_t U8x4 __attribute__((vector_size(4)));
    const U64x8 pairs = reinterpret_cast<U64x8>(code);
    if (s == 4) {
      const U8x8 b = __builtin_convertvector(pairs | pairs >> 28, U8x8);
      uint64_t bits;
      std::memcpy(&bits, &b, 8);
      return bits;
    }
    if (s == 2) {  // nibbles c(2k) | c(2k+1) << 2, then pairs of nibbles into bytes
      const U16x8 n = __builtin_convertvector(pairs | pairs >> 30, U16x8);
      const U32x4 quads = reinterpret_cast<U32x4>(n);
      const U8x4 b = __builtin_convertvector(quads | quads >> 12, U8x4);
      uint32_t bits;
      std::memcpy(&bits, &b, 4);
      return bits;
    }
    using U64 = typename Words<16>::V;
    const U64 v = pack8_codes(reinterpret_cast<U64>(q), s);
    return v[0] | v[1] << 8;
  } else {
    uint64_t x = 0;
    std::memcpy(&x, &q, N);
    return pack8_codes(x, s);
  }
}

// Stores the first `count` codes of `code` (a multiple of 8 / s) packed at s bits each, at dst.
template <int N>
__attribute__((always_inline)) inline void store_packed_codes(typename Vec<N>::I code, int count,
                                                              int s, uint8_t* dst) {
  const uint64_t bits = packed_bits<N>(code, s);
  const int bytes = count * s / 8;
  switch (bytes) {  // fixed-size stores for the full vectors
    case 8:
      std::memcpy(dst, &bits, 8);
      break;
    case 4:
      std::memcpy(dst, &bits, 4);
      break;
    case 2:
      std::memcpy(dst, &bits, 2);
      break;
    default:
      std::memcpy(dst, &bits, static_cast<size_t>(bytes));
  }
}

// The codes of the N values at `x` on a grid (scale, zero point zp, codes [0, qmax]). |x / scale|
// is clamped to 2^22 first: beyond it every code clamps to 0 or qmax anyway; below it
// round(v) + zp is exact in int32 (as in float).
template <int N>
__attribute__((always_inline)) inline typename Vec<N>::I quantize_vec(const float* x,
                                                                      typename Vec<N>::F scale,
                                                                      int32_t zp, int32_t qmax) {
  using F = typename Vec<N>::F;
  using I = typename Vec<N>::I;
  const F v = vclamp(vload<F>(x) / scale, -4194304.0f, 4194304.0f);
  return vmin(vmax(vround_int<N>(v) + zp, I{}), vsplat<I>(qmax));
}

// One row of oc values quantized as quantize_rows does and stored packed at S bits from `dst`
// (a byte boundary), N codes per step in registers; the row is read up to oc rounded up to N.
template <int N, int S>
void quantize_row_packed(const float* row, int oc, typename Vec<N>::F scale, int32_t zp,
                         int32_t qmax, uint8_t* dst) {
  int c = 0;
  for (; c + N <= oc; c += N) {
    const uint64_t bits = packed_bits<N>(quantize_vec<N>(row + c, scale, zp, qmax), S);
    std::memcpy(dst + c * S / 8, &bits, N * S / 8);
  }
  if (c < oc)
    store_packed_codes<N>(quantize_vec<N>(row + c, scale, zp, qmax), oc - c, S, dst + c * S / 8);
}

// Quantizes rows y (stride n_pad) of pixels [p0, p0 + m) to the grid of `sink`: the codes into
// `sink` when it is a kCodes sink (bytes, or packed in registers at sink.storage_bits), and their
// bit planes into `planes` (a kBitPlanes sink of the same grid, or nullptr) while they are in
// registers.
template <int N>
void quantize_rows(const ConvSink& sink, const ConvSink* planes, int p0, int m, const float* y,
                   int n_pad, int oc) {
  using F = typename Vec<N>::F;
  using I = typename Vec<N>::I;
  const int sb = sink.kind == ConvSink::kCodes ? sink.storage_bits : 8;
  // Packed rows: N codes packed in registers per step when N * sb fills whole bytes, else the
  // codes of up to 256 channels gathered, then packed (codes.h).
  const bool packed = sb < 8, in_registers = packed && N * sb % 8 == 0;
  uint8_t* out = sink.kind == ConvSink::kCodes && !packed
                     ? static_cast<uint8_t*>(sink.data) + sink.channel_offset
                     : nullptr;
  uint8_t chunk[256];
  const int32_t qmax = (1 << sink.bits) - 1;
  const int32_t zp = sink.zero_point;
  const F scale = vsplat<F>(sink.scale);
  // B = planes filled in the same loop (0: none); the plane count as a constant keeps the
  // gathered bits in registers.
  auto rows = [&](auto planes_count) {
    constexpr int B = decltype(planes_count)::value;
    for (int i = 0; i < m; ++i) {
      const float* row = y + static_cast<size_t>(i) * n_pad;
      uint8_t* dst = out ? out + static_cast<size_t>(p0 + i) * sink.row_stride : nullptr;
      // Packed in registers: the row starts on a byte (the planner packs such rows only).
      uint8_t* packed_row =
          in_registers
              ? static_cast<uint8_t*>(sink.data) +
                    (static_cast<int64_t>(p0 + i) * sink.row_stride + sink.channel_offset) * sb / 8
              : nullptr;
      if constexpr (B == 0) {  // packed rows without planes: the bit-width as a constant
        if (packed_row && sb == 4) {
          quantize_row_packed<N, 4>(row, oc, scale, zp, qmax, packed_row);
          continue;
        }
        if (packed_row && sb == 2) {
          quantize_row_packed<N, 2>(row, oc, scale, zp, qmax, packed_row);
          continue;
        }
      }
      uint64_t bits[B > 0 ? B : 1] = {};
      int base = 0;  // channel of bit 0 in bits[]
      for (int c = 0; c < oc; c += N) {
        const I code = quantize_vec<N>(row + c, scale, zp, qmax);
        typename Vec<N>::U8 q = __builtin_convertvector(code, typename Vec<N>::U8);
        if (dst) {
          if (c + N <= oc) {
            vstore(dst + c, q);
          } else {
            std::memcpy(dst + c, &q, oc - c);
          }
        } else if (packed_row) {
          store_packed_codes<N>(code, imin(N, oc - c), sb, packed_row + c * sb / 8);
        } else if (packed) {
          const int end = imin(c + N, oc);
          std::memcpy(chunk + (c & 255), &q, end - c);
          if ((end & 255) == 0 || end == oc) {
            const int begin = c & ~255;
            pack_codes(
                chunk, end - begin, sink.storage_bits, static_cast<uint8_t*>(sink.data),
                static_cast<int64_t>(p0 + i) * sink.row_stride + sink.channel_offset + begin);
          }
        }
        if constexpr (B > 0) {
          for (int b = 0; b < B; ++b)
            bits[b] |= static_cast<uint64_t>(byte_bits<N>(q, b)) << (c - base);
          const int end = imin(c + N, oc);
          if (end - base == 64 || end == oc) {  // 64 channels (N divides 64), or the last ones
            store_plane_bits(*planes, p0 + i, base, end - base, bits);
            base = end;
            for (int b = 0; b < B; ++b) bits[b] = 0;
          }
        }
      }
    }
  };
  switch (planes ? sink.bits : 0) {
    case 0:
      rows(PlaneCount<0>{});
      break;
    case 1:
      rows(PlaneCount<1>{});
      break;
    case 2:
      rows(PlaneCount<2>{});
      break;
    case 3:
      rows(PlaneCount<3>{});
      break;
    case 4:
      rows(PlaneCount<4>{});
      break;
    default:
      rows(PlaneCount<8>{});  // 5..8 planes: all 8 gathered, sink.bits stored
      break;
  }
}

// Finishes pixels [p0, p0 + m) whose raw accumulators (int32 or float, row stride n_pad) are in
// `acc`; the tile is turned into floats in place.
template <int N>
void epilogue(const ConvJob& j, int p0, int m, void* acc, bool int_acc) {
  using F = typename Vec<N>::F;
  using I = typename Vec<N>::I;
  unsigned char* base = static_cast<unsigned char*>(acc);
  const int n_pad = j.n_pad;  // a multiple of N by construction
  // Locals: the stores below may alias anything (memcpy), which would reload these per vector
  // (measured: 12% of a 1x1 80x80x32 int8 conv).
  const int32_t* const acc_offset = j.acc_offset;
  const float* const scale = j.scale;
  const float* const bias = j.bias;
  for (int i = 0; i < m; ++i) {
    unsigned char* row = base + static_cast<size_t>(i) * n_pad * 4;
    for (int c = 0; c < n_pad; c += N) {
      F y;
      if (int_acc) {
        I a = vload<I>(row + c * 4) + vload<I>(acc_offset + c);
        y = __builtin_convertvector(a, F) * vload<F>(scale + c);
        y = y + vload<F>(bias + c);
      } else {
        y = vload<F>(row + c * 4) + vload<F>(bias + c);
      }
      vstore(row + c * 4, y);
    }
  }
  float* y = static_cast<float*>(acc);
  apply_activation_n<N>(j.act, y, static_cast<size_t>(m) * n_pad);
  const int oc = j.out_c;
  if (j.residual) {
    for (int i = 0; i < m; ++i) {
      float* row = y + static_cast<size_t>(i) * n_pad;
      const float* r = j.residual + static_cast<size_t>(p0 + i) * j.residual_stride;
      for (int c = 0; c < oc; ++c) row[c] += r[c];
    }
  }
  for (int s = 0; s < j.num_sinks; ++s) {
    const ConvSink& sink = j.sinks[s];
    if (sink.kind == ConvSink::kF32) {
      float* out = static_cast<float*>(sink.data) + sink.channel_offset;
      const int count = sink.channels > 0 ? sink.channels : oc;
      for (int i = 0; i < m; ++i) {
        std::memcpy(out + static_cast<size_t>(p0 + i) * sink.row_stride,
                    y + static_cast<size_t>(i) * n_pad + sink.first_channel, count * sizeof(float));
      }
      continue;
    }
    if (sink.kind == ConvSink::kDetectBoxes || sink.kind == ConvSink::kDetectScores ||
        sink.kind == ConvSink::kDetectBest) {
      float* out = static_cast<float*>(sink.data) + static_cast<size_t>(p0) * sink.row_stride +
                   sink.channel_offset;
      if (sink.kind == ConvSink::kDetectBoxes)
        decode_v8_boxes(y, n_pad, m, sink.reg_max, p0, sink.grid_width, sink.anchor_stride, out,
                        sink.row_stride);
      else if (sink.kind == ConvSink::kDetectScores)
        decode_v8_scores(y, n_pad, m, oc, out, sink.row_stride);
      else
        decode_v8_best(y, n_pad, m, oc, out, sink.row_stride);
      continue;
    }
    if (sink.kind == ConvSink::kBitPlanes) continue;  // after the code sinks, below
    // A bit-plane sink of the same grid that this code sink's loop fills as it goes.
    const ConvSink* planes = nullptr;
    for (int t = 0; t < j.num_sinks && !planes; ++t)
      if (planes_source(j, t) == s) planes = &j.sinks[t];
    quantize_rows<N>(sink, planes, p0, m, y, n_pad, oc);
  }
  // Bit-plane sinks without a code sink of their grid (those were filled above).
  for (int s = 0; s < j.num_sinks; ++s)
    if (j.sinks[s].kind == ConvSink::kBitPlanes && planes_source(j, s) < 0)
      quantize_rows<N>(j.sinks[s], &j.sinks[s], p0, m, y, n_pad, oc);
}

// memcpy for the short runs of im2col (a 3x3 kernel row over 3 input channels is 9 bytes): fixed
// 8-, 4-, 2- and 1-byte moves instead of a library call per run.
inline void copy_run(void* dst, const void* src, size_t bytes) {
  if (bytes > 64) {
    std::memcpy(dst, src, bytes);
    return;
  }
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  for (; bytes >= 8; bytes -= 8, d += 8, s += 8) std::memcpy(d, s, 8);
  if (bytes & 4) std::memcpy(d, s, 4), d += 4, s += 4;
  if (bytes & 2) std::memcpy(d, s, 2), d += 2, s += 2;
  if (bytes & 1) *d = *s;
}

// Copies the receptive field of pixels [p0, p0 + m) into rows of k_pad elements:
// (kernel row, kernel col, channel) order, padding pixels = pad_value, the k..k_pad tail = 0.
// When a kernel row lies inside the input and pixels are packed (in_stride == in_c, no
// dilation), its kernel_w pixels are one contiguous run.
template <class A, class Convert>
void im2col(const ConvJob& j, const typename Convert::Src* in, int p0, int m, A* rows, A pad_value,
            Convert convert) {
  const int in_h = j.in_h, in_w = j.in_w, in_c = j.in_c, out_w = j.out_w;
  const int kernel_h = j.kernel_h, kernel_w = j.kernel_w, stride_h = j.stride_h,
            stride_w = j.stride_w, pad_top = j.pad_top, pad_left = j.pad_left, dil_h = j.dilation_h,
            dil_w = j.dilation_w, k = j.k, k_pad = j.k_pad;
  const size_t in_stride = j.in_stride;
  const bool packed = in_stride == static_cast<size_t>(in_c) && dil_w == 1;
  // Short runs (a stem's 3x3 kernel row over 3 channels: 9 bytes) are copied as one 16-, 32- or
  // 64-byte move. The bytes past the run are garbage that later writes cover: the rest of this
  // row (runs, padding, the zero tail) and the next row, which is complete before the block ends;
  // so the move may not reach past the next row, and the last row of the block never takes it.
  // The source must hold the bytes read past the run.
  const size_t run_bytes = sizeof(A) * kernel_w * in_c;
  const size_t chunk = run_bytes <= 16 ? 16 : run_bytes <= 32 ? 32 : run_bytes <= 64 ? 64 : 0;
  const size_t row_bytes = sizeof(A) * k_pad;
  const size_t in_size =
      sizeof(typename Convert::Src) * static_cast<size_t>(in_h) * in_w * in_stride;
  int oh = p0 / out_w, ow = p0 % out_w;
  for (int i = 0; i < m; ++i) {
    A* dst = rows + static_cast<size_t>(i) * k_pad;
    const bool overrun_ok = chunk > 0 && i + 1 < m;
    for (int kh = 0; kh < kernel_h; ++kh) {
      const int ih = oh * stride_h - pad_top + kh * dil_h;
      const int iw0 = ow * stride_w - pad_left;
      const typename Convert::Src* src_row = in + static_cast<size_t>(ih) * in_w * in_stride;
      if (ih < 0 || ih >= in_h) {
        for (int c = 0; c < kernel_w * in_c; ++c) dst[c] = pad_value;
      } else if (packed && iw0 >= 0 && iw0 + kernel_w <= in_w) {
        const auto* src = src_row + static_cast<size_t>(iw0) * in_c;
        const size_t dst_off = run_bytes * kh;  // within this row
        const size_t src_off = sizeof(*src) * static_cast<size_t>(src - in);
        if (Convert::kIdentity && overrun_ok && dst_off + chunk <= 2 * row_bytes &&
            src_off + chunk <= in_size) {
          if (chunk == 16) {
            std::memcpy(dst, src, 16);
          } else if (chunk == 32) {
            std::memcpy(dst, src, 32);
          } else {
            std::memcpy(dst, src, 64);
          }
        } else if (Convert::kIdentity) {
          copy_run(dst, src, run_bytes);
        } else {
          for (int c = 0; c < kernel_w * in_c; ++c) dst[c] = convert(src[c]);
        }
      } else {
        for (int kw = 0; kw < kernel_w; ++kw) {
          const int iw = iw0 + kw * dil_w;
          A* d = dst + kw * in_c;
          if (iw < 0 || iw >= in_w) {
            for (int c = 0; c < in_c; ++c) d[c] = pad_value;
          } else {
            const auto* src = src_row + static_cast<size_t>(iw) * in_stride;
            for (int c = 0; c < in_c; ++c) d[c] = convert(src[c]);
          }
        }
      }
      dst += kernel_w * in_c;
    }
    for (int c = k; c < k_pad; ++c) *dst++ = A(0);
    if (++ow == out_w) ow = 0, ++oh;
  }
}

struct CopyF32 {
  static constexpr bool kIdentity = true;
  using Src = float;
  float operator()(float x) const { return x; }
};
struct CopyU8 {
  static constexpr bool kIdentity = true;
  using Src = uint8_t;
  uint8_t operator()(uint8_t x) const { return x; }
};
struct U8ToS16 {
  static constexpr bool kIdentity = false;
  using Src = uint8_t;
  int16_t operator()(uint8_t x) const { return static_cast<int16_t>(x); }
};
struct U8ToS8 {  // a - 128 as a signed byte (dot-product kernels with signed x signed products)
  static constexpr bool kIdentity = false;
  using Src = uint8_t;
  int8_t operator()(uint8_t x) const { return static_cast<int8_t>(x ^ 0x80); }
};

// Bytes of the widest integer vector of this ISA: the unpack works in pieces of that many packed
// bytes (wider GCC vectors would pass through memory on function boundaries, -Wpsabi).
#if defined(__AVX512BW__)
constexpr int kUnpackBytes = 64;
#elif defined(__AVX2__)
constexpr int kUnpackBytes = 32;
#else
constexpr int kUnpackBytes = 16;
#endif

// Decodes `chunks` chunks of codes stored at S bits (conv_wpack.h) into chunks * 512 / S values
// of T (int8, int16 or int32) at dst. The shift and mask act on 16-bit lanes (x86 has no byte
// shift): the mask drops the bits that cross from the neighbouring byte.
template <int S, class T>
void unpack_weight_chunks(const uint8_t* src, size_t chunks, T* dst) {
  constexpr int P = kUnpackBytes;
  typedef uint16_t U16xP __attribute__((vector_size(P)));
  typedef int8_t S8xP __attribute__((vector_size(P)));
  typedef T TxP __attribute__((vector_size(P * sizeof(T))));
  constexpr int G = 8 / S;
  constexpr uint16_t mask = static_cast<uint16_t>(((1u << S) - 1) * 0x0101u);
  constexpr int8_t half = S == 8 ? 0 : static_cast<int8_t>(1 << (S - 1));
  for (size_t c = 0; c < chunks; ++c, src += kWpackChunkBytes, dst += kWpackChunkBytes * G) {
    for (int p = 0; p < kWpackChunkBytes; p += P) {
      U16xP x;
      std::memcpy(&x, src + p, P);
      for (int g = 0; g < G; ++g) {
        S8xP v;
        if constexpr (S == 8) {
          v = reinterpret_cast<S8xP>(x);
        } else {
          const S8xP f = reinterpret_cast<S8xP>((x >> (g * S)) & mask);
          v = S == 1 ? f + f - 1 : (f ^ half) - half;  // 1-bit: set = +1, clear = -1
        }
        T* d = dst + g * kWpackChunkBytes + p;
        if constexpr (sizeof(T) == 1) {
          std::memcpy(d, &v, P);
        } else {
          const TxP wide = __builtin_convertvector(v, TxP);
          std::memcpy(d, &wide, sizeof(wide));
        }
      }
    }
  }
}

// wpack_unpacked_codes(codes, bits) values of T from `codes` codes stored at `bits`.
template <class T>
void unpack_weight_codes(const uint8_t* src, int bits, size_t codes, T* dst) {
  const size_t chunks = wpack_chunks(codes, bits);
  switch (bits) {
    case 1:
      unpack_weight_chunks<1>(src, chunks, dst);
      break;
    case 2:
      unpack_weight_chunks<2>(src, chunks, dst);
      break;
    case 4:
      unpack_weight_chunks<4>(src, chunks, dst);
      break;
    default:
      unpack_weight_chunks<8>(src, chunks, dst);
      break;
  }
}

template <int Bytes>
struct SignedInt;
template <>
struct SignedInt<1> {
  using T = int8_t;
};
template <>
struct SignedInt<2> {
  using T = int16_t;
};
template <>
struct SignedInt<4> {  // fp32 kernels: never unpacked
  using T = int32_t;
};

// Ukernel: static constexpr int MR, NR, kVec; using A (element of the A rows); using Convert;
// static constexpr bool kInt, kDirect (A rows may be the input itself);
// static constexpr int kBBytes (bytes per packed weight element);
// template <int NRU> static void run(int taps, int kc, const A* const* a, const void* b, void* c,
//                                    size_t ldc)
// computes an MR x NRU tile (NRU = NR, or NR / 2 for the last panel): for each tap t the MR row
// pointers a[t * MR + r] each give kc elements; B is packed [taps * kc][NRU].
template <class U>
void gemm_block(const ConvJob& j, int p0, int p1, unsigned char* scratch) {
  using A = typename U::A;
  using Src = typename U::Convert::Src;
  constexpr int MR = U::MR;
  const int m = p1 - p0;
  const int tiles = (m + MR - 1) / MR;
  void* acc = acc_tile(j, scratch, sizeof(A));
  typename U::Convert convert;
  const Src* in = reinterpret_cast<const Src*>(U::kInt ? static_cast<const void*>(j.in_codes)
                                                       : static_cast<const void*>(j.in_f32));
  // a[tile][tap][row] pointers.
  const A* const* ptrs;
  int taps = 1, kc = j.k_pad;
  if (j.indirect) {
    taps = j.kernel_h * j.kernel_w;
    kc = j.in_c;
    ptrs = reinterpret_cast<const A* const*>(j.indirection);  // this block's tiles
  } else {
    const A** rows_ptrs = reinterpret_cast<const A**>(scratch);
    const A* rows;
    size_t stride;
    if (U::kDirect && j.direct) {
      rows = reinterpret_cast<const A*>(in) + static_cast<size_t>(p0) * j.in_stride;
      stride = j.in_stride;
    } else {
      A* abuf = reinterpret_cast<A*>(scratch + static_cast<size_t>(tiles) * MR * sizeof(void*));
      const A pad = U::kInt ? convert(static_cast<Src>(j.zero_point)) : A(0);
      im2col<A>(j, in, p0, m, abuf, pad, convert);
      rows = abuf;
      stride = j.k_pad;
    }
    for (int i = 0; i < tiles * MR; ++i)
      rows_ptrs[i] = rows + static_cast<size_t>(imin(i, m - 1)) * stride;
    ptrs = rows_ptrs;
  }
  const unsigned char* b = static_cast<const unsigned char*>(j.packed);
  // Packed codes: one panel at a time into scratch, read by every tile of the block.
  using WCode = typename SignedInt<U::kBBytes>::T;
  WCode* panel =
      reinterpret_cast<WCode*>(static_cast<unsigned char*>(acc) + conv_scratch_acc_bytes(j));
  for (int n0 = 0; n0 < j.n_pad;) {
    const bool half = j.half_nr && j.n_pad - n0 < U::NR;
    const int width = half ? U::NR / 2 : U::NR;
    const size_t codes = static_cast<size_t>(j.k_pad) * width;
    const void* bw = b;
    if (j.w_storage_bits) {
      unpack_weight_codes(b, j.w_storage_bits, codes, panel);
      bw = panel;
      b += wpack_bytes(codes, j.w_storage_bits);
    } else {
      b += codes * U::kBBytes;
    }
    for (int t = 0; t < tiles; ++t) {
      unsigned char* c =
          static_cast<unsigned char*>(acc) + (static_cast<size_t>(t) * MR * j.n_pad + n0) * 4;
      const A* const* a = ptrs + static_cast<size_t>(t) * taps * MR;
      if (half) {
        U::template run<U::NR / 2>(taps, kc, a, bw, c, j.n_pad);
      } else {
        U::template run<U::NR>(taps, kc, a, bw, c, j.n_pad);
      }
    }
    n0 += width;
  }
  epilogue<U::kVec>(j, p0, m, acc, U::kInt);
}

// Generic-vector fp32 GEMM microkernel: MR rows x NR floats in vectors of L; B packed [k][NRU].
// Fma()(acc, x, w) returns acc + x * w (one fused instruction where the ISA has it).
template <int MR_, int NV, int L, class Fma>
struct F32Gemm {
  static constexpr int MR = MR_, NR = NV * L, kVec = L, kBBytes = 4;
  static constexpr bool kInt = false, kDirect = true;
  using A = float;
  using Convert = CopyF32;
  template <int NRU>
  static void run(int taps, int kc, const float* const* a, const void* bp, void* cp, size_t ldc) {
    using F = typename Vec<L>::F;
    constexpr int NVU = NRU / L;
    const float* b = static_cast<const float*>(bp);
    Fma fma;
    F acc[MR][NVU];
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NVU; ++v) acc[r][v] = F{};
    for (int t = 0; t < taps; ++t) {
      const float* ap[MR];
      for (int r = 0; r < MR; ++r) ap[r] = a[t * MR + r];
      for (int kk = 0; kk < kc; ++kk) {
        F w[NVU];
        for (int v = 0; v < NVU; ++v) w[v] = vload<F>(b + v * L);
        b += NRU;
        for (int r = 0; r < MR; ++r) {
          F x = vsplat<F>(ap[r][kk]);
          for (int v = 0; v < NVU; ++v) acc[r][v] = fma(acc[r][v], x, w[v]);
        }
      }
    }
    float* c = static_cast<float*>(cp);
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NVU; ++v) vstore(c + r * ldc + v * L, acc[r][v]);
  }
};

// Depthwise conv, L channels per vector; packed weights [tap][n_pad]: floats, or codes at
// j.w_storage_bits that each block widens to int32 in scratch after its accumulator tile.
template <int L, bool Int>
void dw_block(const ConvJob& j, int p0, int p1, unsigned char* scratch) {
  using F = typename Vec<L>::F;
  using I = typename Vec<L>::I;
  using U8 = typename Vec<L>::U8;
  const int m = p1 - p0;
  unsigned char* acc = scratch;  // mc * n_pad accumulators
  const int C = j.in_c;
  int32_t* wide = reinterpret_cast<int32_t*>(scratch + conv_scratch_acc_bytes(j));
  if (Int)
    unpack_weight_codes(static_cast<const uint8_t*>(j.packed), j.w_storage_bits,
                        static_cast<size_t>(j.kernel_h) * j.kernel_w * j.n_pad, wide);
  for (int i = 0; i < m; ++i) {
    const int p = p0 + i;
    const int oh = p / j.out_w, ow = p % j.out_w;
    unsigned char* out = acc + static_cast<size_t>(i) * j.n_pad * 4;
    for (int c0 = 0; c0 < j.n_pad; c0 += L) {
      const int valid = imin(L, C - c0);
      F facc = F{};
      I iacc = I{};
      for (int kh = 0; kh < j.kernel_h; ++kh) {
        const int ih = oh * j.stride_h - j.pad_top + kh * j.dilation_h;
        if (ih < 0 || ih >= j.in_h) continue;
        for (int kw = 0; kw < j.kernel_w; ++kw) {
          const int iw = ow * j.stride_w - j.pad_left + kw * j.dilation_w;
          if (iw < 0 || iw >= j.in_w) continue;
          const size_t tap = static_cast<size_t>(kh) * j.kernel_w + kw;
          const size_t pix = (static_cast<size_t>(ih) * j.in_w + iw) * j.in_stride + c0;
          if (Int) {
            U8 x;
            if (valid == L) {
              x = vload<U8>(j.in_codes + pix);
            } else {
              x = vsplat<U8>(static_cast<uint8_t>(j.zero_point));
              std::memcpy(&x, j.in_codes + pix, valid);
            }
            I w = vload<I>(wide + tap * j.n_pad + c0);
            iacc += (__builtin_convertvector(x, I) - j.zero_point) * w;
          } else {
            F x = F{};
            if (valid == L) {
              x = vload<F>(j.in_f32 + pix);
            } else {
              std::memcpy(&x, j.in_f32 + pix, valid * sizeof(float));
            }
            facc += x * vload<F>(static_cast<const float*>(j.packed) + tap * j.n_pad + c0);
          }
        }
      }
      if (Int) {
        vstore(out + c0 * 4, iacc);
      } else {
        vstore(out + c0 * 4, facc);
      }
    }
  }
  epilogue<L>(j, p0, m, acc, Int);
}

}  // namespace mixnas::rt::MIXNAS_KERNEL_ISA
