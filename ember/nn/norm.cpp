// LayerNorm and RMSNorm layers over the fused nn ops.
#include "ember/nn/norm.h"

#include "ember/ops/creation.h"
#include "ember/ops/nn_ops.h"

namespace ember::nn {
namespace {
void check_input(const Tensor& x, int64_t dim, const char* layer) {
  EMBER_CHECK(x.ndim() >= 1 && x.shape(-1) == dim, layer, "expects input [..., ", dim, "], got ",
              shape_str(x.shape()));
}
}  // namespace

LayerNorm::LayerNorm(int64_t dim_, double eps_, bool affine, bool with_bias) : dim(dim_), eps(eps_) {
  EMBER_CHECK(dim > 0, "LayerNorm", "dim must be positive, got ", dim);
  EMBER_CHECK(eps >= 0, "LayerNorm", "eps must be non-negative, got ", eps);
  if (affine) {
    weight = register_parameter("weight", ones({dim}));
    if (with_bias) bias = register_parameter("bias", zeros({dim}));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  check_input(x, dim, "LayerNorm");
  return layer_norm(x, weight, bias, eps);
}

std::string LayerNorm::extra_repr() const {
  return str_cat(dim, ", eps=", eps, ", affine=", weight.defined() ? "true" : "false",
                 ", bias=", bias.defined() ? "true" : "false");
}

RMSNorm::RMSNorm(int64_t dim_, double eps_) : dim(dim_), eps(eps_) {
  EMBER_CHECK(dim > 0, "RMSNorm", "dim must be positive, got ", dim);
  EMBER_CHECK(eps >= 0, "RMSNorm", "eps must be non-negative, got ", eps);
  weight = register_parameter("weight", ones({dim}));
}

Tensor RMSNorm::forward(const Tensor& x) {
  check_input(x, dim, "RMSNorm");
  return rms_norm(x, weight, eps);
}

std::string RMSNorm::extra_repr() const { return str_cat(dim, ", eps=", eps); }

}  // namespace ember::nn
