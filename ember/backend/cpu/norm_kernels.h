// CPU kernels for layer normalisation and RMS normalisation over the last
// dimension of a contiguous [rows, C] tensor, forward and fused backward.
#pragma once

#include "ember/core/tensor.h"

namespace ember::cpu {

// y = (x - mean) * rstd * weight + bias (layer norm) or x * rstd * weight (rms);
// weight and bias are [C] or undefined. mean and rstd ([rows], float32, or
// float64 for float64 x) receive the statistics for the backward pass; mean is
// undefined for rms.
void norm_forward(bool rms, const Tensor& x, const Tensor& weight, const Tensor& bias, double eps, Tensor& y,
                  Tensor& mean, Tensor& rstd);

// One pass over x and g giving dx and, when they are defined, dweight and dbias
// (summed over rows through per-thread partial sums). With xhat the normalised x
// and gw = g * weight:
//   layer norm: dx = rstd * (gw - mean(gw) - xhat * mean(gw * xhat))
//   rms norm:   dx = rstd * (gw - xhat * mean(gw * xhat))
//   dweight = sum_rows(g * xhat), dbias = sum_rows(g)
void norm_backward(bool rms, const Tensor& x, const Tensor& weight, const Tensor& mean, const Tensor& rstd,
                   const Tensor& g, Tensor& dx, Tensor& dweight, Tensor& dbias);

}  // namespace ember::cpu
