// Contiguous copies for primitives' eval functions (see contiguous_data.h).
#include "ember/ops/contiguous_data.h"

#include "ember/backend/cpu/elementwise_kernels.h"
#ifdef EMBER_WITH_CUDA
#include "ember/backend/cuda/elementwise_kernels.h"
#endif

namespace ember {

Tensor contiguous_data(const Tensor& x) {
  if (!x.defined() || x.is_contiguous()) return x;
  Tensor c = Tensor::empty(x.shape(), x.dtype(), x.device());
#ifdef EMBER_WITH_CUDA
  if (!x.device().is_cpu()) {
    cuda::copy_cast(x, c);
    return c;
  }
#endif
  cpu::copy_cast(x, c);
  return c;
}

}  // namespace ember
