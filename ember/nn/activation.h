// Activation functions by name, and a module wrapping one (nn.GELU, nn.ReLU, ...)
// so that they can sit in a Sequential.
#pragma once

#include <string>

#include "ember/nn/module.h"

namespace ember::nn {

// swiglu is gated: only the MLP can apply it (silu(gate) * value).
enum class Activation { gelu, gelu_tanh, relu, silu, tanh, swiglu };
Activation activation_from_name(const std::string& name);  // "gelu", "gelu_tanh", "relu", "silu", "tanh", "swiglu"
std::string activation_name(Activation a);
// Applies an ungated activation.
Tensor activate(Activation a, const Tensor& x);

class ActivationLayer : public UnaryModule {
 public:
  explicit ActivationLayer(Activation a);
  Tensor forward(const Tensor& x) override { return activate(activation, x); }
  std::string type_name() const override { return "ActivationLayer"; }
  std::string extra_repr() const override { return activation_name(activation); }

  Activation activation;
};

}  // namespace ember::nn
