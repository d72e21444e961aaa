// The transformer feed-forward block: c_fc -> activation -> c_proj (GPT-2's
// names), or the gated SwiGLU variant.
#pragma once

#include <memory>
#include <string>

#include "ember/core/random.h"
#include "ember/nn/activation.h"
#include "ember/nn/linear.h"

namespace ember::nn {

class MLP : public UnaryModule {
 public:
  // dim -> hidden -> dim. For swiglu, c_fc produces the gate and the value
  // together ([2 * hidden], gate first) so one matmul does both:
  // c_proj(silu(gate) * value).
  MLP(int64_t dim, int64_t hidden, Activation activation = Activation::gelu, bool bias = true,
      Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "MLP"; }
  std::string extra_repr() const override;

  int64_t dim, hidden;
  Activation activation;
  std::shared_ptr<Linear> c_fc, c_proj;
};

}  // namespace ember::nn
