// Row-major GEMM on the CPU: C = alpha * op(A) * op(B) + beta * C, through the
// BLAS-class library chosen by measurement (see docs/PERFORMANCE.md). Every
// matrix product in ember (matmul, linear, attention blocks) goes through here.
#pragma once

#include <cstdint>

#include "ember/core/dtype.h"

namespace ember::cpu {

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
// Which float32 GEMM runs: automatic (ember's packed AVX2 GEMM for products of
// at least 64 x 64 on AVX2 CPUs without AVX-512; oneDNN's matmul primitive on
// AVX-512 CPUs for the layouts sgemm is slow at; oneDNN's sgemm otherwise), or
// one of them always (EMBER_GEMM=sgemm|matmul|ember at start-up, "onednn"
// meaning sgemm; tests and benchmarks). Products inside a parallel region
// (one per thread) never use the primitive.
enum class SgemmImpl { automatic, onednn, ember, onednn_matmul };
void set_sgemm_impl(SgemmImpl impl);
SgemmImpl sgemm_impl();
// Whether a float32 product of this shape goes to ember's packed GEMM.
bool sgemm_uses_packed(int64_t m, int64_t n, int64_t k);
// Whether a float32 product of this layout and shape (with a bias added to
// its rows, or not), called here, goes to oneDNN's matmul primitive (cached
// per shape, layout, alpha and beta).
bool sgemm_uses_matmul_primitive(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, bool bias = false);

// C = op(A) * op(B) + bias + beta * C, the bias (n values) added to every row:
// a linear layer's forward (beta 1: added onto a residual stream). ember's
// packed GEMM and oneDNN's matmul primitive add it as they write C; on the
// sgemm path the bias is first written (beta 0) or added (beta 1) into C and
// the product accumulated.
void gemm_bias(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
               const float* b, int64_t ldb, const float* bias, float* c, int64_t ldc, float beta = 0.0f);
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
          const double* b, int64_t ldb, double beta, double* c, int64_t ldc);

// 16-bit GEMM through oneDNN's matmul primitive (bf16 or f16 A, B and C; float32
// accumulation and an optional float32 bias of n values added before the one
// rounding into C): C = op(A) * op(B) (+ bias). Primitives are cached per shape,
// so an eager loop pays creation once. Returns false, doing nothing, when oneDNN
// has no optimised kernel for this dtype on this CPU (it needs AVX-512 BF16, AMX
// or AVX-512 FP16; a reference kernel is refused as too slow); the caller then
// converts to float32 and uses the float GEMM instead.
bool gemm_lowp(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const void* a, int64_t lda,
               const void* b, int64_t ldb, void* c, int64_t ldc, const float* bias = nullptr);

// Switches the oneDNN 16-bit path off (false) or back on, so that tests and
// benchmarks can compare it with the convert-to-float path. On by default.
void set_lowp_gemm_enabled(bool enabled);
bool lowp_gemm_enabled();
// The kernel oneDNN picks for a 16-bit GEMM of this shape ("brg:avx512_core_amx",
// ...), or "" when gemm_lowp would decline it.
const char* lowp_gemm_impl(DType dtype, int64_t m, int64_t n, int64_t k);

}  // namespace ember::cpu
