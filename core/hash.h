#pragma once
// FNV-1a, 64 bit: the one hash of the project's names and fingerprints (device ids, model keys,
// layer seeds, dataset caches, golden outputs), and splitmix64, the one deterministic stream of
// synthetic inputs and weights. Neither is a security measure. Header-only, so the runtime and
// the agent use them too.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mixnas {

constexpr uint64_t kFnv1aOffset = 1469598103934665603ULL;
constexpr uint64_t kFnv1aPrime = 1099511628211ULL;

// Continues `h` over `size` bytes (pass the result back in to hash several parts as one).
inline uint64_t fnv1a(const void* data, size_t size, uint64_t h = kFnv1aOffset) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) h = (h ^ p[i]) * kFnv1aPrime;
  return h;
}

inline uint64_t fnv1a(std::string_view text, uint64_t h = kFnv1aOffset) {
  return fnv1a(text.data(), text.size(), h);
}

// The next value of the splitmix64 stream of `state` (Steele, Lea, Flood 2014).
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace mixnas
