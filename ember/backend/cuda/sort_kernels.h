// CUDA sort / top-k and cumulative sum: the counterparts of
// backend/cpu/sort_kernels.h, with the same contracts. Inputs are contiguous
// and viewed as [outer, n, inner]; every tensor lives on one CUDA device.
#pragma once

#include "ember/core/tensor.h"

namespace ember::cuda {

// Sorts every (outer, inner) line of x along n and writes the first k entries:
// values [outer, k, inner] (x's dtype, the original elements bit for bit) and
// int64 indices [outer, k, inner]. NaN counts as larger than every number, -0
// equals +0, and equal values keep their original order (stable) in both
// directions: the same order as the CPU kernel, so indices agree exactly.
void sort_lines(const Tensor& x, int64_t outer, int64_t n, int64_t inner, int64_t k, bool descending,
                Tensor& values, Tensor& indices);

// Inclusive prefix sums along n (suffix sums when reverse), accumulated in
// double for floating types and int64 for integers. out has x's shape and dtype.
void cumsum(const Tensor& x, int64_t outer, int64_t n, int64_t inner, bool reverse, Tensor& out);

}  // namespace ember::cuda
