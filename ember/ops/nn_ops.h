// Neural-network ops, several of them fused primitives (one pass over memory,
// numerically stable) that also have a composite form for tracing and autodiff.
#pragma once

#include "ember/core/tensor.h"

namespace ember {

Tensor softmax(const Tensor& x, int64_t axis = -1);
Tensor log_softmax(const Tensor& x, int64_t axis = -1);
// Normalises over the last dimension; weight and bias ([C]) are optional.
Tensor layer_norm(const Tensor& x, const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), double eps = 1e-5);
Tensor rms_norm(const Tensor& x, const Tensor& weight = Tensor(), double eps = 1e-6);

enum class Reduction { mean, sum, none };
// logits [N, C] (or [..., C]) and int64 targets [N] (or [...]); targets equal to
// ignore_index contribute nothing, and the mean is over the others (as PyTorch).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100,
                     Reduction reduction = Reduction::mean);
// cross_entropy(linear(x, weight), targets, ...) without the logits: x [..., C],
// weight [V, C] (a language model's head), targets [...]. For float32 on the
// CPU with reduction mean or sum it is one primitive that works a block of rows
// at a time and, while gradients are recorded, computes the gradients of x and
// weight in the same pass (first derivatives only); elsewhere, and with
// EMBER_FUSED_HEAD_LOSS=0 in the environment, it is that composition.
Tensor linear_cross_entropy(const Tensor& x, const Tensor& weight, const Tensor& targets, int64_t ignore_index = -100,
                            Reduction reduction = Reduction::mean);
// Zeroes elements with probability p and scales the rest by 1/(1-p); identity when !training or p == 0.
Tensor dropout(const Tensor& x, double p, bool training = true);
// Scaled dot-product attention. q [B, H, T, D], k and v [B, Hkv, S, D] with H a
// multiple of Hkv (grouped-query attention). Causal masking aligns the last
// query with the last key. scale defaults to 1/sqrt(D).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal = true,
                                    double scale = 0.0);
// Self-attention on a fused projection: qkv [B, T, (H + 2 Hkv) D] holds each
// position's H query heads, then Hkv key heads, then Hkv value heads (a
// transformer's c_attn output); returns [B, T, H D], the heads side by side.
// Equal to splitting qkv into [B, h, T, D] heads, scaled_dot_product_attention
// and merging the heads back. While gradients are recorded for a float32 or
// float64 qkv on the CPU it is one primitive: the kernels read the heads
// where they lie and write the output merged, and its backward writes the
// gradient of qkv in one pass (no zero-filled slice gradients to add up).
// Elsewhere (inference, which exports and slices the plain form; other
// devices and dtypes) it is that composition.
Tensor fused_qkv_attention(const Tensor& qkv, int64_t n_head, int64_t n_kv_head, bool causal = true,
                           double scale = 0.0);

}  // namespace ember
