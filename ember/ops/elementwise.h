// Elementwise ops: unary math, binary arithmetic and comparisons with NumPy
// broadcasting and type promotion, where, clamp, cast.
#pragma once

#include "ember/core/op_kinds.h"
#include "ember/core/tensor.h"

namespace ember {

// Unary.
Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x, bool tanh_approximation = false);
// grad * f'(x) for f = gelu, gelu_tanh or silu in one fused pass (their backward).
Tensor activation_grad(UnaryOp op, const Tensor& x, const Tensor& grad);
Tensor silu(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor erf(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor square(const Tensor& x);
Tensor reciprocal(const Tensor& x);
Tensor logical_not(const Tensor& x);
Tensor unary(UnaryOp op, const Tensor& x);

// Binary (broadcasting; the result dtype follows promote_types).
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, double exponent);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
// Comparisons return bool tensors.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);

// where(cond, a, b): a where cond is true, else b (all three broadcast).
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, double b);
// Clamps into [lo, hi]; pass -inf or +inf for a one-sided clamp.
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor cast(const Tensor& x, DType dtype);
// A contiguous copy (the same tensor when already contiguous).
Tensor contiguous(const Tensor& x);
// An independent contiguous copy with its own storage.
Tensor clone(const Tensor& x);
// Copies onto another device (the same tensor when already there).
Tensor to_device(const Tensor& x, Device device);

// Operators. A double operand becomes a scalar of the tensor's dtype (float32
// for an integer tensor with a fractional value), as in PyTorch.
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);

// A scalar tensor compatible with `like` for use in binary ops.
Tensor scalar_like(double value, const Tensor& like);

}  // namespace ember
