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
// Zeroes elements with probability p and scales the rest by 1/(1-p); identity when !training or p == 0.
Tensor dropout(const Tensor& x, double p, bool training = true);
// Scaled dot-product attention. q [B, H, T, D], k and v [B, Hkv, S, D] with H a
// multiple of Hkv (grouped-query attention). Causal masking aligns the last
// query with the last key. scale defaults to 1/sqrt(D).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal = true,
                                    double scale = 0.0);

}  // namespace ember
