// Reverse-mode automatic differentiation over the recorded graph.
#pragma once

#include <vector>

#include "ember/core/tensor.h"

namespace ember {

// Accumulates d(roots)/d(leaf) into every leaf's .grad. `seeds[i]` is the
// cotangent of roots[i] (ones for a scalar root when omitted). With
// create_graph the backward computation is itself recorded, so gradients can be
// differentiated again. Without retain_graph the graph is freed as it is walked.
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& seeds = {}, bool retain_graph = false,
              bool create_graph = false);

// Returns d(outputs)/d(inputs) instead of accumulating into .grad (torch.autograd.grad).
// An input that the outputs do not depend on is an error unless allow_unused, in
// which case its gradient is an undefined tensor.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool retain_graph = false,
                         bool create_graph = false, bool allow_unused = false);

// Sums a broadcast gradient down to `shape` (the one place broadcasting is undone).
Tensor sum_to_shape(const Tensor& g, const Shape& shape);

}  // namespace ember
