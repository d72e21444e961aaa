// Shared fixtures for the optimizer tests: a 6-element parameter and a
// deterministic, parameter-dependent gradient that the PyTorch reference
// numbers in the tests were produced with:
//   g_i(t) = p_i * (0.5 + 0.1 i) + 0.3 cos(t + i)   computed in float64 from p,
// then rounded to the parameter's dtype (as torch's .float() / .to(dtype)).
#pragma once

#include <cmath>
#include <vector>

#include "ember/ember.h"

namespace ember::optim_test {

inline const std::vector<double> kP0 = {0.5, -1.2, 2.0, 0.03, -0.7, 1.5};

inline std::vector<double> grad_values(const std::vector<double>& p, int t) {
  std::vector<double> g(p.size());
  for (size_t i = 0; i < p.size(); ++i) g[i] = p[i] * (0.5 + 0.1 * double(i)) + 0.3 * std::cos(double(t) + double(i));
  return g;
}

inline Tensor make_param(DType dtype = DType::f32, const std::vector<double>& values = kP0) {
  Tensor p = tensor(values, {2, 3}, dtype);
  p.requires_grad_();
  return p;
}

// Sets p.grad from the current value of p, as the reference script does.
inline void set_test_grad(const Tensor& p, int t) {
  std::vector<double> pv = p.to_vector<double>();
  std::vector<double> g = grad_values(pv, t);
  if (p.dtype() == DType::bf16 || p.dtype() == DType::f16) {
    // torch rounds float64 -> float32 -> 16-bit; do the same two roundings.
    for (double& v : g) v = double(float(v));
  }
  p.set_grad(tensor(g, p.shape(), p.dtype()));
}

inline void expect_near_all(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

}  // namespace ember::optim_test
