// Embedding layer.
#include "ember/nn/embedding.h"

#include "ember/nn/init.h"
#include "ember/ops/index_ops.h"

namespace ember::nn {

Embedding::Embedding(int64_t num, int64_t dim, Generator* gen) : num_embeddings(num), embedding_dim(dim) {
  EMBER_CHECK(num > 0 && dim > 0, "Embedding", "sizes must be positive, got num_embeddings=", num,
              " embedding_dim=", dim);
  weight = register_parameter("weight", Tensor::empty({num, dim}));
  init::normal_(weight, 0.0, 1.0, gen);
}

Tensor Embedding::forward(const Tensor& ids) { return embedding(weight, ids); }

std::string Embedding::extra_repr() const { return str_cat(num_embeddings, ", ", embedding_dim); }

}  // namespace ember::nn
