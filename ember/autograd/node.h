// A node of the autograd graph: the primitive that ran, the tensors it read and
// (detached aliases of) the tensors it produced. Input tensors keep their own
// producer nodes alive, so the graph is owned by the tensors that need it and
// freed as soon as they go away (or as backward releases it).
#pragma once

#include <cstdint>
#include <vector>

#include "ember/ops/primitive.h"

namespace ember {

class Node {
 public:
  Node(PrimitivePtr prim, std::vector<Tensor> inputs, std::vector<Tensor> outputs);

  const Primitive& primitive() const { return *prim_; }
  const PrimitivePtr& primitive_ptr() const { return prim_; }
  const std::vector<Tensor>& inputs() const { return inputs_; }
  const std::vector<Tensor>& outputs() const { return outputs_; }
  const std::vector<TensorSpec>& output_specs() const { return output_specs_; }
  uint64_t sequence() const { return sequence_; }  // creation order, for backward ordering
  bool released() const { return released_; }
  // Drops the saved tensors once backward no longer needs them.
  void release();

 private:
  PrimitivePtr prim_;
  std::vector<Tensor> inputs_;
  std::vector<Tensor> outputs_;
  std::vector<TensorSpec> output_specs_;
  uint64_t sequence_;
  bool released_ = false;
};

}  // namespace ember
