// Linear layer.
#include "ember/nn/linear.h"

#include <cmath>

#include "ember/nn/init.h"
#include "ember/ops/linalg.h"

namespace ember::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias, Generator* gen) : in_features(in), out_features(out) {
  EMBER_CHECK(in > 0 && out > 0, "Linear", "feature sizes must be positive, got in=", in, " out=", out);
  weight = register_parameter("weight", Tensor::empty({out, in}));
  init::kaiming_uniform_(weight, std::sqrt(5.0), init::FanMode::fan_in, "leaky_relu", gen);
  if (with_bias) {
    bias = register_parameter("bias", Tensor::empty({out}));
    double bound = 1.0 / std::sqrt(double(in));
    init::uniform_(bias, -bound, bound, gen);
  }
}

Tensor Linear::forward(const Tensor& x) {
  EMBER_CHECK(x.ndim() >= 1 && x.shape(-1) == in_features, "Linear", "expects input [..., ", in_features,
              "], got ", shape_str(x.shape()));
  return linear(x, weight, bias);
}

std::string Linear::extra_repr() const {
  return str_cat("in_features=", in_features, ", out_features=", out_features,
                 ", bias=", bias.defined() ? "true" : "false");
}

}  // namespace ember::nn
