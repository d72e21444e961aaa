// Helpers shared by the distributed tests: the message of the ember::Error a
// call throws, and small per-rank tensors whose collectives are easy to
// compute by hand.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ember/ember.h"

namespace ember::dist_test {

// The error's message, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Rank r holds 10 r + i at element i: small integers, exact in every dtype.
inline Tensor ranked(DType dt, int64_t n, int rank) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = 10.0 * rank + double(i);
  return tensor(v, {n}, dt);
}

}  // namespace ember::dist_test
