// CUDA kernels for scaled dot-product attention: the contract of the tensor
// functions in backend/cpu/attention_kernels.h (same layouts, masking, lse and
// dtypes), computed with materialised score matrices rather than in flash blocks:
// per batch element and kv head, cuBLAS forms the scores of all the query heads
// that share the kv head, a row kernel applies the causal mask and the softmax
// (writing the logsumexp), and cuBLAS multiplies by V. The backward recomputes
// P from the saved logsumexp and uses the standard formulas
//   dP = dO Vᵀ, dS = scale P (dP - rowsum(dO O)), dQ = dS K, dK = dSᵀ Q, dV = Pᵀ dO.
// Scores are held for a chunk of the batch at a time (at most 2^28 elements per
// buffer, or one batch element's [H, T, S] when that is larger).
#pragma once

#include "ember/backend/cpu/attention_kernels.h"
#include "ember/core/tensor.h"

namespace ember::cuda {

// q [B, H, T, D], k and v [B, Hkv, S, D] (any strides; read in place when the
// last dimension is contiguous and the dtype is the compute dtype, else copied),
// one floating dtype (16-bit types compute in float32). o [B, H, T, D] (q's
// dtype) and lse [B, H, T] (float32; float64 for float64 inputs) are the caller's
// contiguous outputs. A query that sees no key gets o = 0 and lse = -inf.
void attention_forward(const cpu::AttentionDims& dims, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o,
                       Tensor& lse);
// dq [B, H, T, D], dk and dv [B, Hkv, S, D] (contiguous, q's dtype; dk, dv summed
// over the query heads of each kv head) from the forward's inputs, o, lse (any
// strides) and dout.
void attention_backward(const cpu::AttentionDims& dims, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& o, const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv);

}  // namespace ember::cuda
