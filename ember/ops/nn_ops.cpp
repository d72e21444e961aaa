// Placeholder: fused nn ops land with the nn-ops work.
#include "ember/ops/nn_ops.h"

namespace ember {
Tensor softmax(const Tensor&, int64_t) { fail("softmax", "not implemented yet"); }
Tensor log_softmax(const Tensor&, int64_t) { fail("log_softmax", "not implemented yet"); }
Tensor layer_norm(const Tensor&, const Tensor&, const Tensor&, double) { fail("layer_norm", "not implemented yet"); }
Tensor rms_norm(const Tensor&, const Tensor&, double) { fail("rms_norm", "not implemented yet"); }
Tensor cross_entropy(const Tensor&, const Tensor&, int64_t, Reduction) { fail("cross_entropy", "not implemented yet"); }
Tensor dropout(const Tensor&, double, bool) { fail("dropout", "not implemented yet"); }
Tensor scaled_dot_product_attention(const Tensor&, const Tensor&, const Tensor&, bool, double) {
  fail("scaled_dot_product_attention", "not implemented yet");
}
}  // namespace ember
