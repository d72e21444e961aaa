// CUDA reduction kernels; same contract as backend/cpu/reduce_kernels.h: the
// input is contiguous and viewed as [outer, reduce, inner], the output has
// outer * inner elements, everything on one CUDA device.
#pragma once

#include "ember/core/op_kinds.h"
#include "ember/core/tensor.h"

namespace ember::cuda {

void reduce(ReduceOp op, const Tensor& in, int64_t outer, int64_t reduce, int64_t inner, Tensor& out);
// Index of the first max (or min) along the block, a NaN winning; out is int64.
void arg_reduce(bool is_max, const Tensor& in, int64_t outer, int64_t reduce, int64_t inner, Tensor& out);

}  // namespace ember::cuda
