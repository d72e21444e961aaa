// The backward engine: topological walk of autograd nodes applying vjps.
//
// Nodes are processed in dependency order (a node runs once every consumer of
// its outputs has contributed its cotangent), breaking ties by creation order,
// latest first, like PyTorch. Cotangents for one output are summed as they
// arrive; leaves accumulate into .grad out of place, so a gradient tensor handed
// to the user is never modified behind their back.
#include "ember/autograd/engine.h"

#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "ember/autograd/grad_mode.h"
#include "ember/autograd/node.h"
#include "ember/ops/ops.h"

namespace ember {

Tensor sum_to_shape(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  int64_t lead = g.ndim() - int64_t(shape.size());
  if (lead < 0) fail("backward", "gradient of shape ", shape_str(g.shape()), " cannot be reduced to ", shape_str(shape));
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < g.ndim(); ++i)
    if (i < lead || (shape[size_t(i - lead)] == 1 && g.shape(i) != 1)) axes.push_back(i);
  Tensor r = axes.empty() ? g : sum(g, axes, /*keepdim=*/true);
  return reshape(r, shape);
}

namespace {

struct Engine {
  bool retain_graph;
  bool create_graph;
  // When capturing (grad()), gradients for these tensors are returned, not accumulated.
  std::unordered_map<TensorImpl*, size_t> capture_index;
  std::vector<Tensor> captured;
  bool capturing = false;

  std::unordered_map<Node*, std::vector<Tensor>> pending;  // cotangents per node output
  std::unordered_map<Node*, int> dependencies;              // consumers not yet processed
  // Every node of the graph being walked (keeps them alive while we do).
  std::unordered_map<Node*, std::shared_ptr<Node>> nodes;
  // Storage of the caller's seed gradients: never adopted as a .grad.
  std::unordered_set<const Storage*> foreign_storage;

  static void add_into(Tensor& slot, const Tensor& g) { slot = slot.defined() ? add(slot, g) : g; }

  void deliver(const Tensor& target, Tensor g) {
    TensorImpl& t = target.impl();
    if (g.dtype() != t.dtype) g = cast(g, t.dtype);
    if (capturing) {
      auto it = capture_index.find(&t);
      if (it != capture_index.end()) add_into(captured[it->second], g);
    }
    if (t.grad_fn) {
      if (t.retains_grad && !capturing) accumulate_leaf(t, g);
      auto& slots = pending[t.grad_fn.get()];
      if (slots.empty()) slots.resize(t.grad_fn->output_specs().size());
      add_into(slots[size_t(t.output_index)], g);
    } else if (t.requires_grad && !capturing) {
      accumulate_leaf(t, g);
    }
  }

  // .grad is always a dense tensor of the leaf's shape that nobody else can
  // write to: optimizers update it in place through data<T>(). A vjp may hand
  // out a broadcast view (sum's gradient is a stride-0 expand), the user's seed,
  // or one tensor for two inputs (add), so those are copied; a fresh,
  // unshared gradient is kept as it is.
  void accumulate_leaf(TensorImpl& t, const Tensor& g) {
    Tensor stored;
    if (t.grad) {
      stored = add(Tensor(t.grad), create_graph ? g : g.detach());
    } else if (create_graph) {
      stored = contiguous(g);
    } else {
      bool owned = g.is_contiguous() && g.offset() == 0 && g.storage().use_count() == 1 &&
                   g.storage()->nbytes() == g.nbytes() && !foreign_storage.count(g.storage().get());
      stored = owned ? g.detach() : clone(g.detach());
    }
    t.grad = stored.impl_ptr();
  }

  void run(const std::vector<Tensor>& roots, const std::vector<Tensor>& seeds) {
    GradModeGuard mode(create_graph);
    // Discover the graph and count, for each node, how many edges lead into it.
    std::vector<Node*> stack;
    for (const Tensor& r : roots)
      if (r.grad_fn() && nodes.emplace(r.grad_fn().get(), r.grad_fn()).second) stack.push_back(r.grad_fn().get());
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      if (n->released())
        fail("backward", "trying to backward through the graph a second time (through ", n->primitive().name(),
             "); pass retain_graph=true to the first backward");
      for (const Tensor& in : n->inputs()) {
        Node* p = in.impl().grad_fn.get();
        if (!p) continue;
        ++dependencies[p];
        if (nodes.emplace(p, in.impl().grad_fn).second) stack.push_back(p);
      }
    }
    for (size_t i = 0; i < roots.size(); ++i) deliver(roots[i], seeds[i]);

