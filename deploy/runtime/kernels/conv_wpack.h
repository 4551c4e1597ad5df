#pragma once
// Internal: weight codes held at their bit-width by the integer GEMM and depthwise plans
// (docs/kernels.md, "Packed weights").
//
// A code sequence is stored at s = 1, 2, 4 or 8 bits per code (wpack_storage_bits: 3-bit codes as
// 4) in 64-byte chunks of 512 / s codes. Byte i of a chunk holds, in bits [g*s, g*s + s), code
// g * 64 + i of the chunk (g < 8 / s): the 64 codes of one group are one shift and one mask of the
// whole chunk away, so an unpack needs no byte interleaving (conv_impl.h, unpack_weight_codes).
// Codes are s-bit two's complement; 1-bit codes store +1 as a set bit and -1 as a clear one
// (docs/numerics.md). The last chunk is padded with zero bits.
//
// The size helpers are constexpr integer arithmetic (ISA kernel sources include this header too);
// pack and the scalar unpack (the layout's reference) live in conv_wpack.cpp.
#include <cstddef>
#include <cstdint>

namespace mixnas::rt {

constexpr int kWpackChunkBytes = 64;

// Bits per stored code for w_bits in 1..8.
constexpr int wpack_storage_bits(int w_bits) {
  return w_bits <= 1 ? 1 : w_bits <= 2 ? 2 : w_bits <= 4 ? 4 : 8;
}
constexpr size_t wpack_chunk_codes(int s) {
  return static_cast<size_t>(kWpackChunkBytes) * 8 / s;
}
constexpr size_t wpack_chunks(size_t codes, int s) {
  return (codes + wpack_chunk_codes(s) - 1) / wpack_chunk_codes(s);
}
// Bytes of `codes` codes stored at s bits (whole chunks).
constexpr size_t wpack_bytes(size_t codes, int s) {
  return wpack_chunks(codes, s) * kWpackChunkBytes;
}
// Codes an unpack writes for `codes` codes: whole chunks (the destination must hold them).
constexpr size_t wpack_unpacked_codes(size_t codes, int s) {
  return wpack_chunks(codes, s) * wpack_chunk_codes(s);
}

// Writes codes[0..n) (each in the s-bit range; 1-bit: -1 or +1) as wpack_bytes(n, s) bytes.
void wpack_codes(const int8_t* codes, size_t n, int s, uint8_t* dst);
// The reference decode: n codes from `src` (stored by wpack_codes) into dst[0..n).
void wunpack_codes_reference(const uint8_t* src, size_t n, int s, int8_t* dst);

}  // namespace mixnas::rt
