#pragma once
// Packed weight layouts of .mxr buffers. Each layout is a named type whose pack and unpack live
// side by side, so that the exporter, the loader and the tests share one definition.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "deploy/runtime/graph.h"

namespace mixnas::rt {

// Bytes a buffer of `count` values takes in `layout` at `bits`. Throws mixnas::Error when the
// combination is invalid or the size overflows.
uint64_t packed_bytes(BufferLayout layout, int bits, uint64_t count);

// float32, little endian, 4 bytes per value.
struct F32Layout {
  static std::vector<uint8_t> pack(const float* values, size_t count);
  static void unpack(const uint8_t* data, size_t bytes, size_t count, float* out);
};

// Signed n-bit weight codes (n = 1..8) in a dense little-endian bit stream: value i occupies bits
// [i*n, (i+1)*n) of the stream (bit k of the stream is bit k%8 of byte k/8). Two's complement
// for n >= 2, range [-2^(n-1), 2^(n-1)-1]; for n = 1 a set bit is +1 and a clear bit -1 (codes
// must be +-1). Padding bits of the last byte are zero.
struct DenseCodesLayout {
  static std::vector<uint8_t> pack(const int8_t* codes, size_t count, int bits);
  static void unpack(const uint8_t* data, size_t bytes, size_t count, int bits, int8_t* out);
  static int min_code(int bits) { return bits == 1 ? -1 : -(1 << (bits - 1)); }
  static int max_code(int bits) { return bits == 1 ? 1 : (1 << (bits - 1)) - 1; }
};

// Decodes a constant tensor's buffer: float values (F32) or signed codes (DenseCodes).
std::vector<float> unpack_f32_buffer(const WeightBuffer& buffer);
std::vector<int8_t> unpack_code_buffer(const WeightBuffer& buffer);

}  // namespace mixnas::rt
