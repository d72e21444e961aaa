// SGD with momentum, dampening, Nesterov momentum and (coupled) weight decay,
// with torch.optim.SGD's exact update rule, as one fused kernel per parameter.
#pragma once

#include "ember/optim/optimizer.h"

namespace ember::optim {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
};

// Group options: lr, momentum, dampening, nesterov (0 or 1), weight_decay.
// State per parameter: momentum_buffer (when momentum != 0) and the step count.
class SGD : public Optimizer {
 public:
  explicit SGD(const std::vector<Tensor>& params, const SGDOptions& options = {});
  explicit SGD(std::vector<ParamGroup> groups, const SGDOptions& options = {});

 protected:
  void validate(const ParamGroup& group) const override;
  std::vector<std::string> state_names(const ParamGroup& group) const override;
  void update(const ParamGroup& group, const Tensor& param, const Tensor& grad, ParamState& state) override;
};

}  // namespace ember::optim
