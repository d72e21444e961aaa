// CPU kernels for fused scaled dot-product attention in the FlashAttention
// style: queries and keys are processed in blocks with an online softmax, so
// at most one block of scores per thread ever exists, and the backward pass
// recomputes score blocks from the saved per-row logsumexp (FlashAttention-2).
//
// Operands are read through strides (HeadRows) so that the training layer's
// [B, T, H, D] projections and the inference runner's fused qkv rows and KV
// cache are used where they lie, without copying them into [B, H, T, D] first.
#pragma once

#include <cstdint>

#include "ember/core/tensor.h"

namespace ember::cpu {

struct AttentionDims {
  int64_t B = 0, H = 0, Hkv = 0, T = 0, S = 0, D = 0;
  bool causal = false;
  double scale = 1.0;
};

// A [B, heads, rows, D] operand whose last dimension is contiguous: element
// (b, h, t, d) lies at data[b * batch + h * head + t * row + d].
template <typename T>
struct HeadRows {
  T* data = nullptr;
  int64_t batch = 0, head = 0, row = 0;
  T* at(int64_t b, int64_t h, int64_t t) const { return data + b * batch + h * head + t * row; }
};

// q [B, H, T, D], k and v [B, Hkv, S, D] (H a multiple of Hkv, query head h
// reads kv head h / (H / Hkv)). Writes o [B, H, T, D] and, unless lse is null,
// the row logsumexp lse [B, H, T] (contiguous). Causal masking lets query t see
// key s when s <= t + (S - T); a query that sees no key gets a zero output and
// lse = -inf. Runs in parallel over (batch, head, block of queries).
void attention_forward(const AttentionDims& dims, HeadRows<const float> q, HeadRows<const float> k,
                       HeadRows<const float> v, HeadRows<float> o, float* lse);
void attention_forward(const AttentionDims& dims, HeadRows<const double> q, HeadRows<const double> k,
                       HeadRows<const double> v, HeadRows<double> o, double* lse);

// Gradients from the forward inputs and outputs, lse and the output cotangent
// dout: dq [B, H, T, D], and dk, dv [B, Hkv, S, D] summed over the query heads
// that share each kv head. Every output element is written.
void attention_backward(const AttentionDims& dims, HeadRows<const float> q, HeadRows<const float> k,
                        HeadRows<const float> v, HeadRows<const float> o, const float* lse,
                        HeadRows<const float> dout, HeadRows<float> dq, HeadRows<float> dk, HeadRows<float> dv);
void attention_backward(const AttentionDims& dims, HeadRows<const double> q, HeadRows<const double> k,
                        HeadRows<const double> v, HeadRows<const double> o, const double* lse,
                        HeadRows<const double> dout, HeadRows<double> dq, HeadRows<double> dk,
                        HeadRows<double> dv);

// The same on tensors: q, k, v (and o, dout) 4-D with a contiguous last
// dimension (any other strides; other layouts are copied first), one floating
// dtype (16-bit types run through float32 copies). o and lse (float32; float64
// for float64 inputs) and dq, dk, dv are the caller's contiguous outputs.
void attention_forward(const AttentionDims& dims, const Tensor& q, const Tensor& k, const Tensor& v, Tensor& o,
                       Tensor& lse);
void attention_backward(const AttentionDims& dims, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& o, const Tensor& lse, const Tensor& dout, Tensor& dq, Tensor& dk, Tensor& dv);

}  // namespace ember::cpu
