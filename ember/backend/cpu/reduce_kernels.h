// CPU reduction kernels over a contiguous input viewed as [outer, reduce, inner].
#pragma once

#include "ember/core/op_kinds.h"
#include "ember/core/tensor.h"

namespace ember::cpu {

// in is contiguous; the reduced axes form one contiguous block of extent
// `reduce` between `outer` and `inner` elements; out has outer*inner elements.
void reduce(ReduceOp op, const Tensor& in, int64_t outer, int64_t reduce, int64_t inner, Tensor& out);
// Index of the first max (or min) along the block; out is int64.
void arg_reduce(bool is_max, const Tensor& in, int64_t outer, int64_t reduce, int64_t inner, Tensor& out);

}  // namespace ember::cpu
