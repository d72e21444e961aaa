// Deterministic test operands for the CPU product kernels: n floats in
// [-1, 1] in steps of 1/1000 from a linear congruential sequence, so that a
// seed names the same values on every machine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ember::cpu::testing {

inline std::vector<float> filled(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    v[i] = float(int32_t(seed >> 8) % 2001 - 1000) / 1000.0f;
  }
  return v;
}

}  // namespace ember::cpu::testing
