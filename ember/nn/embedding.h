// Embedding table: rows of weight [num_embeddings, dim] looked up by integer ids.
#pragma once

#include "ember/core/random.h"
#include "ember/nn/module.h"

namespace ember::nn {

class Embedding : public UnaryModule {
 public:
  // weight ~ N(0, 1), as PyTorch initialises nn.Embedding.
  Embedding(int64_t num_embeddings, int64_t embedding_dim, Generator* gen = nullptr);
  Tensor forward(const Tensor& ids) override;  // int ids [...] -> [..., dim]
  std::string type_name() const override { return "Embedding"; }
  std::string extra_repr() const override;

  int64_t num_embeddings, embedding_dim;
  Tensor weight;  // [num_embeddings, dim]
};

}  // namespace ember::nn
