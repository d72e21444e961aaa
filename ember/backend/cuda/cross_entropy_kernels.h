// CUDA kernels for the fused cross-entropy loss over contiguous logits [N, C]
// and integer targets [N] (int64 or int32); same contract as
// backend/cpu/cross_entropy_kernels.h, except that the targets must already be
// checked (every one in [0, C) or ignore_index: the op checks a host copy,
// which gives the CPU's error messages).
#pragma once

#include <cstdint>

#include "ember/core/tensor.h"

namespace ember::cuda {

// Per row: lse[n] = logsumexp(logits[n]) and row_loss[n] = lse[n] - logits[n, t]
// (0 where the target is ignore_index); both float32 (float64 for float64 logits).
void cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t ignore_index, Tensor& row_loss,
                           Tensor& lse);

// loss (a 0-d tensor of any floating dtype) = sum(row_loss) / divisor, summed in double.
void cross_entropy_total(const Tensor& row_loss, double divisor, Tensor& loss);

// dlogits[n] = (softmax(logits[n]) - onehot(t[n])) * g[n] / divisor; g has the
// logits' dtype and is read per row when per_row_g, else as one scalar. Ignored
// rows get zeros. dlogits may be the logits' own buffer.
void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse, int64_t ignore_index,
                            const Tensor& g, bool per_row_g, double divisor, Tensor& dlogits);

}  // namespace ember::cuda
