#include "deploy/runtime/codes.h"

#include <array>
#include <cstring>

namespace mixnas::rt {

int code_storage_bits(int bits) {
  if (bits <= 2) return bits;
  if (bits <= 4) return 4;
  return bits <= 8 ? 8 : bits;
}

namespace {

// Byte -> its 8 / 4 codes of 1 / 2 bits, as the bytes of one word (lowest code first).
struct UnpackTables {
  std::array<uint64_t, 256> one;
  std::array<uint32_t, 256> two;
  UnpackTables() {
    for (unsigned b = 0; b < 256; ++b) {
      uint64_t w1 = 0;
      uint32_t w2 = 0;
      for (int i = 0; i < 8; ++i) w1 |= uint64_t{(b >> i) & 1u} << (8 * i);
      for (int i = 0; i < 4; ++i) w2 |= ((b >> (2 * i)) & 3u) << (8 * i);
      one[b] = w1;
      two[b] = w2;
    }
  }
};
const UnpackTables& tables() {
  static const UnpackTables t;
  return t;
}

inline unsigned code_at(const uint8_t* stream, int s, int64_t e) {
  const int64_t bit = e * s;
  return (stream[bit >> 3] >> (bit & 7)) & ((1u << s) - 1u);
}

inline void set_code(uint8_t* stream, int s, int64_t e, unsigned q) {
  const int64_t bit = e * s;
  const unsigned mask = ((1u << s) - 1u) << (bit & 7);
  uint8_t& b = stream[bit >> 3];
  b = static_cast<uint8_t>((b & ~mask) | ((q << (bit & 7)) & mask));
}

typedef uint8_t V16 __attribute__((vector_size(16)));

// 2 * n codes from n whole bytes of nibbles.
void unpack_nibbles(const uint8_t* src, int64_t n, uint8_t* out) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    V16 v;
    std::memcpy(&v, src + i, 16);
    const V16 lo = v & 15, hi = v >> 4;
    const V16 a =
        __builtin_shufflevector(lo, hi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const V16 b = __builtin_shufflevector(lo, hi, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14,
                                          30, 15, 31);
    std::memcpy(out + 2 * i, &a, 16);
    std::memcpy(out + 2 * i + 16, &b, 16);
  }
  for (; i < n; ++i) {
    out[2 * i] = src[i] & 15;
    out[2 * i + 1] = src[i] >> 4;
  }
}

// 4 * n codes from n whole bytes of 2-bit codes.
void unpack_crumbs(const uint8_t* src, int64_t n, const uint32_t* table, uint8_t* out) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    V16 v;
    std::memcpy(&v, src + i, 16);
    const V16 c0 = v & 3, c1 = (v >> 2) & 3, c2 = (v >> 4) & 3, c3 = v >> 6;
    // Pairs (c0, c1) and (c2, c3) per byte, then the pairs interleaved: c0 c1 c2 c3 per byte.
    const V16 a0 =
        __builtin_shufflevector(c0, c1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const V16 a1 = __builtin_shufflevector(c0, c1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14,
                                           30, 15, 31);
    const V16 b0 =
        __builtin_shufflevector(c2, c3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const V16 b1 = __builtin_shufflevector(c2, c3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14,
                                           30, 15, 31);
    const V16 r[4] = {
        __builtin_shufflevector(a0, b0, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23),
        __builtin_shufflevector(a0, b0, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30,
                                31),
        __builtin_shufflevector(a1, b1, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23),
        __builtin_shufflevector(a1, b1, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30,
                                31)};
    std::memcpy(out + 4 * i, r, 64);
  }
  for (; i < n; ++i) std::memcpy(out + 4 * i, &table[src[i]], 4);
}

// n whole bytes of nibbles from 2 * n codes.
void pack_nibbles(const uint8_t* codes, int64_t n, uint8_t* dst) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {  // 8 codes -> 4 bytes
    uint64_t x;
    std::memcpy(&x, codes + 2 * i, 8);
    uint64_t y = (x | x >> 4) & 0x00FF00FF00FF00FFull;  // byte 2k: code 2k | code 2k+1 << 4
    y = (y | y >> 8) & 0x0000FFFF0000FFFFull;
    const uint32_t z = static_cast<uint32_t>(y | y >> 16);
    std::memcpy(dst + i, &z, 4);
  }
  for (; i < n; ++i) dst[i] = static_cast<uint8_t>(codes[2 * i] | codes[2 * i + 1] << 4);
}

}  // namespace

void unpack_codes(const uint8_t* stream, int s, int64_t first, int64_t count, uint8_t* out) {
  if (s >= 8) {
    std::memcpy(out, stream + first, static_cast<size_t>(count));
    return;
  }
  const int per_byte = 8 / s;
  int64_t e = first, end = first + count;
  for (; e < end && e % per_byte; ++e) *out++ = static_cast<uint8_t>(code_at(stream, s, e));
  const int64_t whole = (end - e) / per_byte;  // bytes of the aligned middle
  const uint8_t* src = stream + e * s / 8;
  if (s == 4) {
    unpack_nibbles(src, whole, out);
  } else if (s == 2) {
    unpack_crumbs(src, whole, tables().two.data(), out);
  } else {
    const auto& t = tables().one;
    for (int64_t i = 0; i < whole; ++i) std::memcpy(out + 8 * i, &t[src[i]], 8);
  }
  out += whole * per_byte;
  for (e += whole * per_byte; e < end; ++e) *out++ = static_cast<uint8_t>(code_at(stream, s, e));
}

void pack_codes(const uint8_t* codes, int64_t count, int s, uint8_t* stream, int64_t first) {
  if (s >= 8) {
    std::memcpy(stream + first, codes, static_cast<size_t>(count));
    return;
  }
  const int per_byte = 8 / s;
  int64_t e = first, end = first + count;
  for (; e < end && e % per_byte; ++e) set_code(stream, s, e, *codes++);
  const int64_t whole = (end - e) / per_byte;
  uint8_t* dst = stream + e * s / 8;
  if (s == 4) {
    pack_nibbles(codes, whole, dst);
  } else {
    for (int64_t i = 0; i < whole; ++i) {
      unsigned b = 0;
      for (int k = 0; k < per_byte; ++k)
        b |= static_cast<unsigned>(codes[i * per_byte + k]) << (k * s);
      dst[i] = static_cast<uint8_t>(b);
    }
  }
  codes += whole * per_byte;
  for (e += whole * per_byte; e < end; ++e) set_code(stream, s, e, *codes++);
}

}  // namespace mixnas::rt
