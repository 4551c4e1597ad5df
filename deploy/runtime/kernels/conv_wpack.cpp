#include "deploy/runtime/kernels/conv_wpack.h"

#include <cstring>

namespace mixnas::rt {

namespace {

// The s-bit field of a code: two's complement, 1-bit codes as +1 -> 1, -1 -> 0.
unsigned field_of(int8_t q, int s) {
  if (s == 1) return q > 0 ? 1u : 0u;
  return static_cast<unsigned>(q) & ((1u << s) - 1);
}

int8_t code_of(unsigned field, int s) {
  if (s == 1) return field ? 1 : -1;
  if (s == 8) return static_cast<int8_t>(field);
  const int half = 1 << (s - 1);
  return static_cast<int8_t>((static_cast<int>(field) ^ half) - half);
}

}  // namespace

void wpack_codes(const int8_t* codes, size_t n, int s, uint8_t* dst) {
  const size_t per_chunk = wpack_chunk_codes(s);
  std::memset(dst, 0, wpack_bytes(n, s));
  for (size_t e = 0; e < n; ++e) {
    const size_t chunk = e / per_chunk, in_chunk = e % per_chunk;
    const size_t group = in_chunk / kWpackChunkBytes, byte = in_chunk % kWpackChunkBytes;
    dst[chunk * kWpackChunkBytes + byte] |=
        static_cast<uint8_t>(field_of(codes[e], s) << (group * s));
  }
}

void wunpack_codes_reference(const uint8_t* src, size_t n, int s, int8_t* dst) {
  const size_t per_chunk = wpack_chunk_codes(s);
  for (size_t e = 0; e < n; ++e) {
    const size_t chunk = e / per_chunk, in_chunk = e % per_chunk;
    const size_t group = in_chunk / kWpackChunkBytes, byte = in_chunk % kWpackChunkBytes;
    const unsigned field = src[chunk * kWpackChunkBytes + byte] >> (group * s) & ((1u << s) - 1);
    dst[e] = code_of(field, s);
  }
}

}  // namespace mixnas::rt
