// CUDA kernels of the optimizer primitives (ember/optim): the fused AdamW and
// SGD updates, in place over contiguous tensors, and the power sum behind
// grad_norm / clip_grad_norm_. The update constants come from the caller, so
// that the CPU and the GPU derive them from the hyperparameters in one place.
#pragma once

#include "ember/core/tensor.h"

namespace ember::cuda {

// AdamW's per-step constants (see optim/fused_updates.cpp), rounded to the
// state's precision by the kernel:
//   p *= decay; m += w1 (g - m); v = v b2 + w2 g^2; p += neg_step_size m / (sqrt(v) / bc2_sqrt + eps)
struct AdamWConstants {
  double decay, w1, b2, w2, neg_step_size, bc2_sqrt, eps;
};

// param and grad: float32 / float64 / bfloat16 / float16; exp_avg and
// exp_avg_sq: float32 (float64 for float64 params). Updates param, exp_avg and
// exp_avg_sq in place, computing in the state's precision.
void adamw_update(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, const AdamWConstants& k);

// The same update with the learning rate and the step read on the device
// from `hyper` (float64 [2]: lr, step), the form a compiled training step
// traces so that one graph serves every step of a schedule; the constants
// above are derived from them in the kernel, in float64, as the CPU derives
// them on the host.
struct AdamWStatic {
  double beta1, beta2, eps, weight_decay;
};
void adamw_update_dynamic(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, const Tensor& hyper,
                          const AdamWStatic& k);

struct SGDConstants {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, first_step;
};

// torch.optim.SGD's update in place; momentum_buffer is undefined without momentum.
void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buffer, const SGDConstants& k);

// out (a float64 scalar on x's device) = sum |x|^p over the contiguous floating
// tensor x, or max |x| for p = inf (a NaN wins), accumulated in double.
void power_sum(const Tensor& x, double p, Tensor& out);

}  // namespace ember::cuda
