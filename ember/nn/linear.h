// Linear layer: y = x W^T + b with W [out, in], initialised as PyTorch does.
#pragma once

#include "ember/core/random.h"
#include "ember/nn/module.h"

namespace ember::nn {

class Linear : public UnaryModule {
 public:
  // weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's kaiming-uniform with a = sqrt(5)).
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;  // [..., in] -> [..., out]
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;

  int64_t in_features, out_features;
  Tensor weight;  // [out, in]
  Tensor bias;    // [out], undefined without bias
};

}  // namespace ember::nn
