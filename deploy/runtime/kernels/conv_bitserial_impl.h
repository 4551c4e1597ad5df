#pragma once
// Internal: the bit-serial conv block (bit-plane im2col -> MR x (NV * L) popcount microkernel
// tiles -> zero-point correction -> the shared epilogue of conv_impl.h), a template over an ISA
// struct:
//   static constexpr int kLanes;        // L: 64-bit lanes (= output channels) per vector
//   static constexpr int kRegs;         // vector registers the tile may keep live
//   static constexpr int kVec;          // epilogue vector width (floats)
//   static constexpr bool kByteAcc;     // Acc holds byte counts, flushed into Wide in time
//   using V, Acc, Wide;
//   V load(const uint64_t*) (L words); V bcast(const uint64_t*) (one word to every lane);
//   V vand(V, V);
//   Acc acc_zero(); Acc popadd(Acc, V) (adds the popcounts of x, per lane or per byte);
//   Wide wide_zero(); Wide widen(Wide, Acc); Lanes lanes(Wide) (per-lane totals as u64 x L)
// Each ISA source defines MIXNAS_KERNEL_ISA and its struct, includes this header and instantiates
// bitserial_dispatch<Isa>.
#include "deploy/runtime/kernels/conv_bitserial_job.h"
#include "deploy/runtime/kernels/conv_impl.h"

// bench/mca/report.sh marks one microkernel step for llvm-mca through these hooks.
#ifndef MIXNAS_BS_MCA_BEGIN
#define MIXNAS_BS_MCA_BEGIN(W, A, MR, NVU)
#define MIXNAS_BS_MCA_END(W, A, MR, NVU)
#endif

