// Placeholder: matmul lands with the linalg work.
#include "ember/ops/linalg.h"

namespace ember {
Tensor matmul(const Tensor&, const Tensor&) { fail("matmul", "not implemented yet"); }
Tensor linear(const Tensor&, const Tensor&, const Tensor&) { fail("linear", "not implemented yet"); }
}  // namespace ember
