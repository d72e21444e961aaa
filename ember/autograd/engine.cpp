// The backward engine: topological walk of autograd nodes applying vjps.
//
// Nodes are processed in dependency order (a node runs once every consumer of
// its outputs has contributed its cotangent), breaking ties by creation order,
// latest first, like PyTorch. Cotangents for one output are summed as they
// arrive; leaves accumulate into .grad out of place, so a gradient tensor handed
// to the user is never modified behind their back.
#include "ember/autograd/engine.h"

#include <atomic>
#include <mutex>
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

// Post-accumulate-grad hooks live in a side table rather than in TensorImpl so
// that the tensor header (included everywhere) stays free of autograd policy.
// Entries hold a weak reference: a hook of a tensor that has died is ignored and
// dropped, never inherited by a new tensor at the same address.
struct HookEntry {
  std::weak_ptr<TensorImpl> owner;
  std::vector<std::pair<int64_t, PostAccumulateGradHook>> hooks;
};
std::mutex hook_mutex;
std::unordered_map<const TensorImpl*, HookEntry> hook_table;
std::atomic<size_t> hook_table_size{0};

// The live hooks of t (copied: a hook may register or remove hooks).
std::vector<std::pair<int64_t, PostAccumulateGradHook>> hooks_of(const Tensor& t) {
  if (hook_table_size.load(std::memory_order_relaxed) == 0) return {};
  std::lock_guard<std::mutex> lock(hook_mutex);
  auto it = hook_table.find(t.impl_ptr().get());
  if (it == hook_table.end()) return {};
  if (it->second.owner.lock() != t.impl_ptr()) {
    hook_table.erase(it);
    hook_table_size = hook_table.size();
    return {};
  }
  return it->second.hooks;
}

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
  // Post-accumulate-grad hooks: for each hooked leaf, the graph edges into it
  // not yet processed; when the count reaches zero its gradient is final.
  std::unordered_map<TensorImpl*, int> hooked_edges;
  std::unordered_set<TensorImpl*> accumulated;  // hooked leaves that received a gradient

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
    if (hooked_edges.count(&t)) accumulated.insert(&t);
  }

  static bool hooked(const Tensor& t) {
    const TensorImpl& i = t.impl();
    return !i.grad_fn && i.requires_grad && !hooks_of(t).empty();
  }

  // One edge into `leaf` has been processed; fire its hooks after the last one.
  void edge_done(const Tensor& leaf) {
    TensorImpl* t = &leaf.impl();
    auto it = hooked_edges.find(t);
    if (it == hooked_edges.end() || --it->second > 0) return;
    hooked_edges.erase(it);
    if (!accumulated.erase(t)) return;  // no gradient reached it in this pass
    for (auto& [id, hook] : hooks_of(leaf)) hook(leaf);
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
        if (!p) {
          if (!capturing && hooked(in)) ++hooked_edges[&in.impl()];
          continue;
        }
        ++dependencies[p];
        if (nodes.emplace(p, in.impl().grad_fn).second) stack.push_back(p);
      }
    }
    for (const Tensor& r : roots)
      if (!capturing && hooked(r)) ++hooked_edges[&r.impl()];
    for (size_t i = 0; i < roots.size(); ++i) deliver(roots[i], seeds[i]);
    for (const Tensor& r : roots)
      if (!capturing && hooked(r)) edge_done(r);

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
        if (!p && !hooked_edges.empty()) edge_done(in);
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
  Engine e{retain_graph || create_graph, create_graph, {}, {}, false, {}, {}, {}, {}, {}, {}};
  for (const Tensor& seed : seeds)
    if (seed.defined()) e.foreign_storage.insert(seed.storage().get());
  e.run(roots, s);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph, bool create_graph,
                         bool allow_unused) {
  std::vector<Tensor> s = default_seeds(outputs, grad_outputs, "grad");
  Engine e{retain_graph || create_graph, create_graph, {}, {}, true, {}, {}, {}, {}, {}, {}};
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

int64_t register_post_accumulate_grad_hook(const Tensor& leaf, PostAccumulateGradHook hook) {
  if (!leaf.defined() || !leaf.is_leaf() || !leaf.requires_grad())
    fail("register_post_accumulate_grad_hook", "the tensor must be a leaf that requires grad");
  if (!hook) fail("register_post_accumulate_grad_hook", "empty hook");
  static std::atomic<int64_t> next_id{1};
  int64_t id = next_id++;
  std::lock_guard<std::mutex> lock(hook_mutex);
  // Drop entries of dead tensors so the table does not grow without bound.
  std::erase_if(hook_table, [](const auto& kv) { return kv.second.owner.expired(); });
  HookEntry& e = hook_table[leaf.impl_ptr().get()];
  if (e.owner.lock() != leaf.impl_ptr()) e = HookEntry{leaf.impl_ptr(), {}};
  e.hooks.emplace_back(id, std::move(hook));
  hook_table_size = hook_table.size();
  return id;
}

void remove_post_accumulate_grad_hook(const Tensor& leaf, int64_t id) {
  if (!leaf.defined()) return;
  std::lock_guard<std::mutex> lock(hook_mutex);
  auto it = hook_table.find(leaf.impl_ptr().get());
  if (it == hook_table.end()) return;
  std::erase_if(it->second.hooks, [id](const auto& h) { return h.first == id; });
  if (it->second.hooks.empty()) hook_table.erase(it);
  hook_table_size = hook_table.size();
}

void Tensor::backward(const Tensor& seed, bool retain_graph, bool create_graph) const {
  ember::backward({*this}, {seed}, retain_graph, create_graph);
}

}  // namespace ember
