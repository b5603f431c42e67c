// rng.h — a small, seeded, portable random number generator (xoshiro256**).
//
// The same seed gives the same stream on every platform and compiler (unlike the
// distributions in <random>), so weight initialisation, dropout masks, shuffling and
// augmentation are reproducible. The whole state is four words and can be saved and
// restored to resume a run exactly.
#pragma once

#include <array>
#include <cstdint>

namespace scratchnet {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { seed_with(seed); }
  void seed_with(uint64_t seed);

  uint64_t next_u64();
  float uniform();                       // [0, 1), 24 random bits
  float uniform(float low, float high);  // [low, high)
  float normal();                        // mean 0, std 1 (Box–Muller)
  uint64_t below(uint64_t n);            // [0, n), unbiased; n > 0

  std::array<uint64_t, 4> state() const { return s_; }
  void set_state(const std::array<uint64_t, 4>& s) { s_ = s; }

 private:
  std::array<uint64_t, 4> s_{};
};

}  // namespace scratchnet
