// Shared helpers for the graph compiler tests: random inputs and closeness checks.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ember/ember.h"

namespace ember::graph_test {

inline Tensor random(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return randn(shape, DType::f32, Device::cpu(), &gen);
}

// Largest |a - b| over all elements (shapes must match).
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(shape_str(a.shape()), shape_str(b.shape()));
  std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) m = std::max(m, std::fabs(x[i] - y[i]));
  return m;
}

inline void expect_equal(const Tensor& a, const Tensor& b) { EXPECT_EQ(max_abs_diff(a, b), 0.0); }

}  // namespace ember::graph_test
