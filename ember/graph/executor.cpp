// Planned execution of a graph (see executor.h).
#include "ember/graph/executor.h"

#include "ember/autograd/grad_mode.h"
#include "ember/core/error.h"
#include "ember/ops/dispatch.h"
#include "ember/ops/elementwise.h"

namespace ember::graph {

void check_inputs(const Graph& g, const std::vector<Tensor>& inputs, const char* who) {
  if (inputs.size() != g.inputs.size())
    fail(who, "expected ", g.inputs.size(), " inputs, got ", inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorSpec& s = g.spec(g.inputs[i]);
    if (!inputs[i].defined()) fail(who, "input ", i, " is an undefined tensor");
    if (inputs[i].shape() != s.shape || inputs[i].dtype() != s.dtype)
      fail(who, "input ", i, " must be ", dtype_name(s.dtype), " ", shape_str(s.shape), ", got ",
           dtype_name(inputs[i].dtype()), " ", shape_str(inputs[i].shape()));
  }
}

Executor::Executor(Graph graph) : graph_(std::move(graph)), plan_(plan_memory(graph_)) {
  graph_.verify();
  // Fresh (unplanned) intermediates are dropped after their last reader, so the
  // executor holds no more than eager execution would.
  free_after_.assign(graph_.values.size(), -1);
  std::vector<bool> obs = graph_.observed();
  for (size_t v = 0; v < graph_.values.size(); ++v)
    if (graph_.values[v].kind == ValueKind::node_output && !obs[v]) free_after_[v] = plan_.last_use[v];
}

void check_captures(const Graph& g) {
  for (const Capture& c : g.captures) {
    const TensorSpec& s = g.spec(c.value);
    if (c.tensor.shape() != s.shape || c.tensor.dtype() != s.dtype)
      fail("compile", "captured tensor '", c.name, "' changed from ", dtype_name(s.dtype), " ", shape_str(s.shape),
           " to ", dtype_name(c.tensor.dtype()), " ", shape_str(c.tensor.shape()),
           " since the function was traced; compile it again");
  }
}

Device run_device(const Graph& g, const std::vector<Tensor>& inputs) {
  for (const Tensor& t : inputs)
    if (!t.device().is_cpu()) return t.device();
  for (const Capture& c : g.captures)
    if (!c.tensor.device().is_cpu()) return c.tensor.device();
  return Device::cpu();
}

std::vector<Tensor> Executor::run(const std::vector<Tensor>& inputs) {
  check_inputs(graph_, inputs, "compiled function");
  std::lock_guard<std::mutex> lock(mutex_);
  check_captures(graph_);
  NoGradGuard no_grad;

  const Device device = run_device(graph_, inputs);
  // Gradients of the previous run still held by the caller (a .grad not yet
  // cleared, or a view of one) must not be overwritten: take a fresh arena; the
  // old one lives on until those tensors go.
  for (ValueId v : plan_.lent)
    if (arena_ && (arena_views_[size_t(v)].impl_ptr().use_count() > 1 ||
                   arena_views_[size_t(v)].storage().use_count() > 1)) {
      arena_.reset();
      ++fresh_arenas_;
      break;
    }
  if (!arena_ && plan_.arena_bytes > 0) {
    arena_ = std::make_shared<Storage>(size_t(plan_.arena_bytes), device);
    arena_views_.assign(graph_.values.size(), Tensor());
    for (size_t v = 0; v < graph_.values.size(); ++v) {
      if (plan_.offset[v] < 0) continue;
      const TensorSpec& s = graph_.spec(ValueId(v));
      auto impl = std::make_shared<TensorImpl>();
      impl->shape = s.shape;
      impl->strides = contiguous_strides(s.shape);
      impl->dtype = s.dtype;
      impl->device = device;
      std::shared_ptr<Storage> keep = arena_;
      impl->storage = std::make_shared<Storage>(static_cast<char*>(arena_->data()) + plan_.offset[v],
                                                size_t(numel(s.shape)) * dtype_size(s.dtype), device,
                                                [keep] {});
      arena_views_[v] = Tensor(std::move(impl));
    }
  }

  std::vector<Tensor> vals(graph_.values.size());
  for (size_t i = 0; i < inputs.size(); ++i) vals[size_t(graph_.inputs[i])] = inputs[i];
  for (const Capture& c : graph_.captures) vals[size_t(c.value)] = c.tensor;

  std::vector<Tensor> ins, outs;
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    const Node& n = graph_.nodes[i];
    ins.clear();
    for (ValueId v : n.inputs) ins.push_back(vals[size_t(v)]);
    outs.clear();
    for (ValueId o : n.outputs) {
      const TensorSpec& s = graph_.spec(o);
      if (n.prim->is_view()) outs.push_back(Tensor::unallocated(s.shape, s.dtype, device));
      else if (plan_.in_capture[size_t(o)] >= 0) outs.push_back(graph_.capture_of(plan_.in_capture[size_t(o)])->tensor);
      else if (plan_.offset[size_t(o)] >= 0) outs.push_back(arena_views_[size_t(o)]);
      else outs.push_back(Tensor::empty(s.shape, s.dtype, device));
    }
    eval_primitive(*n.prim, ins, outs);
    for (size_t k = 0; k < outs.size(); ++k) vals[size_t(n.outputs[k])] = outs[k];
    for (ValueId v : n.inputs)
      if (free_after_[size_t(v)] == int32_t(i)) vals[size_t(v)] = Tensor();
  }

  for (const Mutation& m : graph_.mutations)
    if (plan_.in_capture[size_t(m.value)] < 0) copy_bytes(graph_.capture_of(m.capture)->tensor, vals[size_t(m.value)]);
  std::vector<bool> bound(graph_.values.size(), false);
  for (const GradBinding& b : graph_.grads) {
    Tensor g = vals[size_t(b.value)];
    // Two leaves whose gradients CSE merged must not share one .grad tensor.
    if (bound[size_t(b.value)]) g = clone(g);
    bound[size_t(b.value)] = true;
    TensorImpl& leaf = b.leaf.impl();
    leaf.grad = leaf.grad ? add(Tensor(leaf.grad), g).impl_ptr() : g.impl_ptr();
  }
  std::vector<Tensor> result;
  result.reserve(graph_.outputs.size());
  for (ValueId v : graph_.outputs) result.push_back(vals[size_t(v)]);
  return result;
}

}  // namespace ember::graph
