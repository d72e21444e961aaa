// Finite-difference gradient checking (float64), the ground truth every
// differentiable op is tested against.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ember/core/tensor.h"

namespace ember {

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;
  std::string message;  // which input and element disagreed, with both values
};

// Checks d<u, fn(inputs)>/d(inputs) computed by autograd against central
// differences, for a fixed random cotangent u. Floating inputs are converted
// to float64 and differentiated; other inputs (indices) are passed through.
// `fn` may return a tensor of any shape.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, double eps = 1e-6, double atol = 1e-6,
                          double rtol = 1e-4);

}  // namespace ember