namespace mixnas::rt::MIXNAS_KERNEL_ISA {

constexpr int bs_min(int a, int b) {
  return a < b ? a : b;
}

template <int L>
struct Lanes64 {
  typedef uint64_t T __attribute__((vector_size(L * 8)));
};

// R[r][c] = sum over k of u(c) * q_a(r) for MR rows and NVU * L channels. The reduction is `taps`
// segments of `seg` words: row r of segment t starts at a[t * MR + r] (its a_bits planes `ps` words
// apart); b is [taps * seg][W][NVU * L] words; out is [MR][NVU * L].
template <class Isa, int W, int A, int MR, int NVU>
__attribute__((always_inline)) inline void bitserial_tile(const uint64_t* const* a, int taps,
                                                          int seg, int ps, const uint64_t* b,
                                                          int64_t* out) {
  constexpr int S = W + A - 1, L = Isa::kLanes, NRU = NVU * L;
  using Vt = typename Isa::V;
  using Acc = typename Isa::Acc;
  using Wide = typename Isa::Wide;
  using Ln = typename Lanes64<L>::T;
  // acc[r][v][s] += popcount(w_i AND a_j) for i + j = s, one word (L channels) at a time.
  auto step = [&](const uint64_t* const* ar, int k, const uint64_t* bp, Acc(&acc)[MR][NVU][S])
      __attribute__((always_inline)) {
    Vt wv[W][NVU];
#pragma GCC unroll 16
    for (int i = 0; i < W; ++i)
#pragma GCC unroll 16
      for (int v = 0; v < NVU; ++v) wv[i][v] = Isa::load(bp + i * NRU + v * L);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
      for (int j = 0; j < A; ++j) {
        const Vt x = Isa::bcast(ar[r] + j * ps + k);
#pragma GCC unroll 16
        for (int i = 0; i < W; ++i)
#pragma GCC unroll 16
          for (int v = 0; v < NVU; ++v)
            acc[r][v][i + j] = Isa::popadd(acc[r][v][i + j], Isa::vand(wv[i][v], x));
      }
  };
  Wide wide[MR][NVU][S];
  if constexpr (Isa::kByteAcc) {
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
      for (int v = 0; v < NVU; ++v)
#pragma GCC unroll 16
        for (int s = 0; s < S; ++s) wide[r][v][s] = Isa::wide_zero();
    // Byte counters take at most 8 * min(W, A) per step and group: flushed before 255.
    constexpr int kFlush = 255 / (8 * bs_min(W, A));
    Acc acc[MR][NVU][S];
    auto zero = [&]() __attribute__((always_inline)) {
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
        for (int v = 0; v < NVU; ++v)
#pragma GCC unroll 16
          for (int s = 0; s < S; ++s) acc[r][v][s] = Isa::acc_zero();
    };
    auto flush = [&]() __attribute__((always_inline)) {
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
        for (int v = 0; v < NVU; ++v)
#pragma GCC unroll 16
          for (int s = 0; s < S; ++s) wide[r][v][s] = Isa::widen(wide[r][v][s], acc[r][v][s]);
    };
    zero();
    int budget = kFlush;
    for (int t = 0; t < taps; ++t) {
      const uint64_t* ar[MR];
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) ar[r] = a[t * MR + r];
      for (int k0 = 0; k0 < seg;) {
        const int k1 = k0 + bs_min(seg - k0, budget);
        for (int k = k0; k < k1; ++k, b += W * NRU) {
          MIXNAS_BS_MCA_BEGIN(W, A, MR, NVU);
          step(ar, k, b, acc);
          MIXNAS_BS_MCA_END(W, A, MR, NVU);
        }
        budget -= k1 - k0;
        k0 = k1;
        if (budget == 0) {
          flush();
          zero();
          budget = kFlush;
        }
      }
    }
    flush();
  } else {  // 64-bit lane counters: no flushes
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
      for (int v = 0; v < NVU; ++v)
#pragma GCC unroll 16
        for (int s = 0; s < S; ++s) wide[r][v][s] = Isa::acc_zero();
    for (int t = 0; t < taps; ++t) {
      const uint64_t* ar[MR];
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) ar[r] = a[t * MR + r];
      for (int k = 0; k < seg; ++k, b += W * NRU) {
        MIXNAS_BS_MCA_BEGIN(W, A, MR, NVU);
        step(ar, k, b, wide);
        MIXNAS_BS_MCA_END(W, A, MR, NVU);
      }
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 16
    for (int v = 0; v < NVU; ++v) {
      Ln t = Isa::lanes(wide[r][v][0]);
#pragma GCC unroll 16
      for (int s = 1; s < S; ++s) t += Isa::lanes(wide[r][v][s]) << s;
      std::memcpy(out + r * NRU + v * L, &t, sizeof t);
    }
}

// ORs the low `nbits` bits of src (words) into dst at bit position pos. dst must have one spare
// word past the last bit written (a zero is ORed into it at most).
inline void bs_append_bits(uint64_t* dst, int pos, const uint64_t* src, int nbits) {
  const int words = (nbits + 63) / 64, sh = pos & 63;
  uint64_t* d = dst + (pos >> 6);
  for (int w = 0; w < words; ++w) {
    uint64_t v = src[w];
    const int left = nbits - w * 64;
    if (left < 64) v &= (uint64_t{1} << left) - 1;
    if (sh == 0) {
      d[w] |= v;
    } else {
      d[w] |= v << sh;
      d[w + 1] |= v >> (64 - sh);
    }
  }
}

// Input pixel (ih, iw) of tap planes: its planes, or the padding planes (every channel z_a), and
// the sum of its codes.
inline const uint64_t* bs_tap(const BitserialJob& lj, int ih, int iw, int32_t* sum) {
  const ConvJob& j = lj.base;
  if (ih < 0 || ih >= j.in_h || iw < 0 || iw >= j.in_w) {
    *sum += j.in_c * j.zero_point;
    return lj.pad_planes;
  }
  const size_t pix = static_cast<size_t>(ih) * j.in_w + iw;
  *sum += lj.pixel_sum[pix];
  return lj.planes + pix * lj.pixel_stride;
}

// The receptive field of output pixel p as a_bits planes of kw words (K bits, taps-major), and
// S_a, the sum of its codes (padding taps count z_a per channel). Channels fit one word: each
// tap is a masked shift into at most two words.
inline int32_t bs_im2col(const BitserialJob& lj, int oh, int ow, uint64_t* row) {
  const ConvJob& j = lj.base;
  const int A = lj.a_bits, kw = lj.kw, in_c = j.in_c, ps = lj.plane_stride;
  for (int i = 0; i < A * kw; ++i) row[i] = 0;
  int32_t sum = 0;
  int pos = 0;
  if (in_c <= 64) {
    const uint64_t mask = in_c == 64 ? ~uint64_t{0} : (uint64_t{1} << in_c) - 1;
    for (int kh = 0; kh < j.kernel_h; ++kh) {
      const int ih = oh * j.stride_h - j.pad_top + kh * j.dilation_h;
      for (int kx = 0; kx < j.kernel_w; ++kx, pos += in_c) {
        const int iw = ow * j.stride_w - j.pad_left + kx * j.dilation_w;
        const uint64_t* src = bs_tap(lj, ih, iw, &sum);
        uint64_t* d = row + (pos >> 6);
        const int sh = pos & 63;
        if (sh + in_c > 64) {
          for (int b = 0; b < A; ++b) {
            const uint64_t v = src[b * ps] & mask;
            d[b * kw] |= v << sh;
            d[b * kw + 1] |= v >> (64 - sh);
          }
        } else {
          for (int b = 0; b < A; ++b) d[b * kw] |= (src[b * ps] & mask) << sh;
        }
      }
    }
    return sum;
  }
  for (int kh = 0; kh < j.kernel_h; ++kh) {
    const int ih = oh * j.stride_h - j.pad_top + kh * j.dilation_h;
    for (int kx = 0; kx < j.kernel_w; ++kx, pos += in_c) {
      const int iw = ow * j.stride_w - j.pad_left + kx * j.dilation_w;
      const uint64_t* src = bs_tap(lj, ih, iw, &sum);
      for (int b = 0; b < A; ++b) bs_append_bits(row + b * kw, pos, src + b * ps, in_c);
    }
  }
  return sum;
}

// kTaps: the taps of output pixel (oh, ow) as pointers to input pixel planes (tp[t * MR]), and S_a.
inline int32_t bs_taps(const BitserialJob& lj, int oh, int ow, int mr, const uint64_t** tp) {
  const ConvJob& j = lj.base;
  int32_t sum = 0;
  for (int kh = 0; kh < j.kernel_h; ++kh) {
    const int ih = oh * j.stride_h - j.pad_top + kh * j.dilation_h;
    for (int kx = 0; kx < j.kernel_w; ++kx, tp += mr)
      *tp = bs_tap(lj, ih, ow * j.stride_w - j.pad_left + kx * j.dilation_w, &sum);
  }
  return sum;
}

// kRowSeg: the kernel rows of output pixel (oh, ow) as pointers into the row strings (tp[kh * MR]),
// and S_a from the rows' prefix sums.
inline int32_t bs_row_segments(const BitserialJob& lj, int oh, int ow, int mr,
                               const uint64_t** tp) {
  const ConvJob& j = lj.base;
  const int x0 = ow * j.stride_w;  // first padded column of the window
  const int bit = x0 * j.in_c, copy = (bit & 63) >> __builtin_ctz(lj.shift);
  const size_t word = static_cast<size_t>(bit - copy * lj.shift) >> 6;
  const size_t row_block = static_cast<size_t>(lj.a_bits) * lj.row_words;
  const uint64_t* copy_base = lj.rows + static_cast<size_t>(copy) * (j.in_h + 1) * row_block;
  int32_t sum = 0;
  for (int kh = 0; kh < j.kernel_h; ++kh, tp += mr) {
    int ih = oh * j.stride_h - j.pad_top + kh * j.dilation_h;
    if (ih < 0 || ih >= j.in_h) ih = j.in_h;  // the padding row
    *tp = copy_base + ih * row_block + word;
    const int32_t* prefix = lj.row_prefix + static_cast<size_t>(ih) * (lj.padded_w + 1);
    sum += prefix[x0 + j.kernel_w] - prefix[x0];
  }
  return sum;
}

inline uint64_t* bs_align(unsigned char*& s, size_t bytes) {
  s += (64 - reinterpret_cast<uintptr_t>(s) % 64) % 64;
  uint64_t* p = reinterpret_cast<uint64_t*>(s);
  s += bytes;
  return p;
}

template <class Isa, int W, int A, int MR, int NVU>
void bitserial_panel(const uint64_t* const* ptrs, int tiles, int m, int taps, int seg, int ps,
                     const uint64_t* b, int n0, int n_pad, const int32_t* sums, int64_t mul,
                     int64_t woff, int32_t* acc) {
  constexpr int NRU = NVU * Isa::kLanes;
  for (int t = 0; t < tiles; ++t) {
    int64_t r[MR * NRU];
    bitserial_tile<Isa, W, A, MR, NVU>(ptrs + static_cast<size_t>(t) * taps * MR, taps, seg, ps, b,
                                       r);
    for (int rr = 0; rr < MR; ++rr) {
      const int i = t * MR + rr;
      if (i >= m) break;
      int32_t* dst = acc + static_cast<size_t>(i) * n_pad + n0;
      const int64_t corr = woff * sums[i];
      for (int n = 0; n < NRU; ++n) dst[n] = static_cast<int32_t>(mul * r[rr * NRU + n] - corr);
    }
  }
}

// Pixels [p0, p1): the A side (per-tap pointers into the input planes, or a bit-plane im2col copy)
// -> MR x (NV * L) tiles per weight panel -> zero-point correction -> the shared epilogue.
template <class Isa, int W, int A>
void bitserial_block(const BitserialJob& lj, int p0, int p1, unsigned char* scratch) {
  constexpr BitserialShape kShape = bitserial_shape(Isa::kRegs, W, A);
  constexpr int MR = kShape.mr, NV = kShape.nv, L = Isa::kLanes;
  const ConvJob& j = lj.base;
  const int m = p1 - p0, tiles = (m + MR - 1) / MR, kw = lj.kw, n_pad = j.n_pad;
  const BitserialASide aside = lj.aside;
  const int taps = bitserial_taps(lj);
  const int seg = aside == BitserialASide::kTaps     ? lj.wpp
                  : aside == BitserialASide::kRowSeg ? lj.seg_words
                                                     : kw;
  const int ps = aside == BitserialASide::kTaps     ? lj.plane_stride
                 : aside == BitserialASide::kRowSeg ? lj.row_words
                                                    : kw;
  unsigned char* s = scratch;
  const uint64_t** ptrs = reinterpret_cast<const uint64_t**>(
      bs_align(s, static_cast<size_t>(tiles) * MR * taps * sizeof(void*)));
  int32_t* sums = reinterpret_cast<int32_t*>(bs_align(s, static_cast<size_t>(m) * 4));
  int32_t* acc = reinterpret_cast<int32_t*>(bs_align(s, static_cast<size_t>(m) * n_pad * 4));
  // Output pixel coordinates stepped along the block (rows past the last pixel repeat it).
  int oh = p0 / j.out_w, ow = p0 % j.out_w;
  auto next = [&] {
    if (++ow == j.out_w) ow = 0, ++oh;
  };
  if (aside != BitserialASide::kIm2col) {
    for (int i = 0; i < tiles * MR; ++i) {
      const uint64_t** tp = ptrs + static_cast<size_t>(i / MR) * taps * MR + i % MR;
      if (i >= m) {  // copy the last pixel's pointers
        const uint64_t** last = ptrs + static_cast<size_t>((m - 1) / MR) * taps * MR + (m - 1) % MR;
        for (int t = 0; t < taps; ++t) tp[t * MR] = last[t * MR];
        continue;
      }
      sums[i] = aside == BitserialASide::kTaps ? bs_taps(lj, oh, ow, MR, tp)
                                               : bs_row_segments(lj, oh, ow, MR, tp);
      next();
    }
  } else {
    uint64_t* rows = bs_align(s, (static_cast<size_t>(m) * A * kw + 8) * 8);
    for (int i = 0; i < m; ++i, next())
      sums[i] = bs_im2col(lj, oh, ow, rows + static_cast<size_t>(i) * A * kw);
    rows[static_cast<size_t>(m) * A * kw] = 0;  // the spare word of bs_append_bits
    for (int i = 0; i < tiles * MR; ++i)
      ptrs[i] = rows + static_cast<size_t>(bs_min(i, m - 1)) * A * kw;
  }
  const uint64_t* b = lj.weights;
  const int64_t mul = lj.w_mul, woff = lj.w_off;
  for (int n0 = 0; n0 < n_pad;) {
    const int nvu = bs_min(NV, (n_pad - n0) / L);
    switch (nvu) {
      case 4:
        bitserial_panel<Isa, W, A, MR, (NV >= 4 ? 4 : 1)>(ptrs, tiles, m, taps, seg, ps, b, n0,
                                                          n_pad, sums, mul, woff, acc);
        break;
      case 3:
        bitserial_panel<Isa, W, A, MR, (NV >= 3 ? 3 : 1)>(ptrs, tiles, m, taps, seg, ps, b, n0,
                                                          n_pad, sums, mul, woff, acc);
        break;
      case 2:
        bitserial_panel<Isa, W, A, MR, (NV >= 2 ? 2 : 1)>(ptrs, tiles, m, taps, seg, ps, b, n0,
                                                          n_pad, sums, mul, woff, acc);
        break;
      default:
        bitserial_panel<Isa, W, A, MR, 1>(ptrs, tiles, m, taps, seg, ps, b, n0, n_pad, sums, mul,
                                          woff, acc);
        break;
    }
    b += static_cast<size_t>(kw) * W * nvu * L;
    n0 += nvu * L;
  }
  epilogue<Isa::kVec>(j, p0, m, acc, true);
}

template <class Isa>
void bitserial_dispatch(const BitserialJob& lj, int p0, int p1, unsigned char* scratch) {
#define MIXNAS_BS_CASE(W, A)                         \
  if (lj.w_bits == W && lj.a_bits == A) {            \
    bitserial_block<Isa, W, A>(lj, p0, p1, scratch); \
    return;                                          \
  }
#define MIXNAS_BS_ROW(W) \
  MIXNAS_BS_CASE(W, 1) MIXNAS_BS_CASE(W, 2) MIXNAS_BS_CASE(W, 3) MIXNAS_BS_CASE(W, 4)
  MIXNAS_BS_ROW(1)
  MIXNAS_BS_ROW(2)
  MIXNAS_BS_ROW(3)
  MIXNAS_BS_ROW(4)
  MIXNAS_BS_ROW(8)
  MIXNAS_BS_CASE(1, 8)
  MIXNAS_BS_CASE(2, 8)
  MIXNAS_BS_CASE(3, 8)
  MIXNAS_BS_CASE(4, 8)
#undef MIXNAS_BS_ROW
#undef MIXNAS_BS_CASE
}

// Code sums from planes: popcounts weighted by plane significance (the ISA's popcount through
// the source's compile flags).
inline void bitsums(const uint64_t* planes, int pixel_stride, int plane_stride, int in_c,
                    int a_bits, int pixels, int32_t* sums) {
  const int wpp = (in_c + 63) / 64, tail = in_c % 64;
  const uint64_t last = tail ? (uint64_t{1} << tail) - 1 : ~uint64_t{0};
  for (int p = 0; p < pixels; ++p) {
    const uint64_t* px = planes + static_cast<size_t>(p) * pixel_stride;
    int64_t s = 0;
    for (int b = 0; b < a_bits; ++b) {
      const uint64_t* pl = px + static_cast<size_t>(b) * plane_stride;
      int64_t n = __builtin_popcountll(pl[wpp - 1] & last);
      for (int w = 0; w + 1 < wpp; ++w) n += __builtin_popcountll(pl[w]);
      s += n << b;
    }
    sums[p] = static_cast<int32_t>(s);
  }
}

// Portable plane packing, 8 codes at a time: bit b of 8 bytes gathered by one multiply.
inline unsigned bitpack_portable(const uint8_t* codes, int row_stride, int in_c, int a_bits, int p0,
                                 int p1, uint64_t* planes, int32_t* sums) {
  const int wpp = (in_c + 63) / 64;
  unsigned all = 0;
  for (int p = p0; p < p1; ++p) {
    const uint8_t* src = codes + static_cast<size_t>(p) * row_stride;
    uint64_t* dst = planes + static_cast<size_t>(p) * a_bits * wpp;
    for (int i = 0; i < a_bits * wpp; ++i) dst[i] = 0;
    int32_t sum = 0;
    for (int c0 = 0; c0 < in_c; c0 += 8) {
      uint64_t x = 0;
      const int n = bs_min(8, in_c - c0);
      std::memcpy(&x, src + c0, n);  // little-endian: byte t = channel c0 + t
      for (int t = 0; t < n; ++t) sum += src[c0 + t];
      uint64_t f = x | x >> 32;
      f |= f >> 16;
      all |= static_cast<unsigned>((f | f >> 8) & 0xff);
      for (int b = 0; b < a_bits; ++b) {
        const uint64_t bits = ((x >> b) & 0x0101010101010101ull) * 0x0102040810204080ull >> 56;
        dst[b * wpp + (c0 >> 6)] |= bits << (c0 & 63);
      }
    }
    sums[p] = sum;
  }
  return all;
}

}  // namespace mixnas::rt::MIXNAS_KERNEL_ISA
