// MLP block.
#include "ember/nn/mlp.h"

#include "ember/ops/elementwise.h"
#include "ember/ops/shape_ops.h"

namespace ember::nn {

MLP::MLP(int64_t dim_, int64_t hidden_, Activation act, bool bias, Generator* gen)
    : dim(dim_), hidden(hidden_), activation(act) {
  EMBER_CHECK(dim > 0 && hidden > 0, "MLP", "sizes must be positive, got dim=", dim, " hidden=", hidden);
  int64_t fc_out = act == Activation::swiglu ? 2 * hidden : hidden;
  c_fc = register_module("c_fc", std::make_shared<Linear>(dim, fc_out, bias, gen));
  c_proj = register_module("c_proj", std::make_shared<Linear>(hidden, dim, bias, gen));
}

Tensor MLP::forward(const Tensor& x) {
  Tensor h = c_fc->forward(x);  // [..., hidden] or [..., 2 * hidden]
  if (activation == Activation::swiglu) {
    Tensor gate = narrow(h, -1, 0, hidden);
    Tensor value = narrow(h, -1, hidden, hidden);
    h = silu(gate) * value;
  } else {
    h = activate(activation, h);
  }
  return c_proj->forward(h);
}

std::string MLP::extra_repr() const {
  return str_cat("dim=", dim, ", hidden=", hidden, ", activation=", activation_name(activation));
}

}  // namespace ember::nn
