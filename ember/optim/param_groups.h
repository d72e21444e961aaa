// Building parameter groups from a module: weight decay for matrices only.
#pragma once

#include <vector>

#include "ember/nn/module.h"
#include "ember/optim/optimizer.h"

namespace ember::optim {

// Two groups over the module's trainable parameters, in named_parameters order:
//   0: parameters with >= 2 dims (weights of Linear, Embedding), weight_decay = weight_decay
//   1: the rest (biases, norm gains), weight_decay = 0
// Both groups are always present (possibly empty) so that the optimizer's
// state_dict layout does not depend on the model.
std::vector<ParamGroup> make_param_groups(const nn::Module& module, double weight_decay);

}  // namespace ember::optim
