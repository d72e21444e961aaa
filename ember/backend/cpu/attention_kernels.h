// CPU kernels for fused scaled dot-product attention in the FlashAttention
// style: queries and keys are processed in blocks with an online softmax, so
// at most one block of scores per thread ever exists, and the backward pass
// recomputes score blocks from the saved per-row logsumexp (FlashAttention-2).
#pragma once

#include <cstdint>

#include "ember/core/tensor.h"

namespace ember::cpu {

struct AttentionDims {
  int64_t B = 0, H = 0, Hkv = 0, T = 0, S = 0, D = 0;
  bool causal = false;
  double scale = 1.0;
};

// q [B, H, T, D], k and v [B, Hkv, S, D] (contiguous, one floating dtype; H a
// multiple of Hkv, query head h reads kv head h / (H / Hkv)). Writes
// o [B, H, T, D] (q's dtype) and lse [B, H, T] (float32; float64 for float64
// inputs). Causal masking lets query t see key s when s <= t + (S - T); a query
// that sees no key gets a zero output and lse = -inf.
void attention_forward(const AttentionDims& dims, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o,
                       Tensor& lse);

// Gradients from the forward inputs and outputs and the output cotangent do
// (all contiguous): dq [B, H, T, D], and dk, dv [B, Hkv, S, D] summed over the
// query heads that share each kv head.
void attention_backward(const AttentionDims& dims, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& o, const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv);

}  // namespace ember::cpu
