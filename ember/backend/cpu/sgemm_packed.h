// ember's own float32 GEMM for AVX2 + FMA CPUs: packed panels and a 6 x 16
// register-tiled micro-kernel, in the loop order of BLIS (Goto's algorithm).
// On the AVX2-only machines this project runs on it is faster than the
// oneDNN 2.6 sgemm it replaces there (docs/PERFORMANCE.md, "ember's packed
// GEMM"); cpu::gemm decides when to call it. With B packed ahead
// (sgemm_prepacked) it multiplies frozen inference weights on those machines
// (packed_weights.h); AVX-512 ones pack them in oneDNN's layout instead.
#pragma once

#include <cstdint>

namespace ember::cpu {

// True when this build has the AVX2 + FMA kernel (compiled with -march that
// includes them); without it sgemm_packed must not be called.
bool sgemm_packed_available();

// Row-major C = alpha * op(A) * op(B) + beta * C, op(A) m x k, op(B) k x n;
// trans_a means A is stored k x m (element (i, p) at a[p * lda + i]), likewise
// trans_b. beta == 0 never reads C (it may hold NaN). A bias of n values, when
// given, is added to every row (C = alpha * op(A) op(B) + bias + beta * C):
// a linear layer's forward in one pass over C. Uses up to `threads` OpenMP
// threads (1 runs on the calling thread only).
void sgemm_packed(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc, int threads,
                  const float* bias = nullptr);

// A matrix used as B in many products (a frozen weight) can be packed once:
// the panels sgemm_packed builds on every call, kept. Layout, for each k slice
// starting at p0 (the slices sgemm_packed cuts): columns in slivers of 16, the
// sliver of column j at offset p0 * round_up(n, 16) + j * (slice depth),
// zero-padded past n. The layout depends only on k and n, not on threads.
//
// Floats the packed form of a k x n op(B) takes.
int64_t packed_b_floats(int64_t k, int64_t n);
// Packs op(B) (k x n; trans_b: B stored n x k, as a Linear weight) into `dst`,
// which holds packed_b_floats(k, n) floats and is 32-byte aligned.
void pack_b_whole(bool trans_b, int64_t k, int64_t n, const float* b, int64_t ldb, float* dst);
// sgemm_packed with op(B) given packed: the same results bit for bit, without
// packing B on every call (about 14% of a 256-token prefill of the `small`
// GPT on the hosts measured, docs/PERFORMANCE.md).
void sgemm_prepacked(bool trans_a, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                     const float* packed_b, float beta, float* c, int64_t ldc, int threads,
                     const float* bias = nullptr);

}  // namespace ember::cpu
