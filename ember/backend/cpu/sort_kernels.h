// CPU kernels for the ops that walk one axis in order: sort / topk and cumsum.
// Inputs are contiguous and viewed as [outer, n, inner]; the axis is the middle
// dimension, so no transposition is needed for any axis.
#pragma once

#include "ember/core/tensor.h"

namespace ember::cpu {

// Sorts every (outer, inner) line of x along n and writes the first k entries:
// values [outer, k, inner] (x's dtype) and int64 indices [outer, k, inner].
// NaN counts as larger than every number (as in PyTorch); equal values keep
// their original order (stable), also for descending order and for k < n.
void sort_lines(const Tensor& x, int64_t outer, int64_t n, int64_t inner, int64_t k, bool descending,
                Tensor& values, Tensor& indices);

// Inclusive prefix sums along n (suffix sums when reverse), accumulated in
// double for floating types and int64 for integers. out has x's shape and dtype.
void cumsum(const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool reverse, Tensor& out);

}  // namespace ember::cpu
