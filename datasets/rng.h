#pragma once
// A small, portable random generator (splitmix64): the same stream on every compiler and standard
// library, so generated datasets and augmentations are byte-identical everywhere for a seed.
#include <cstdint>

namespace mixnas::data {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  // Derives an independent stream from a seed and up to three indices (split, epoch, item...).
  static Rng derive(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0) {
    Rng r(seed ^ 0x6a09e667f3bcc909ULL);
    uint64_t s = r.next() ^ (a * 0x9e3779b97f4a7c15ULL);
    s = Rng(s).next() ^ (b * 0xbf58476d1ce4e5b9ULL);
    s = Rng(s).next() ^ (c * 0x94d049bb133111ebULL);
    return Rng(Rng(s).next());
  }
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [lo, hi] (inclusive).
  int range(int lo, int hi) {
    return lo + static_cast<int>(next() % static_cast<uint64_t>(hi - lo + 1));
  }
  bool chance(double p) { return uniform() < p; }

 private:
  uint64_t state_;
};

}  // namespace mixnas::data
