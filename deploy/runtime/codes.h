#pragma once
// Activation codes in memory. A tensor of b-bit codes (NUMERICS: unsigned, [0, 2^b - 1]) is held
// at s = code_storage_bits(b) bits per code: 1-, 2- and 4-bit codes pack 8, 4 and 2 codes per byte
// (3-bit codes take 4 bits), wider codes one byte each. The codes form one little-endian stream
// in NHWC order: element e (pixel * row_stride + channel) occupies bits [e * s, e * s + s) of the
// stream, bit k of the stream being bit k % 8 of byte k / 8. s = 8 is the plain byte layout.
//
// The memory planner packs a code tensor only where every pixel row starts on a byte
// (channels * s a multiple of 8, and so every concat slice offset); readers that cannot read the
// stream in place unpack a bounded piece of it (a conv a band of input rows, see kernels/conv.h).
#include <cstdint>

namespace mixnas::rt {

// 1 -> 1, 2 -> 2, 3..4 -> 4, 5..8 -> 8 (and 32 for floats: returned as is).
int code_storage_bits(int bits);

// Bytes of `count` codes held at `storage_bits`.
inline int64_t code_stream_bytes(int64_t count, int storage_bits) {
  return (count * storage_bits + 7) / 8;
}

// Codes [first, first + count) of a stream held at `storage_bits` (1, 2, 4 or 8) -> one byte each.
void unpack_codes(const uint8_t* stream, int storage_bits, int64_t first, int64_t count,
                  uint8_t* out);

// `count` codes (one byte each, each < 2^storage_bits) -> stream positions [first, first + count).
// Bits of the stream outside those positions are kept.
void pack_codes(const uint8_t* codes, int64_t count, int storage_bits, uint8_t* stream,
                int64_t first);

}  // namespace mixnas::rt
