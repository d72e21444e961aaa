// Reverse-mode automatic differentiation over the recorded graph.
#pragma once

#include <cstdint>
#include <functional>
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

// Registers `hook(leaf)` to run during every backward() after the leaf's
// gradient for that pass is complete, i.e. all of its contributions have been
// accumulated into leaf.grad() (PyTorch's register_post_accumulate_grad_hook).
// A leaf used by several ops fires once per backward, after the last one. The
// hook runs on the thread calling backward(), between vjps, so it may start
// asynchronous work on the gradient (data parallel's bucketed all-reduce); it
// must not modify the graph. Not called by grad(), which accumulates nothing.
// Returns an id for remove_post_accumulate_grad_hook.
using PostAccumulateGradHook = std::function<void(const Tensor& leaf)>;
int64_t register_post_accumulate_grad_hook(const Tensor& leaf, PostAccumulateGradHook hook);
// Removes a hook by id; unknown ids are ignored (a no-op).
void remove_post_accumulate_grad_hook(const Tensor& leaf, int64_t id);

// Sums a broadcast gradient down to `shape` (the one place broadcasting is undone).
Tensor sum_to_shape(const Tensor& g, const Shape& shape);

}  // namespace ember
