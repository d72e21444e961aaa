// make_param_groups.
#include "ember/optim/param_groups.h"

namespace ember::optim {

std::vector<ParamGroup> make_param_groups(const nn::Module& module, double weight_decay) {
  EMBER_CHECK(weight_decay >= 0.0, "make_param_groups", "weight_decay must be non-negative, got ", weight_decay);
  ParamGroup decay{{}, {{"weight_decay", weight_decay}}};
  ParamGroup no_decay{{}, {{"weight_decay", 0.0}}};
  for (const auto& [name, p] : module.named_parameters()) {
    if (!p.requires_grad()) continue;
    (p.ndim() >= 2 ? decay : no_decay).params.push_back(p);
  }
  return {std::move(decay), std::move(no_decay)};
}

}  // namespace ember::optim
