// CUDA softmax / log-softmax kernels, forward and backward, along the middle
// axis of a contiguous [outer, n, inner] tensor; same contract as
// backend/cpu/softmax_kernels.h.
#pragma once

#include "ember/core/tensor.h"

namespace ember::cuda {

// y = softmax(x) (or log_softmax when `log`); x and y contiguous, same dtype.
void softmax_forward(bool log, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& y);
//   softmax:     dx = y * (g - sum(g * y))
//   log_softmax: dx = g - exp(y) * sum(g)
void softmax_backward(bool log, const Tensor& y, const Tensor& g, int64_t outer, int64_t n, int64_t inner,
                      Tensor& dx);

}  // namespace ember::cuda
