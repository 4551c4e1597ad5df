// Table-lookup integer conv for 1- and 2-bit activations (conv_lut_job.h), AVX-512 VBMI: vpermb
// looks up 64 output positions' 6-bit indexes in a 64-byte table per (output channel, tap, channel
// group), vpaddb accumulates, the bytes are widened into 16-bit sums every few lookups.
#define MIXNAS_KERNEL_ISA isa_lut_avx512vbmi
#include <immintrin.h>

#include "deploy/runtime/kernels/conv_impl.h"
#include "deploy/runtime/kernels/conv_lut_job.h"

namespace mixnas::rt {
namespace isa_lut_avx512vbmi {

unsigned char* align64(unsigned char*& s, size_t bytes) {
  s = reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(s) + 63) & ~uintptr_t{63});
  unsigned char* p = s;
  s += bytes;
  return p;
}

// The lower and upper 256 bits (_mm512_extracti64x4_epi64 with a zero pass-through: the
// intrinsics' undefined one draws GCC 12 uninitialized warnings).
template <int Half>
inline __m256i half(__m512i x) {
  return reinterpret_cast<__m256i>(__builtin_ia32_extracti64x4_mask(
      reinterpret_cast<__v8di>(x), Half, reinterpret_cast<__v4di>(_mm256_setzero_si256()),
      static_cast<__mmask8>(-1)));
}

// Output channels per pass (each keeps R byte accumulators; R <= 4 vectors of positions).
constexpr int kNb = 4;

