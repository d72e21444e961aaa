// The activation table.
#include "ember/nn/activation.h"

#include "ember/ops/elementwise.h"

namespace ember::nn {

Activation activation_from_name(const std::string& name) {
  if (name == "gelu") return Activation::gelu;
  if (name == "gelu_tanh") return Activation::gelu_tanh;
  if (name == "relu") return Activation::relu;
  if (name == "silu") return Activation::silu;
  if (name == "tanh") return Activation::tanh;
  if (name == "swiglu") return Activation::swiglu;
  fail("activation", "unknown activation '", name, "' (expected gelu, gelu_tanh, relu, silu, tanh or swiglu)");
}

std::string activation_name(Activation a) {
  switch (a) {
    case Activation::gelu: return "gelu";
    case Activation::gelu_tanh: return "gelu_tanh";
    case Activation::relu: return "relu";
    case Activation::silu: return "silu";
    case Activation::tanh: return "tanh";
    case Activation::swiglu: return "swiglu";
  }
  return "?";
}

Tensor activate(Activation a, const Tensor& x) {
  switch (a) {
    case Activation::gelu: return gelu(x);
    case Activation::gelu_tanh: return gelu(x, true);
    case Activation::relu: return relu(x);
    case Activation::silu: return silu(x);
    case Activation::tanh: return ember::tanh(x);
    case Activation::swiglu: break;
  }
  fail("activation", "swiglu is gated and needs the MLP's two projections");
}

ActivationLayer::ActivationLayer(Activation a) : activation(a) {
  EMBER_CHECK(a != Activation::swiglu, "ActivationLayer", "swiglu is gated; use it through MLP");
}

}  // namespace ember::nn
