// AdamW (torch.optim.AdamW): Adam with decoupled weight decay. Each parameter's
// update is one fused kernel pass (fused_updates.h).
#pragma once

#include "ember/optim/optimizer.h"

namespace ember::optim {

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
};

// Group options: lr, beta1, beta2, eps, weight_decay. State per parameter:
// exp_avg, exp_avg_sq (float32 for 16-bit parameters) and the step count.
class AdamW : public Optimizer {
 public:
  explicit AdamW(const std::vector<Tensor>& params, const AdamWOptions& options = {});
  explicit AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options = {});

 protected:
  void validate(const ParamGroup& group) const override;
  std::vector<std::string> state_names(const ParamGroup& group) const override;
  void update(const ParamGroup& group, const Tensor& param, const Tensor& grad, ParamState& state) override;
  void update_traced(const ParamGroup& group, const Tensor& param, const Tensor& grad, ParamState& state,
                     const Tensor& hyper) override;
  void init_state(const ParamGroup& group, const Tensor& param, ParamState& state) override;
};

}  // namespace ember::optim
