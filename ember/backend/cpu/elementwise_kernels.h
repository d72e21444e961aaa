// CPU kernels for elementwise primitives: unary, binary (with broadcasting),
// where, and the strided copy/cast that also makes tensors contiguous.
#pragma once

#include "ember/core/op_kinds.h"
#include "ember/core/tensor.h"

namespace ember::cpu {

// out is contiguous with the broadcast shape; inputs may be any strided views.
void unary(UnaryOp op, const Tensor& in, Tensor& out);
void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out);
void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out);
void clamp(const Tensor& in, double lo, double hi, Tensor& out);
// out = g * f'(x) for f in {gelu, gelu_tanh, silu}; x, g and out share one shape.
void activation_grad(UnaryOp op, const Tensor& x, const Tensor& g, Tensor& out);
// Copies `src` (any strides, broadcast to out's shape) into `out` (any strides), converting dtype.
void copy_cast(const Tensor& src, Tensor& out);
void fill(Tensor& out, double value);

}  // namespace ember::cpu
