// Placeholder: multinomial sampling lands with the indexing work.
#include "ember/ops/random_ops.h"

namespace ember {
Tensor multinomial(const Tensor&, int64_t, bool, Generator*) { fail("multinomial", "not implemented yet"); }
}  // namespace ember
