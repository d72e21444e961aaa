// Shared helpers for the graph compiler tests: random inputs, closeness checks,
// and a pass checked against eager execution.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ember/ember.h"
#include "ember/graph/compile.h"

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

// Traces fn on inputs, applies `pass`, checks the graph is valid, and that the
// executor's outputs equal fn's eager outputs within `tol`.
template <typename Pass>
graph::Graph check_pass(const TensorFn& fn, const std::vector<Tensor>& inputs, Pass&& pass, double tol = 0.0) {
  graph::Graph g = graph::trace(fn, inputs);
  pass(g);
  g.verify();
  graph::Graph copy = g;
  graph::Executor exec(std::move(copy));
  std::vector<Tensor> got = exec.run(inputs);
  std::vector<Tensor> want = fn(inputs);
  EXPECT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) EXPECT_LE(max_abs_diff(got[i], want[i]), tol) << "output " << i;
  return g;
}

}  // namespace ember::graph_test
