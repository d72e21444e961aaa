// Dropout layer: active in training mode, the identity in eval mode.
#pragma once

#include "ember/nn/module.h"

namespace ember::nn {

class Dropout : public UnaryModule {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;

  double p;
};

}  // namespace ember::nn
