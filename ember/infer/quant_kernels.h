// The inference path's matrix products with a weight of any format (f32,
// int8, int4, f16; see quant.h): Y[n, out] = X[n, in] · Wᵀ (+ bias).
//
// Decode (n <= kGemvMaxRows rows): GEMV kernels that stream W once, four
// output rows at a time, and dequantize in registers (AVX2: 8 or 16 weights
// per step, converted to float and multiplied by the row's or group's scale),
// so the float matrix never exists; each block of rows serves every X row
// while it is in L1. Decode is bound by reading the weights, which is why
// f16 (2 bytes a weight), int8 (1 byte) and int4 (half a byte) are faster
// than float32.
// Prefill (more rows): a bounded block of W is dequantized into a float tile
// (`scratch`) and multiplied by oneDNN's sgemm; dequantizing costs one pass
// over W per call, small against the n-fold GEMM work.
// Both are OpenMP-parallel over output rows (the GEMM through oneDNN).
#pragma once

#include <cstdint>
#include <vector>

#include "ember/infer/quant.h"

namespace ember::infer {

inline constexpr int64_t kGemvMaxRows = 8;

// Y[r, :] = X[r, :] · Wᵀ + bias for r < n (accumulate: Y[r, :] += instead).
// X is [n, w.cols] and Y [n, w.rows], both row-major; bias may be null.
// `scratch` is grown as needed by the GEMM path and may be reused across calls.
void linear_rows(const LinearWeight& w, const float* x, int64_t n, const float* bias, float* y, bool accumulate,
                 std::vector<float>& scratch);

// Y = act(X · Wᵀ + bias) in one product, the activation applied as the GEMM
// writes Y (cpu::gemm_packed_weights' epilogue), when W is packed (a float
// weight after RunnerWeights::prepack), n is past the decode kernels' rows and
// the packed layout can fuse `act`; otherwise false, with nothing written (the
// caller runs linear_rows and the activation itself).
bool linear_rows_activated(const LinearWeight& w, const float* x, int64_t n, const float* bias, UnaryOp act, float* y);

// The vectorised dequantization the GEMM path uses (rows [r0, r1) into out
// [r1 - r0, cols]); equal to dequantize_rows of quant.h.
void dequantize_rows_fast(const LinearWeight& w, int64_t r0, int64_t r1, float* out);

}  // namespace ember::infer
