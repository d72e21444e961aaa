// CPU kernels for the fused cross-entropy loss (log-softmax + negative log
// likelihood) over contiguous logits [N, C] and integer targets [N].
#pragma once

#include <cstdint>

#include "ember/core/tensor.h"

namespace ember::cpu {

// Throws an Error naming the first target that is neither in [0, C) nor
// ignore_index. targets are int64 or int32.
void check_cross_entropy_targets(const Tensor& targets, int64_t C, int64_t ignore_index);

// Number of targets that are not ignore_index.
int64_t count_cross_entropy_targets(const Tensor& targets, int64_t ignore_index);

// Per row: lse[n] = logsumexp(logits[n]) and row_loss[n] = lse[n] - logits[n, t]
// (0 where the target is ignore_index). row_loss and lse are float32 (float64 for
// float64 logits). Returns the number of rows that are not ignored.
int64_t cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Tensor& row_loss,
                              Tensor& lse);

// dlogits[n] = (softmax(logits[n]) - onehot(t[n])) * g[n] / divisor, without
// materialising the one-hot; g has logits' dtype and is read per row when
// per_row_g, else as one scalar. Ignored rows get zeros.
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, int64_t ignore_index,
                            const Tensor& g, bool per_row_g, double divisor, Tensor& dlogits);

}  // namespace ember::cpu
