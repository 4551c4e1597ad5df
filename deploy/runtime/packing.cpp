#include "deploy/runtime/packing.h"

#include <cstring>
#include <limits>
#include <string>

#include "core/error.h"

namespace mixnas::rt {

uint64_t packed_bytes(BufferLayout layout, int bits, uint64_t count) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max() / 8;
  if (count > kMax)
    throw Error("weight buffer: value count " + std::to_string(count) + " overflows");
  switch (layout) {
    case BufferLayout::kF32:
      if (bits != 32)
        throw Error("weight buffer: F32 layout needs bits = 32, got " + std::to_string(bits));
      return count * 4;
    case BufferLayout::kDenseCodes:
      if (bits < 1 || bits > 8)
        throw Error("weight buffer: DenseCodes layout needs bits in 1..8, got " +
                    std::to_string(bits));
      return (count * static_cast<uint64_t>(bits) + 7) / 8;
  }
  throw Error("weight buffer: unknown layout " + std::to_string(static_cast<int>(layout)));
}

std::vector<uint8_t> F32Layout::pack(const float* values, size_t count) {
  std::vector<uint8_t> out(count * 4);
  if (count)
    std::memcpy(out.data(), values, count * 4);  // little-endian hosts only (x86-64, aarch64)
  return out;
}

void F32Layout::unpack(const uint8_t* data, size_t bytes, size_t count, float* out) {
  if (bytes != count * 4)
    throw Error("F32 buffer: " + std::to_string(bytes) + " bytes for " + std::to_string(count) +
                " values (expected " + std::to_string(count * 4) + ")");
  if (count) std::memcpy(out, data, count * 4);
}

std::vector<uint8_t> DenseCodesLayout::pack(const int8_t* codes, size_t count, int bits) {
  std::vector<uint8_t> out(packed_bytes(BufferLayout::kDenseCodes, bits, count), 0);
  const unsigned mask = (1u << bits) - 1u;
  for (size_t i = 0; i < count; ++i) {
    const int q = codes[i];
    if (q < min_code(bits) || q > max_code(bits) || (bits == 1 && q == 0))
      throw Error("DenseCodes pack: code " + std::to_string(q) + " at index " + std::to_string(i) +
                  " is outside the " + std::to_string(bits) + "-bit range");
    const unsigned field = bits == 1 ? (q > 0 ? 1u : 0u) : (static_cast<unsigned>(q) & mask);
    const size_t bit = i * static_cast<size_t>(bits);
    // A field spans at most two bytes (bits <= 8).
    const unsigned shifted = field << (bit % 8);
    out[bit / 8] |= static_cast<uint8_t>(shifted & 0xffu);
    if ((bit % 8) + bits > 8) out[bit / 8 + 1] |= static_cast<uint8_t>(shifted >> 8);
  }
  return out;
}

void DenseCodesLayout::unpack(const uint8_t* data, size_t bytes, size_t count, int bits,
                              int8_t* out) {
  const uint64_t need = packed_bytes(BufferLayout::kDenseCodes, bits, count);
  if (bytes != need)
    throw Error("DenseCodes buffer: " + std::to_string(bytes) + " bytes for " +
                std::to_string(count) + " " + std::to_string(bits) + "-bit codes (expected " +
                std::to_string(need) + ")");
  const unsigned mask = (1u << bits) - 1u;
  for (size_t i = 0; i < count; ++i) {
    const size_t bit = i * static_cast<size_t>(bits);
    unsigned word = data[bit / 8];
    if ((bit % 8) + bits > 8) word |= static_cast<unsigned>(data[bit / 8 + 1]) << 8;
    const unsigned field = (word >> (bit % 8)) & mask;
    if (bits == 1) {
      out[i] = field ? 1 : -1;
    } else {
      const int sign_bit = 1 << (bits - 1);
      out[i] = static_cast<int8_t>((field & (sign_bit - 1)) - (field & sign_bit));
    }
  }
}

std::vector<float> unpack_f32_buffer(const WeightBuffer& buffer) {
  if (buffer.layout != BufferLayout::kF32) throw Error("weight buffer is not F32");
  std::vector<float> out(buffer.count);
  F32Layout::unpack(buffer.data.data(), buffer.data.size(), buffer.count, out.data());
  return out;
}

std::vector<int8_t> unpack_code_buffer(const WeightBuffer& buffer) {
  if (buffer.layout != BufferLayout::kDenseCodes) throw Error("weight buffer is not DenseCodes");
  std::vector<int8_t> out(buffer.count);
  DenseCodesLayout::unpack(buffer.data.data(), buffer.data.size(), buffer.count, buffer.bits,
                           out.data());
  return out;
}

}  // namespace mixnas::rt
