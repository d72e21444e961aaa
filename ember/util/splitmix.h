// SplitMix64: the small deterministic generator behind ember's text and data
// generators (the built-in corpus, the chat curriculum). It gives the same
// numbers on every machine and standard library, which std::mt19937 plus
// std::uniform_int_distribution does not. Tensors use Philox (core/random.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace ember {

class SplitMix64 {
 public:
  // `salt` separates the streams of different generators seeded alike.
  explicit SplitMix64(uint64_t seed, uint64_t salt = 0) : s_(seed ^ salt) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) by multiply-shift (no modulo bias worth the name for small n).
  int below(int n) { return static_cast<int>((static_cast<unsigned __int128>(next()) * uint64_t(n)) >> 64); }
  int between(int lo, int hi) { return lo + below(hi - lo + 1); }  // inclusive
  bool chance(int percent) { return below(100) < percent; }
  template <typename V>
  const auto& pick(const V& v) { return v[static_cast<size_t>(below(static_cast<int>(v.size())))]; }

 private:
  uint64_t s_;
};

// 0 .. n-1 in a Fisher-Yates order drawn from SplitMix64(state): the one
// shuffle behind every seeded epoch order (SFT rows, preference lists, PPO
// minibatches), identical on every machine.
template <typename Index = size_t>
std::vector<Index> shuffled_indices(size_t n, uint64_t state) {
  std::vector<Index> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = Index(i);
  SplitMix64 rng(state);
  for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[size_t(rng.next() % i)]);
  return order;
}

}  // namespace ember