    auto later_first = [](Node* a, Node* b) { return a->sequence() < b->sequence(); };
    std::priority_queue<Node*, std::vector<Node*>, decltype(later_first)> ready(later_first);
    for (const auto& [n, keep] : nodes)
      if (dependencies[n] == 0) ready.push(n);
    while (!ready.empty()) {
      Node* n = ready.top();
      ready.pop();
      process(n);
      for (const Tensor& in : n->inputs()) {
        Node* p = in.impl().grad_fn.get();
        if (p && --dependencies[p] == 0) ready.push(p);
      }
      if (!retain_graph) n->release();
    }
  }

  // The node keeps detached aliases of its outputs (an output holding its own
  // node would be a reference cycle). Vjps such as exp's (g * y) read them; for
  // a differentiable backward (create_graph) y must depend on x again, so it is
  // re-linked to the node that produced it.
  std::vector<Tensor> outputs_for_vjp(Node* n) {
    std::vector<Tensor> outs = n->outputs();
    if (!create_graph) return outs;
    for (size_t k = 0; k < outs.size(); ++k) {
      if (!is_floating(outs[k].dtype())) continue;
      Tensor linked = outs[k].detach();
      TensorImpl& l = linked.impl();
      l.requires_grad = true;
      l.grad_fn = nodes.at(n);
      l.output_index = int(k);
      outs[k] = linked;
    }
    return outs;
  }

  void process(Node* n) {
    auto it = pending.find(n);
    if (it == pending.end()) return;  // no gradient reached this node
    std::vector<Tensor> cotangents = std::move(it->second);
    pending.erase(it);
    const auto& inputs = n->inputs();
    std::vector<bool> needs(inputs.size());
    bool any = false;
    for (size_t i = 0; i < inputs.size(); ++i) {
      needs[i] = inputs[i].requires_grad();
      any = any || needs[i];
    }
    if (!any) return;
    std::vector<Tensor> grads = n->primitive().vjp(inputs, outputs_for_vjp(n), cotangents, needs);
    if (grads.size() != inputs.size())
      fail(n->primitive().name(), "vjp returned ", grads.size(), " gradients for ", inputs.size(), " inputs");
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!needs[i] || !grads[i].defined()) continue;
      deliver(inputs[i], sum_to_shape(grads[i], inputs[i].shape()));
    }
  }
};

std::vector<Tensor> default_seeds(const std::vector<Tensor>& roots, const std::vector<Tensor>& seeds,
                                  const char* where) {
  if (!seeds.empty() && seeds.size() != roots.size())
    fail(where, seeds.size(), " seed gradients given for ", roots.size(), " outputs");
  std::vector<Tensor> out;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    if (!r.requires_grad())
      fail(where, "output ", i, " does not require grad (no input of it requires grad, or it was computed under no_grad)");
    if (!seeds.empty() && seeds[i].defined()) {
      if (seeds[i].shape() != r.shape())
        fail(where, "seed gradient shape ", shape_str(seeds[i].shape()), " does not match output shape ",
             shape_str(r.shape()));
      out.push_back(seeds[i]);
    } else {
      if (r.numel() != 1)
        fail(where, "a seed gradient is needed for a non-scalar output of shape ", shape_str(r.shape()));
      out.push_back(full(r.shape(), 1.0, r.dtype(), r.device()));
    }
  }
  return out;
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& seeds, bool retain_graph,
              bool create_graph) {
  std::vector<Tensor> s = default_seeds(roots, seeds, "backward");
  Engine e{retain_graph || create_graph, create_graph, {}, {}, false, {}, {}, {}, {}};
  for (const Tensor& seed : seeds)
    if (seed.defined()) e.foreign_storage.insert(seed.storage().get());
  e.run(roots, s);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph, bool create_graph,
                         bool allow_unused) {
  std::vector<Tensor> s = default_seeds(outputs, grad_outputs, "grad");
  Engine e{retain_graph || create_graph, create_graph, {}, {}, true, {}, {}, {}, {}};
  e.captured.resize(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) fail("grad", "input ", i, " does not require grad");
    e.capture_index[&inputs[i].impl()] = i;
  }
  e.run(outputs, s);
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!e.captured[i].defined() && !allow_unused)
      fail("grad", "input ", i, " was not used to compute the outputs; pass allow_unused=true");
  return e.captured;
}

void Tensor::backward(const Tensor& seed, bool retain_graph, bool create_graph) const {
  ember::backward({*this}, {seed}, retain_graph, create_graph);
}

}  // namespace ember
