// Making a primitive through its public op, for passes that rewrite nodes.
//
// Primitive classes are private to their op files (the op validates and builds
// them); a pass that needs, say, a permute with other dims calls the public op
// on a placeholder of the right spec under a recorder that keeps the primitive
// the op built and records nothing.
#pragma once

#include <functional>

#include "ember/ops/primitive.h"

namespace ember::graph {

// The primitive that `op` applies to a tensor of spec `input` (exactly one).
PrimitivePtr primitive_of(const TensorSpec& input, const std::function<Tensor(const Tensor&)>& op);
// The same for an op of several inputs.
PrimitivePtr primitive_of(const std::vector<TensorSpec>& inputs,
                          const std::function<Tensor(const std::vector<Tensor>&)>& op);

// The output specs `prim` gives inputs of these specs (its own checks apply:
// an input it cannot take is an error naming the primitive).
std::vector<TensorSpec> output_specs_of(const Primitive& prim, const std::vector<TensorSpec>& inputs);

}  // namespace ember::graph
