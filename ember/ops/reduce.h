// Reductions along any set of axes (an empty list means all axes), with keepdim.
#pragma once

#include <vector>

#include "ember/core/op_kinds.h"
#include "ember/core/tensor.h"

namespace ember {

using Axes = std::vector<int64_t>;

Tensor sum(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
Tensor max(const Tensor& x, const Axes& axes = {}, bool keepdim = false);  // gradient split among ties
Tensor min(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
Tensor prod(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
Tensor reduce(ReduceOp op, const Tensor& x, const Axes& axes, bool keepdim);
// Index (int64) of the first maximum / minimum along one axis.
Tensor argmax(const Tensor& x, int64_t axis, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t axis, bool keepdim = false);
// Variance with Bessel's correction `correction` (1 = unbiased, as torch.var's default).
Tensor var(const Tensor& x, const Axes& axes = {}, bool keepdim = false, int64_t correction = 1);
Tensor logsumexp(const Tensor& x, const Axes& axes, bool keepdim = false);

}  // namespace ember
