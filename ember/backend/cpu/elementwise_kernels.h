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

// Contiguous float32 blocks for fused elementwise programs (ember/graph): the
// same scalar math as the tensor kernels above, over n elements in cache.
// `a_step`/`b_step` are 1 for an array and 0 for a broadcast scalar; y may alias
// an input. Comparisons and logical ops are not offered (they produce bools).
void unary_block_f32(UnaryOp op, const float* x, float* y, int64_t n);
void binary_block_f32(BinaryOp op, const float* a, int64_t a_step, const float* b, int64_t b_step, float* y,
                      int64_t n);

}  // namespace ember::cpu
