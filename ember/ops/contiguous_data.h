// The data of a tensor as a contiguous tensor on its device, for primitives'
// eval functions: a plain copy (no primitive applied, so nothing is recorded by
// autograd or a tracer) when the tensor is strided, the tensor itself otherwise.
#pragma once

#include "ember/core/tensor.h"

namespace ember {

// x when it is undefined or contiguous; else a contiguous copy on x's device.
Tensor contiguous_data(const Tensor& x);

}  // namespace ember
