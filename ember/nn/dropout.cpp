// Dropout layer.
#include "ember/nn/dropout.h"

#include "ember/ops/nn_ops.h"

namespace ember::nn {

Dropout::Dropout(double p_) : p(p_) {
  EMBER_CHECK(p >= 0.0 && p < 1.0, "Dropout", "probability must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p == 0.0) return x;
  return dropout(x, p, true);
}

std::string Dropout::extra_repr() const { return str_cat("p=", p); }

}  // namespace ember::nn
