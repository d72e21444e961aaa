// Gradient norms and clipping (torch.nn.utils.clip_grad_norm_).
#pragma once

#include <limits>
#include <vector>

#include "ember/core/tensor.h"

namespace ember::optim {

// The norm of all gradients together, as if concatenated, accumulated in
// float64 whatever the gradients' dtype. norm_type is p >= 1 or infinity.
// Parameters without a gradient are skipped.
double grad_norm(const std::vector<Tensor>& params, double norm_type = 2.0);

// Scales every gradient by max_norm / (total_norm + 1e-6) when that is below 1
// and returns the total norm before clipping. A non-finite norm (inf or NaN
// gradients) is returned as it is and the gradients are left untouched, so the
// caller can skip the step; with error_if_nonfinite it is an Error instead.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

// The same clipping as tensor ops, without reading a value on the host, so
// that it can be traced into a compiled training step: every gradient is
// multiplied by min(1, max_norm / (total_norm + 1e-6)), and the total norm is
// returned as a float64 scalar tensor. A non-finite norm is not special-cased
// (the gradients become non-finite): check the returned norm after the step.
Tensor clip_grad_norm_traceable_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0);

}  // namespace ember::optim
