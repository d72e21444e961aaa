// The block products of the CPU flash-attention kernels: register-tiled loops
// for the 64 x 64 x D products one thread does on data it already holds in
// L1/L2. oneDNN's sgemm is built for large products; called once per tiny
// block it spent most of its time outside the multiply (measured: the
// attention forward + backward of the `small` shape ran at about 40 GFLOP/s
// against 92-130 for the big products; docs/PERFORMANCE.md).
//
// One routine covers every product the kernels need: the left operand is read
// through two strides, so Aᵀ costs nothing; the right operand must have its
// columns contiguous (its rows ldb apart), which is the layout of Q, K, V and
// dO rows, and of the Kᵀ / Vᵀ / Qᵀ panels the kernels pack.
#pragma once

#include <cstdint>

namespace ember::cpu {

// C[i, j] = (accumulate ? C[i, j] : 0) + sum_p A(i, p) B[p, j]  for i < m, j < n, p < k,
// where A(i, p) = a[i * a_rs + p * a_ps], B[p, j] = b[p * ldb + j], C[i, j] = c[i * ldc + j].
// Single-threaded: the attention kernels call it from their own parallel tasks.
void block_gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_rs, int64_t a_ps, const float* b,
                int64_t ldb, float* c, int64_t ldc, bool accumulate);
// float64 (gradient checks): plain loops.
void block_gemm(int64_t m, int64_t n, int64_t k, const double* a, int64_t a_rs, int64_t a_ps, const double* b,
                int64_t ldb, double* c, int64_t ldc, bool accumulate);

}  // namespace ember::cpu
