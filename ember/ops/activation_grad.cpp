// activation_grad: the fused backward of gelu (both forms) and silu,
// dx = g * f'(x) in one pass. Their composite backward is a dozen elementwise
// ops over the MLP's widest tensor, which made it about a tenth of a GPT
// training step. The primitive keeps second-order gradients: its own vjp is
// written in ember ops (f'' for x, activation_grad again for g).
#include "ember/backend/cpu/elementwise_kernels.h"
#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/elementwise_kernels.h"
#endif
#include "ember/ops/dispatch.h"
#include "ember/ops/elementwise.h"

namespace ember {
namespace {

constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kGeluCubic = 0.044715;

// f''(x), in ember ops (differentiable again).
Tensor second_derivative(UnaryOp op, const Tensor& x) {
  switch (op) {
    case UnaryOp::gelu_tanh: {
      // u = k (x + a x^3), t = tanh(u), u' = k (1 + 3 a x^2):
      // f'' = (1 - t^2) (u' - x t u'^2 + 3 a k x^2)
      Tensor x2 = x * x;
      Tensor t = tanh(kSqrt2OverPi * (x + kGeluCubic * x2 * x));
      Tensor du = kSqrt2OverPi * (1.0 + 3.0 * kGeluCubic * x2);
      return (1.0 - t * t) * (du - x * t * du * du + 3.0 * kGeluCubic * kSqrt2OverPi * x2);
    }
    case UnaryOp::gelu:  // phi(x) (2 - x^2)
      return kInvSqrt2Pi * exp(-0.5 * x * x) * (2.0 - x * x);
    case UnaryOp::silu: {  // s (1 - s) (2 + x (1 - 2 s))
      Tensor s = sigmoid(x);
      return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s));
    }
    default: fail("activation_grad", "no fused derivative for ", unary_op_name(op));
  }
}

class ActivationGradPrim final : public Primitive {
 public:
  explicit ActivationGradPrim(UnaryOp op) : op_(op) {}
  const char* name() const override { return "activation_grad"; }
  Attrs attrs() const override { return {{"op", std::string(unary_op_name(op_))}}; }
  std::vector<TensorSpec> output_specs(const std::vector<Tensor>& in) const override {
    if (in[0].shape() != in[1].shape())
      fail(name(), "x and grad shapes differ: ", shape_str(in[0].shape()), " and ", shape_str(in[1].shape()));
    if (in[0].dtype() != in[1].dtype())
      fail(name(), "x and grad dtypes differ: ", dtype_name(in[0].dtype()), " and ", dtype_name(in[1].dtype()));
    if (!is_floating(in[0].dtype())) fail(name(), "expects floating-point tensors, got ", dtype_name(in[0].dtype()));
    return {{in[0].shape(), in[0].dtype()}};
  }
  void eval_cpu(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cpu::activation_grad(op_, in[0], in[1], out[0]);
  }
#ifdef EMBER_WITH_CUDA
  void eval_cuda(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    cuda::activation_grad(op_, in[0], in[1], out[0]);
  }
#endif
  std::vector<Tensor> vjp(const std::vector<Tensor>& in, const std::vector<Tensor>&, const std::vector<Tensor>& ct,
                          const std::vector<bool>& needs) const override {
    const Tensor& x = in[0];
    const Tensor& g = in[1];
    const Tensor& c = ct[0];
    Tensor dx = needs[0] ? c * g * second_derivative(op_, x) : Tensor();
    Tensor dg = needs[1] ? activation_grad(op_, x, c) : Tensor();
    return {dx, dg};
  }

 private:
  UnaryOp op_;
};

}  // namespace

Tensor activation_grad(UnaryOp op, const Tensor& x, const Tensor& grad) {
  if (op != UnaryOp::gelu && op != UnaryOp::gelu_tanh && op != UnaryOp::silu)
    fail("activation_grad", "no fused derivative for ", unary_op_name(op), " (supported: gelu, gelu_tanh, silu)");
  return apply1(make_prim<ActivationGradPrim>(op), {x, grad});
}

}  // namespace ember
