// The CUDA kernel behind matmul and linear: the contract of
// backend/cpu/matmul_kernels.h on cuBLAS. Strided views become transpose flags
// and leading dimensions (only layouts GEMM cannot read are copied), batch
// dimensions broadcast, and a batch whose matrices lie at even steps is one
// strided-batched GEMM call.
//
// float32 is true float32 (CUBLAS_COMPUTE_32F, no TF32) unless
// set_matmul_allow_tf32(true); float64 computes in float64; bf16/f16 multiply
// with float32 accumulation and round once into the 16-bit output.
#pragma once

#include <cstdint>

#include "ember/core/dtype.h"
#include "ember/core/tensor.h"

namespace ember::cuda {

// out = a @ b (+ bias, added to every row before the result is rounded).
//   a: [..., M, K], b: [..., K, N] (ndim >= 2, any strides; batch dimensions
//   broadcast to out's), out: contiguous [..., M, N], bias: [N] or undefined.
// All of one floating dtype, on one CUDA device. K == 0 gives zeros (or the bias).
void matmul(const Tensor& a, const Tensor& b, Tensor& out, const Tensor& bias = Tensor());

// Lets float32 products use TF32 tensor cores (faster, ~1e-3 relative error).
// Off by default. Process-wide.
void set_matmul_allow_tf32(bool allow);
bool matmul_allow_tf32();

// A row-major GEMM batch on raw device pointers, for other CUDA kernels:
//   C_i = alpha op(A_i) op(B_i) + beta C_i, i < batch,
// C_i [m, n] (row stride ldc) at c + i * stride_c; A_i at a + i * stride_a is
// [m, k] (row stride lda), or [k, m] read transposed when trans_a; likewise B_i
// [k, n] or [n, k] with trans_b. Strides in elements (0 repeats a matrix); all
// three of `dtype` (16-bit types accumulate in float32). k == 0 scales C by
// beta (zeros when beta is 0); m == 0, n == 0 or batch == 0 do nothing.
void gemm_batched(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                  const void* a, int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b,
                  double beta, void* c, int64_t ldc, int64_t stride_c, int64_t batch, const char* op);

}  // namespace ember::cuda
