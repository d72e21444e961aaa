// Placeholder: index ops land with the indexing work.
#include "ember/ops/index_ops.h"

namespace ember {
Tensor concat(const std::vector<Tensor>&, int64_t) { fail("concat", "not implemented yet"); }
Tensor stack(const std::vector<Tensor>&, int64_t) { fail("stack", "not implemented yet"); }
std::vector<Tensor> split(const Tensor&, const std::vector<int64_t>&, int64_t) { fail("split", "not implemented yet"); }
std::vector<Tensor> chunk(const Tensor&, int64_t, int64_t) { fail("chunk", "not implemented yet"); }
Tensor index_select(const Tensor&, int64_t, const Tensor&) { fail("index_select", "not implemented yet"); }
Tensor gather(const Tensor&, int64_t, const Tensor&) { fail("gather", "not implemented yet"); }
Tensor scatter_add(const Tensor&, int64_t, const Tensor&, const Tensor&) { fail("scatter_add", "not implemented yet"); }
Tensor embedding(const Tensor&, const Tensor&) { fail("embedding", "not implemented yet"); }
Tensor one_hot(const Tensor&, int64_t, DType) { fail("one_hot", "not implemented yet"); }
Tensor tril(const Tensor&, int64_t) { fail("tril", "not implemented yet"); }
Tensor triu(const Tensor&, int64_t) { fail("triu", "not implemented yet"); }
ValuesIndices topk(const Tensor&, int64_t, int64_t, bool) { fail("topk", "not implemented yet"); }
ValuesIndices sort(const Tensor&, int64_t, bool) { fail("sort", "not implemented yet"); }
Tensor argsort(const Tensor&, int64_t, bool) { fail("argsort", "not implemented yet"); }
Tensor cumsum(const Tensor&, int64_t) { fail("cumsum", "not implemented yet"); }
}  // namespace ember
