// oneDNN's matmul primitive (brgemm kernels), cached per call signature, for
// the CPU backend's GEMM entry points (gemm.cpp, packed_weights.cpp); not a
// public API.
//
// A primitive is specialised on everything in MatmulKey: shapes, strides,
// alpha/beta, the bias, and the epilogue fused into its writing of C (an
// activation and a residual added after it). Entries are created on first use
// and cached, so an eager loop or a serving thread pays oneDNN's kernel
// generation once per shape. Weights may be given in oneDNN's own blocked
// layout (`blocked_weights`), packed once by pack_blocked_weights: the layout
// oneDNN picks for (k, n) at 64 rows, which every product with that weight is
// then made to read, whatever its m (docs/PERFORMANCE.md, "Frozen weights in
// oneDNN's layout").
#pragma once

#include <cstdint>
#include <string>

#include "ember/core/dtype.h"
#include "ember/core/op_kinds.h"

namespace ember::cpu::onednn {

struct MatmulKey {
  int64_t m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
  float alpha = 1.0f, beta = 0.0f;  // C = alpha * (op(A) op(B) + bias) + beta * C
  DType dtype = DType::f32;         // of A, B and C (f32, bf16 or f16); the bias is f32
  bool trans_a = false, trans_b = false;
  bool bias = false;
  bool blocked_weights = false;  // B in oneDNN's layout (pack_blocked_weights); ldb and trans_b unused
  bool activate = false;         // apply `activation` to the biased product (beta must be 0)
  UnaryOp activation = UnaryOp::relu;
  bool residual = false;  // then add an m x n residual (row stride ldc)
};

// Runs the keyed product on any thread; false (nothing written) when oneDNN
// has no optimised kernel for it (the caller falls back). `bias` (n floats)
// and `residual` must be given exactly when the key says so.
bool run_matmul(const MatmulKey& key, const void* a, const void* b, void* c, const float* bias = nullptr,
                const float* residual = nullptr);

// The kernel oneDNN picks for the key ("brg:avx512_core", ...), or "" when
// run_matmul would decline it.
std::string matmul_impl(const MatmulKey& key);

// Whether a product with blocked weights reorders them on every call (oneDNN
// refused its packed layout for this key; tests check that it never does).
bool reorders_weights_per_call(const MatmulKey& key);

// Whether an activation can be fused into the primitive's writing of C.
bool fusable_activation(UnaryOp op);

// Bytes of a k x n float32 op(B) in oneDNN's blocked layout for the
// primitive; 0 when oneDNN has no brgemm kernel for it on this CPU (AVX2).
int64_t blocked_weights_bytes(int64_t k, int64_t n);
// The blocked layout's geometry when it is the one brgemm picks on the hosts
// measured ("BA16a64b": 16 x 64 tiles of k x n, each row-major, tiles in k
// order within a 64-column strip, strips one after another; padding zero):
// element (p, j) at (p / 16) * kb_stride + (j / 64) * nb_stride + (p % 16) * 64
// + j % 64. `valid` is false for any other layout (then only the primitive
// reads it).
struct BlockedGeometry {
  bool valid = false;
  int64_t kb_stride = 0, nb_stride = 0;  // floats
};
BlockedGeometry blocked_geometry(int64_t k, int64_t n);

// Writes op(B) (k x n; trans_b: B stored n x k, as a Linear weight, rows ldb
// apart) into `dst` (blocked_weights_bytes(k, n) bytes, 64-byte aligned).
void pack_blocked_weights(bool trans_b, int64_t k, int64_t n, const float* b, int64_t ldb, void* dst);

}  // namespace ember::cpu::onednn
