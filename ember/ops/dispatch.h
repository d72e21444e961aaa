// The single entry point through which every op runs a primitive.
//
// apply() validates devices, infers output shapes, allocates outputs from the
// device allocator, runs the device kernel and, when gradients are being
// recorded, attaches an autograd node. The tracer of the graph compiler hooks in
// here too, so eager and compiled execution share one path.
#pragma once

#include <memory>
#include <vector>

#include "ember/ops/primitive.h"

namespace ember {

std::vector<Tensor> apply(PrimitivePtr prim, const std::vector<Tensor>& inputs);
Tensor apply1(PrimitivePtr prim, const std::vector<Tensor>& inputs);

// Runs a primitive writing into existing, contiguous `outputs` (in-place updates
// such as optimizer steps). Refuses to run where autograd would be needed.
void apply_into(PrimitivePtr prim, const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs);

// Runs the kernel only: no shape inference, no autograd (executors use this).
void eval_primitive(const Primitive& prim, const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs);

template <typename P, typename... Args>
PrimitivePtr make_prim(Args&&... args) {
  return std::make_shared<const P>(std::forward<Args>(args)...);
}

}  // namespace ember
