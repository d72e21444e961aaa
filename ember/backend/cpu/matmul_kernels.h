// The CPU kernel behind matmul and linear: a batched, broadcasting matrix
// product that maps strided views onto GEMM calls without copying them.
//
// A matrix whose last two dimensions are a row-major or a transposed
// (column-major) block becomes a GEMM with the matching transpose flag and
// leading dimension; only other layouts (a stride-0 or doubly strided matrix)
// are copied. Batch dimensions broadcast. When the right operand has no batch
// (or a broadcast one) and the left operand's batch folds into its rows, the
// whole product is one GEMM ([B, T, C] @ [C, N] is one [B*T, C] @ [C, N]).
#pragma once

#include "ember/core/tensor.h"

namespace ember::cpu {

// How a batch of small products uses the threads: one GEMM per thread
// (over_batch), or one GEMM at a time with the library's own threads
// (inside_gemm). `automatic` picks over_batch for products below
// kBatchParallelFlops each. Measured with bench/matmul_bench.cpp (batched_policy,
// 32 attention-sized products): at 16 threads over_batch ran 2-7x faster up to
// 8 MFLOP per product, while 8 products of 67 MFLOP ran 1.65x faster inside_gemm
// (the batch is smaller than the thread count); at 2 threads the two are close.
// float64 (OpenBLAS, its own thread pool) and the oneDNN 16-bit path always run
// inside_gemm.
enum class BatchThreads { automatic, over_batch, inside_gemm };
constexpr double kBatchParallelFlops = 16.0 * 1024 * 1024;

// out = a @ b (+ bias, added to every row before the result is rounded).
//   a: [..., M, K], b: [..., K, N] (ndim >= 2, any strides; batch dimensions
//   broadcast to out's), out: contiguous [..., M, N], bias: [N] or undefined.
// All of one floating dtype; bf16/f16 use oneDNN's 16-bit matmul where the CPU
// has native support, and otherwise are converted to float32, multiplied and
// rounded once. K == 0 gives zeros (or the bias).
void matmul(const Tensor& a, const Tensor& b, Tensor& out, const Tensor& bias = Tensor(),
            BatchThreads threads = BatchThreads::automatic);

// A view of x's storage with another shape and strides, starting `offset`
// elements after x's first, without autograd history (for kernels that
// reinterpret their inputs or write their outputs through views).
Tensor strided_view(const Tensor& x, const Shape& shape, const Strides& strides, int64_t offset = 0);

}  // namespace ember::cpu