// `count` lookups (at most flush_steps: the byte sums cannot wrap) for R vectors of positions x
// kNb output channels, then the byte sums added into the 16-bit sums `words` ([n][r][64]: the
// lo/hi halves of each 128-bit lane, put back in position order when finishing). steps[2 * s] is
// step s's offset into the index images, steps[2 * s + 1] into a channel's tables.
template <int R>
inline __attribute__((always_inline)) void lut_steps(const uint8_t* index, const uint8_t* tables,
                                                     size_t table_stride, const int32_t* steps,
                                                     int count, uint16_t* words) {
  const __m512i zero = _mm512_setzero_si512();
  __m512i acc[R][kNb];
  for (int r = 0; r < R; ++r)
    for (int n = 0; n < kNb; ++n) acc[r][n] = zero;
  for (int s = 0; s < count; ++s) {
    const uint8_t* ip = index + steps[2 * s];
    const uint8_t* tp = tables + steps[2 * s + 1];
    __m512i idx[R];
    for (int r = 0; r < R; ++r) idx[r] = _mm512_loadu_si512(ip + 64 * r);
    for (int n = 0; n < kNb; ++n) {
      // The table is loaded once for the R lookups (loads, not the vector units, limit a
      // memory-operand vpermb per lookup here: 512-bit loads issue about once per cycle).
      const __m512i table = _mm512_load_si512(tp + n * table_stride);
      for (int r = 0; r < R; ++r) {
        // vpermb, then vpaddb into the accumulator's own register (written as intrinsics, GCC 12
        // adds into a temporary and copies it back: one more 512-bit instruction per lookup).
        __m512i looked;
        __asm__("vpermb %[table], %[idx], %[looked]\n\tvpaddb %[looked], %[acc], %[acc]"
                : [acc] "+v"(acc[r][n]), [looked] "=&v"(looked)
                : [table] "v"(table), [idx] "v"(idx[r]));
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int n = 0; n < kNb; ++n) {
      uint16_t* w = words + (n * R + r) * 64;
      const __m512i lo = _mm512_unpacklo_epi8(acc[r][n], zero);
      const __m512i hi = _mm512_unpackhi_epi8(acc[r][n], zero);
      _mm512_store_si512(w, _mm512_add_epi16(_mm512_load_si512(w), lo));
      _mm512_store_si512(w + 32, _mm512_add_epi16(_mm512_load_si512(w + 32), hi));
    }
}

// cm [16 channels][R * 64 positions] -> tile rows (16 channels at `tile`, row stride n_pad) of
// the positions with tile_row >= 0: 16x16 transposes in four butterfly stages (stage d swaps the
// elements whose row and column differ in bit d).
template <int R>
void transpose_into_tile(const int32_t* cm, const int* tile_row, int32_t* tile, int n_pad) {
  __m512i lo_idx[4], hi_idx[4];
  for (int k = 0; k < 4; ++k) {
    const int d = 8 >> k;
    alignas(64) int32_t lo[16], hi[16];
    for (int p = 0; p < 16; ++p) {
      lo[p] = (p & d) == 0 ? p : 16 + p - d;
      hi[p] = (p & d) == 0 ? p + d : 16 + p;
    }
    lo_idx[k] = _mm512_load_si512(lo);
    hi_idx[k] = _mm512_load_si512(hi);
  }
  for (int c = 0; c < R * 4; ++c) {
    __m512i v[16];
    for (int i = 0; i < 16; ++i) v[i] = _mm512_load_si512(cm + i * R * 64 + c * 16);
    for (int k = 0; k < 4; ++k) {
      const int d = 8 >> k;
      for (int i = 0; i < 16; ++i) {
        if (i & d) continue;
        const __m512i a = v[i], b = v[i + d];
        v[i] = _mm512_permutex2var_epi32(a, lo_idx[k], b);
        v[i + d] = _mm512_permutex2var_epi32(a, hi_idx[k], b);
      }
    }
    for (int l = 0; l < 16; ++l) {
      const int row = tile_row[c * 16 + l];
      if (row >= 0) _mm512_storeu_si512(tile + static_cast<size_t>(row) * n_pad, v[l]);
    }
  }
}

template <int R>
void lut_block(const LutJob& j, int vb, unsigned char* scratch) {
  const ConvJob& b = j.base;
  const int out_w = b.out_w, wq = j.wq, n_pad = b.n_pad, groups = j.groups, taps = j.taps;
  const int positions = b.out_h * wq;
  const int f0 = vb * 64, f1 = imin((vb + R) * 64, positions);
  // The block's valid output pixels [p_lo, p_hi): positions f = oy * wq + ox with ox < out_w.
  auto pixels_before = [&](int f) {
    const int oy = f / wq, ox = f % wq;
    return oy * out_w + imin(ox, out_w);
  };
  const int p_lo = pixels_before(f0), p_hi = pixels_before(f1);
  const int m = p_hi - p_lo;
  if (m <= 0) return;
  unsigned char* s = scratch;
  uint16_t* words = reinterpret_cast<uint16_t*>(align64(s, sizeof(uint16_t) * kNb * R * 128));
  int32_t* cm = reinterpret_cast<int32_t*>(align64(s, sizeof(int32_t) * 16 * R * 64));
  int* tile_row = reinterpret_cast<int*>(align64(s, sizeof(int) * R * 64));
  int32_t* tile = reinterpret_cast<int32_t*>(align64(s, sizeof(int32_t) * m * n_pad));
  const int oc4 = (b.out_c + kNb - 1) / kNb * kNb;
  const size_t table_stride = static_cast<size_t>(groups) * taps * 64;  // per output channel
  const int32_t corr = j.entry_bias * groups * taps;
  const int total_steps = groups * taps;
  const __m512i zero = _mm512_setzero_si512();
  const __m512i lo_first = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
  const __m512i lo_second = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
  // Each position's row in the tile (-1: a dropped column past out_w, or past the last row).
  for (int lane = 0; lane < R * 64; ++lane) {
    const int f = f0 + lane, oy = f / wq, ox = f % wq;
    tile_row[lane] = ox < out_w && oy < b.out_h ? oy * out_w + ox - p_lo : -1;
  }
  for (int ob = 0; ob < oc4; ob += kNb) {
    for (int i = 0; i < kNb * R * 2; ++i) _mm512_store_si512(words + i * 32, zero);
    const uint8_t* tb = j.tables + static_cast<size_t>(ob) * table_stride;
    for (int s0 = 0; s0 < total_steps; s0 += j.flush_steps)
      lut_steps<R>(j.index + f0, tb, table_stride, j.steps + 2 * s0,
                   imin(j.flush_steps, total_steps - s0), words);
    // 16-bit sums in position order -> int32 raw accumulators (minus the entry bias).
    const __m512i vcorr = _mm512_set1_epi32(corr);
    for (int n = 0; n < kNb; ++n)
      for (int r = 0; r < R; ++r) {
        const uint16_t* w = words + (n * R + r) * 64;
        const __m512i lo = _mm512_load_si512(w), hi = _mm512_load_si512(w + 32);
        const __m512i first = _mm512_permutex2var_epi64(lo, lo_first, hi);
        const __m512i second = _mm512_permutex2var_epi64(lo, lo_second, hi);
        int32_t* c = cm + (ob % 16 + n) * R * 64 + r * 64;
        auto widen = [&](__m256i x) { return _mm512_sub_epi32(_mm512_cvtepu16_epi32(x), vcorr); };
        _mm512_store_si512(c, widen(half<0>(first)));
        _mm512_store_si512(c + 16, widen(half<1>(first)));
        _mm512_store_si512(c + 32, widen(half<0>(second)));
        _mm512_store_si512(c + 48, widen(half<1>(second)));
      }
    // Every 16 channels (or at the last), into the pixel-major tile of the shared epilogue.
    if ((ob + kNb) % 16 == 0 || ob + kNb == oc4) {
      const int c0 = ob / 16 * 16;
      for (int n = ob + kNb - c0; n < 16; ++n)  // channels past oc4 (up to n_pad): zeros
        std::memset(cm + n * R * 64, 0, sizeof(int32_t) * R * 64);
      transpose_into_tile<R>(cm, tile_row, tile + c0, n_pad);
    }
  }
  epilogue<16>(b, p_lo, m, tile, true);
}

void block(const LutJob& j, int v0, int v1, unsigned char* scratch) {
  for (int v = v0; v < v1; v += kLutBlockVectors) {
    switch (imin(kLutBlockVectors, v1 - v)) {
      case 1:
        lut_block<1>(j, v, scratch);
        break;
      case 2:
        lut_block<2>(j, v, scratch);
        break;
      case 3:
        lut_block<3>(j, v, scratch);
        break;
      default:
        lut_block<4>(j, v, scratch);
        break;
    }
  }
}

// Index images from codes: per 64 positions of a phase row, every pixel's group indexes are
// formed in a register (vpermb gathers channel j of every group, shifted into place) and stored
// pixel-major into `temp`, then transposed 8x8 bytes at a time into the group images.
unsigned build_index(const LutJob& j, const uint8_t* codes, int row_stride, const uint8_t* pad_byte,
                     uint8_t* index, uint8_t* temp) {
  const ConvJob& b = j.base;
  const int A = j.a_bits, cpg = j.cpg, groups = j.groups, wq = j.wq;
  const int sh = b.stride_h, sw = b.stride_w;
  const int rows = static_cast<int>((j.phase_bytes - 64) / wq);
  const int gpc = 63 / cpg;  // groups per 64-byte load (63 or 60 channels)
  const int chunks = (groups + gpc - 1) / gpc;
  const int ts = lut_index_row_bytes(j);  // temp row bytes
  __m512i perm[6];
  for (int q = 0; q < cpg; ++q) {
    alignas(64) uint8_t p[64];
    for (int g = 0; g < 64; ++g) p[g] = static_cast<uint8_t>(g < gpc ? g * cpg + q : 63);
    perm[q] = _mm512_load_si512(p);
  }
  alignas(64) uint8_t tr[64];  // 8x8 byte transpose: out byte g * 8 + i = in byte i * 8 + g
  for (int g = 0; g < 8; ++g)
    for (int i = 0; i < 8; ++i) tr[g * 8 + i] = static_cast<uint8_t>(i * 8 + g);
  const __m512i transpose = _mm512_load_si512(tr);
  const __m512i gather_idx =
      _mm512_setr_epi64(0, ts, 2 * ts, 3 * ts, 4 * ts, 5 * ts, 6 * ts, 7 * ts);
  __m512i all = _mm512_setzero_si512();
  for (int py = 0; py < sh; ++py)
    for (int px = 0; px < sw; ++px) {
      const size_t phase = static_cast<size_t>(py * sw + px) * j.phase_bytes;
      for (int Y = 0; Y < rows; ++Y) {
        const int iy = Y * sh + py - b.pad_top;
        const size_t row_off = phase + static_cast<size_t>(Y) * wq;
        if (iy < 0 || iy >= b.in_h) {
          for (int g = 0; g < groups; ++g)
            std::memset(index + g * j.group_bytes + row_off, pad_byte[g], wq);
          continue;
        }
        for (int x0 = 0; x0 < wq; x0 += 64) {
          const int n = imin(64, wq - x0);
          for (int l = 0; l < n; ++l) {
            const int ix = (x0 + l) * sw + px - b.pad_left;
            uint8_t* dst = temp + static_cast<size_t>(l) * ts;
            if (ix < 0 || ix >= b.in_w) {
              std::memcpy(dst, pad_byte, groups);
              continue;
            }
            const uint8_t* src =
                codes + (static_cast<size_t>(iy) * b.in_w + ix) * static_cast<size_t>(row_stride);
            for (int c = 0; c < chunks; ++c) {
              const int ch = imin(gpc * cpg, b.in_c - c * gpc * cpg);
              const __mmask64 mask = (__mmask64{1} << ch) - 1;  // ch <= 63
              const __m512i x = _mm512_maskz_loadu_epi8(mask, src + c * gpc * cpg);
              all = _mm512_or_si512(all, x);
              __m512i v = _mm512_permutexvar_epi8(perm[0], x);
              for (int q = 1; q < cpg; ++q)
                v = _mm512_or_si512(v,
                                    _mm512_slli_epi16(_mm512_permutexvar_epi8(perm[q], x), A * q));
              _mm512_storeu_si512(dst + c * gpc, v);
            }
          }
          // temp [n][groups] -> group images at x0 (8 bytes past n may be written: they land in
          // the next row, written later, or in the 64-byte gap after the phase).
          for (int g0 = 0; g0 < groups; g0 += 8) {
            for (int l0 = 0; l0 < n; l0 += 8) {
              const __m512i v =
                  _mm512_i64gather_epi64(gather_idx, temp + static_cast<size_t>(l0) * ts + g0, 1);
              alignas(64) uint8_t out[64];
              _mm512_store_si512(out, _mm512_permutexvar_epi8(transpose, v));
              for (int g = g0; g < imin(g0 + 8, groups); ++g)
                std::memcpy(index + g * j.group_bytes + row_off + x0 + l0, out + (g - g0) * 8, 8);
            }
          }
        }
      }
    }
  const __m256i a = _mm256_or_si256(half<0>(all), half<1>(all));
  const __m128i c = _mm_or_si128(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
  uint64_t q = static_cast<uint64_t>(_mm_cvtsi128_si64(c) | _mm_extract_epi64(c, 1));
  q |= q >> 32;
  q |= q >> 16;
  q |= q >> 8;
  return static_cast<unsigned>(q & 0xFF);
}

}  // namespace isa_lut_avx512vbmi

void conv_lut_block__avx512vbmi(const LutJob& job, int vector_begin, int vector_end,
                                unsigned char* scratch) {
  isa_lut_avx512vbmi::block(job, vector_begin, vector_end, scratch);
}
unsigned conv_lut_index__avx512vbmi(const LutJob& job, const uint8_t* codes, int row_stride,
                                    const uint8_t* pad_byte, uint8_t* index, uint8_t* temp) {
  return isa_lut_avx512vbmi::build_index(job, codes, row_stride, pad_byte, index, temp);
}

}  // namespace mixnas::rt
