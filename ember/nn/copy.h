// In-place copy into an existing tensor (PyTorch's Tensor.copy_), the one way
// nn and optim write values into parameters and optimizer state: loading
// checkpoints, initialisation, to(). It runs as a primitive through
// apply_into, so the device kernel is chosen by dispatch and no caller touches
// a host pointer.
#pragma once

#include "ember/core/tensor.h"

namespace ember::nn {

// Copies src into dst (contiguous), broadcasting src to dst's shape and
// converting its dtype; src may live on another device. Never recorded by
// autograd (runs under NoGradGuard), so dst may be a parameter.
void copy_(const Tensor& dst, const Tensor& src);

// Replaces what `handle` points at with `value`'s data, shape and device, in
// place on the shared TensorImpl, so every handle to it (a layer's member field,
// the module's registry) sees the change. Autograd history is not carried over.
void rebind_data(const Tensor& handle, const Tensor& value);

}  // namespace ember::nn
