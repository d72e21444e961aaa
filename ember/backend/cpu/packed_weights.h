// Frozen weights: a Linear weight packed once, in the layout the product
// kernel reads fastest, then multiplied many times (inference graphs compiled
// with frozen weights, the serving runner's prefill).
//
// Two layouts exist, one per kernel:
//   - ember_panels: the slivers of ember's packed GEMM (sgemm_packed.h) on
//     AVX2 CPUs without AVX-512 (and with EMBER_GEMM=ember);
//   - onednn_blocked: oneDNN's own blocked layout for its matmul primitive on
//     AVX-512 CPUs (onednn_matmul.h), 1.02-1.09x the primitive on row-major
//     weights at a prefill's 256 rows (docs/PERFORMANCE.md, "Frozen weights
//     in oneDNN's layout").
// A packed weight carries its layout with it (callers keep both), so a change
// of EMBER_GEMM choice never misreads one.
//
// The product can finish with an epilogue applied as C is written, each saving
// a pass over C: an activation of the biased product (a transformer MLP's GELU)
// and a residual added after it (the residual stream around a block's
// output projections).
#pragma once

#include <cstdint>
#include <optional>

#include "ember/core/op_kinds.h"

namespace ember::cpu {

enum class WeightLayout : uint8_t { none = 0, ember_panels = 1, onednn_blocked = 2 };
const char* weight_layout_name(WeightLayout layout);  // "none", "ember_panels", "onednn_blocked"

// The layout frozen float32 weights are packed in on this CPU under the current
// GEMM choice (cpu::sgemm_impl): onednn_blocked on AVX-512 CPUs (automatic, or
// EMBER_GEMM=matmul), ember_panels on AVX2 CPUs or with EMBER_GEMM=ember, none
// (leave the weights as they are) with EMBER_GEMM=sgemm or where neither kernel
// is available.
WeightLayout frozen_weight_layout();

// Floats the packed form of a k x n op(B) takes in `layout` (the storage is
// float32 for either); 0 when it cannot be packed so.
int64_t packed_weight_floats(WeightLayout layout, int64_t k, int64_t n);

// Packs op(B) (k x n; trans_b: B stored n x k, rows ldb apart, as a Linear
// weight W [n, k] with op(B) = Wᵀ) into `dst`, packed_weight_floats(...)
// floats, 64-byte aligned.
void pack_weight(WeightLayout layout, bool trans_b, int64_t k, int64_t n, const float* b, int64_t ldb, float* dst);

struct GemmEpilogue {
  std::optional<UnaryOp> activation;  // applied to A B + bias
  const float* residual = nullptr;    // then added: m x n, rows ldc apart; may not overlap C
};

// Whether `op` can be an epilogue's activation in `layout` (ember's panels take
// any unary op; oneDNN's primitive gelu, gelu_tanh, relu, silu, tanh, sigmoid).
bool epilogue_activation_supported(WeightLayout layout, UnaryOp op);

// C = epilogue(A B + bias) + beta C, with A m x k row-major (rows lda apart) and
// B packed in `layout` (not none); beta must be 0 with an activation. Threads:
// all of OpenMP's, or the calling thread only inside a parallel region.
void gemm_packed_weights(WeightLayout layout, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                         const float* packed_b, const float* bias, float* c, int64_t ldc, float beta = 0.0f,
                         const GemmEpilogue& epilogue = {});

}  // namespace ember::cpu
