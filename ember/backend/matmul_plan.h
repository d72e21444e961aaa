// How a batched, broadcasting matrix product maps onto GEMM calls, for every
// backend (backend/cpu/matmul_kernels.cpp, backend/cuda/matmul_kernels.cpp):
// which operand layouts a GEMM reads in place (row-major or column-major
// matrices, with a transpose flag and leading dimension), and the batch plan
// (each batch's matrix offsets, or one GEMM when the batch folds into rows).
#pragma once

#include <optional>
#include <vector>

#include "ember/core/tensor.h"

namespace ember::matmul_plan {

// How one matrix (rows x cols, strides rs, cs) reads as a GEMM operand.
struct MatLayout {
  bool trans = false;
  int64_t ld = 1;
};

// Row-major (cs == 1) is op = N with ld = rs; column-major (rs == 1) is op = T
// with ld = cs. Strides of size-1 dimensions do not matter, and BLAS wants
// ld >= max(1, the stored row length). nullopt: the matrix must be copied.
std::optional<MatLayout> gemm_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs);
// The layout of x's last two dimensions.
std::optional<MatLayout> layout_of(const Tensor& x);

// Everything a batch of GEMM calls needs, computed from the operands' strides.
struct BatchPlan {
  int64_t m = 0, n = 0, k = 0, batches = 1;
  MatLayout la, lb;
  Shape batch;                        // out's batch dimensions ({} when folded)
  std::vector<int64_t> off_a, off_b;  // element offsets of each batch's matrices
  bool folded = false;                // one GEMM with batches * m rows
};

// a: [..., M, K], b: [..., K, N] whose matrices both have a layout (layout_of),
// out: [..., M, N] with the broadcast batch.
BatchPlan make_plan(const Tensor& a, const Tensor& b, const Tensor& out);

}  // namespace ember::matmul_plan
