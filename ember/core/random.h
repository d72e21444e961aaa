// Reproducible random numbers: a counter-based Philox4x32-10 generator.
//
// Counter-based means element i of a random tensor is a pure function of
// (seed, offset + i): kernels fill tensors in parallel, on any device, and get
// the same numbers; the whole state is two integers, so saving and restoring
// it in a checkpoint is trivial and exact.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>

namespace ember {

struct GeneratorState {
  uint64_t seed = 0;
  uint64_t offset = 0;  // number of 4x32-bit blocks already used
  bool operator==(const GeneratorState&) const = default;
};

// One Philox4x32-10 block: four 32-bit random words for (key=seed, counter).
std::array<uint32_t, 4> philox4x32(uint64_t seed, uint64_t counter_hi, uint64_t counter_lo);

// Uniform float in [0, 1) from 24 random bits; uniform double from 53 bits.
inline float uniform_float(uint32_t bits) { return float(bits >> 8) * (1.0f / 16777216.0f); }
inline double uniform_double(uint32_t hi, uint32_t lo) {
  return double(((uint64_t(hi) << 32) | lo) >> 11) * (1.0 / 9007199254740992.0);
}

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) { state_.seed = seed; }
  void manual_seed(uint64_t seed);
  GeneratorState state() const;
  void set_state(const GeneratorState& s);
  // Reserves `blocks` Philox blocks and returns the first block's counter; a
  // kernel then uses counters [first, first + blocks).
  uint64_t reserve(uint64_t blocks);

 private:
  mutable std::mutex mutex_;
  GeneratorState state_;
};

Generator& default_generator();
void manual_seed(uint64_t seed);  // seeds the default generator

}  // namespace ember
