// CUDA layer-norm and RMS-norm kernels over the last dimension of a contiguous
// [rows, C] tensor, forward and fused backward; same contract as
// backend/cpu/norm_kernels.h (statistics in float32, float64 for float64 x).
#pragma once

#include "ember/core/tensor.h"

namespace ember::cuda {

void norm_forward(bool rms, const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, Tensor& y,
                  Tensor& mean, Tensor& rstd);
void norm_backward(bool rms, const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                   const Tensor& g, Tensor& dx, Tensor& dweight, Tensor& dbias);

}  // namespace ember::cuda
