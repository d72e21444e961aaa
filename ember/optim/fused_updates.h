// Fused optimizer updates: each is ONE primitive that reads the parameter, its
// gradient and its state once and writes parameter and state back in place
// (apply_into), instead of a chain of elementwise ops that would each stream
// the whole model through memory. Supported: float32 and float64 parameters
// with state of the same dtype, and bfloat16/float16 parameters with float32
// state (optimizer_state_dtype), all computed in the state's precision.
#pragma once

#include "ember/core/tensor.h"

namespace ember::optim {

// The dtype optimizer moments are kept in for a parameter dtype.
DType optimizer_state_dtype(DType param_dtype);

struct AdamWHyper {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  int64_t step = 1;  // 1-based step the bias corrections are computed for
};

// torch.optim.AdamW's update, exactly:
//   p <- p * (1 - lr wd);  m <- lerp(m, g, 1 - b1);  v <- b2 v + (1 - b2) g^2
//   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// p, m, v are updated in place; all four tensors contiguous, same shape, same device.
void adamw_update_(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                   const AdamWHyper& h);
// The same with h.lr and h.step read at run time from `hyper`, a float64 [2]
// tensor (lr, step) on the parameters' device: the form an optimizer step
// traced into a compiled graph uses, so that one graph serves every step of a
// schedule (on a GPU the kernel reads them there, with no copy to the host).
void adamw_update_(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                   const AdamWHyper& h, const Tensor& hyper);

struct SGDHyper {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool first_step = false;  // the momentum buffer is initialised to the gradient, as PyTorch does
};

// torch.optim.SGD's update, exactly:
//   d <- g + wd p;  buf <- first ? d : momentum buf + (1 - dampening) d
//   d <- nesterov ? d + momentum buf : buf   (only with momentum != 0)
//   p <- p - lr d
// momentum_buffer must be defined (and is updated in place) iff momentum != 0.
void sgd_update_(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SGDHyper& h);

}  // namespace ember::optim
