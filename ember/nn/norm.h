// Normalisation layers over the last dimension: LayerNorm and RMSNorm.
#pragma once

#include "ember/nn/module.h"

namespace ember::nn {

class LayerNorm : public UnaryModule {
 public:
  // affine: learnable weight (ones); bias: learnable bias (zeros), only with affine.
  LayerNorm(int64_t dim, double eps = 1e-5, bool affine = true, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "LayerNorm"; }
  std::string extra_repr() const override;

  int64_t dim;
  double eps;
  Tensor weight;  // [dim] or undefined
  Tensor bias;    // [dim] or undefined
};

class RMSNorm : public UnaryModule {
 public:
  RMSNorm(int64_t dim, double eps = 1e-6);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "RMSNorm"; }
  std::string extra_repr() const override;

  int64_t dim;
  double eps;
  Tensor weight;  // [dim], ones
};

}  // namespace ember::nn
