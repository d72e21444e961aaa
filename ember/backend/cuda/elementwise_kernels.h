// CUDA kernels for the elementwise primitives: unary, binary (with
// broadcasting), where, clamp, the fused activation derivative, and the
// strided copy/cast that also makes tensors contiguous. Same contract as
// backend/cpu/elementwise_kernels.h: inputs may be any strided views; every
// tensor lives on one CUDA device.
#pragma once

#include "ember/core/op_kinds.h"
#include "ember/core/tensor.h"

namespace ember::cuda {

void unary(UnaryOp op, const Tensor& in, Tensor& out);
void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out);
void where(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& out);
void clamp(const Tensor& in, double lo, double hi, Tensor& out);
void activation_grad(UnaryOp op, const Tensor& x, const Tensor& g, Tensor& out);
// Copies `src` (any strides, broadcast to out's shape) into `out` (any strides), converting dtype.
void copy_cast(const Tensor& src, Tensor& out);
void fill(Tensor& out, double value);

}  // namespace ember::cuda
