// Internal helpers shared by the index op files (index_ops.cpp, sort_ops.cpp);
// not part of the public API.
#pragma once

#include "ember/core/tensor.h"

namespace ember::detail {

// zeros(shape) with src added at index along axis, in one pass over the output
// (no separate zeros tensor): the gradient of gather, sort and topk.
// index and src have one shape that fits into `shape` off the axis.
Tensor scatter_add_zeros(const Shape& shape, int axis, const Tensor& index, const Tensor& src);

}  // namespace ember::detail
