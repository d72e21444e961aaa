// Row-major GEMM on the CPU: C = alpha * op(A) * op(B) + beta * C, through the
// BLAS-class library chosen by measurement (see docs/PERFORMANCE.md). Every
// matrix product in ember (matmul, linear, attention blocks) goes through here.
#pragma once

#include <cstdint>

namespace ember::cpu {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
          const double* b, int64_t ldb, double beta, double* c, int64_t ldc);

}  // namespace ember::cpu
