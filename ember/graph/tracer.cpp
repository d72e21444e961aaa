// The recorder behind graph::trace (see tracer.h).
#include "ember/graph/tracer.h"

#include <unordered_set>

#include "ember/core/error.h"

namespace ember::graph {
namespace {

class Tracer final : public TraceRecorder {
 public:
  Tracer(Graph& g, const CaptureNamer& namer) : g_(g), namer_(namer) {}

  Tensor add_input(const Tensor& example) {
    ValueId v = g_.add_input({example.shape(), example.dtype()});
    return placeholder(v, example.device(), "argument " + std::to_string(g_.inputs.size() - 1));
  }

  std::vector<Tensor> record(const PrimitivePtr& prim, const std::vector<Tensor>& inputs,
                             const std::vector<TensorSpec>& specs) override {
    std::vector<ValueId> ins;
    ins.reserve(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) ins.push_back(value_of(inputs[i], prim->name(), i));
    const Node& n = g_.add_node(prim, std::move(ins), specs);
    Device device = inputs.empty() ? Device::cpu() : inputs[0].device();
    std::vector<Tensor> outs;
    outs.reserve(specs.size());
    for (ValueId v : n.outputs) outs.push_back(placeholder(v, device, "the output of " + prim->str()));
    return outs;
  }

  // An in-place update becomes a functional node: its outputs are new values,
  // and every tensor it wrote now stands for its output (later reads see the
  // update). A written capture (a parameter, an optimizer moment) gets a
  // mutation record so that the run leaves the new value in its tensor.
  void record_into(const PrimitivePtr& prim, const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) override {
    std::vector<ValueId> ins;
    ins.reserve(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) ins.push_back(value_of(inputs[i], prim->name(), i));
    std::vector<ValueId> targets;
    std::vector<TensorSpec> specs;
    for (size_t k = 0; k < outputs.size(); ++k) {
      const Tensor& o = outputs[k];
      if (o.offset() != 0 || !o.is_contiguous() || o.nbytes() != o.storage()->nbytes())
        fail("compile", prim->name(), " updates a view (output ", k, " of shape ", shape_str(o.shape()),
             "); only whole tensors can be updated in place in a compiled function");
      const ValueId target = value_of(o, prim->name(), k);
      // A view made by an op shares the bytes of what it views: an update
      // through one would not reach the viewed tensor.
      const Value& tv = g_.values[size_t(target)];
      if (tv.kind == ValueKind::node_output && g_.nodes[size_t(tv.node)].prim->is_view())
        fail("compile", prim->name(), " updates a view (output ", k, " of shape ", shape_str(o.shape()),
             "); in a compiled function only whole tensors can be updated in place");
      mark_views_stale(target);
      targets.push_back(target);
      specs.push_back({o.shape(), o.dtype()});
    }
    const Node& n = g_.add_node(prim, std::move(ins), specs);
    const std::vector<ValueId> results = n.outputs;
    for (size_t k = 0; k < outputs.size(); ++k) {
      const Tensor& o = outputs[k];
      const ValueId target = targets[k], result = results[k];
      if (o.storage()->is_placeholder()) {
        by_storage_[o.storage().get()] = result;  // an intermediate of this trace, rebound
        continue;
      }
      for (const Capture& c : g_.captures)
        if (c.tensor.storage() == o.storage() && c.tensor.impl_ptr() != o.impl_ptr())
          fail("compile", prim->name(), " updates a tensor that shares its bytes with another tensor the graph reads ('",
               c.name, "'); only tensors with their own storage can be updated in place in a compiled function");
      const Value& tv = g_.values[size_t(target)];
      ValueId capture = target;
      if (tv.kind != ValueKind::capture) {
        // Already updated earlier in this trace: its mutation now records the later value.
        for (Mutation& m : g_.mutations)
          if (m.value == target) capture = m.capture;
        if (capture == target) fail("compile", prim->name(), " updates a tensor the trace cannot name");
      }
      bool found = false;
      for (Mutation& m : g_.mutations)
        if (m.capture == capture) m.value = result, found = true;
      if (!found) g_.mutations.push_back({capture, result});
      by_impl_[o.impl_ptr().get()] = result;
    }
  }

  // Ends the trace: records outputs and grad bindings, restores set-aside
  // gradients, and marks unreachable captures constant.
  void finish(std::vector<Tensor> outputs) {
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (!outputs[i].defined()) fail("compile", "the traced function returned an undefined tensor at position ", i);
      g_.outputs.push_back(value_of(outputs[i], "return", i));
    }
    for (Stashed& s : stashed_) {
      TensorImpl& leaf = s.leaf.impl();
      if (leaf.grad) {
        Tensor grad(leaf.grad);
        g_.grads.push_back({s.leaf, value_of(grad, "backward", 0)});
      }
    }
    restore_grads();
    // Drop every reference the trace made, so that use counts tell which
    // captures only the graph can reach.
    outputs.clear();
    stashed_.clear();
    placeholders_.clear();
    by_storage_.clear();
    by_impl_.clear();
    std::vector<bool> mutated(g_.values.size(), false);
    for (const Mutation& m : g_.mutations) mutated[size_t(m.capture)] = true;
    for (Capture& c : g_.captures) {
      const Tensor& t = c.tensor;
      c.constant = !mutated[size_t(c.value)] && !t.requires_grad() && t.impl_ptr().use_count() == 1 &&
                   t.storage().use_count() == 1;
    }
  }

  // Puts back the gradients set aside while tracing (also after a failed trace).
  void restore_grads() {
    for (Stashed& s : stashed_) s.leaf.impl().grad = s.grad;
    stashed_.clear();
  }

 private:
  Tensor placeholder(ValueId v, Device device, std::string origin) {
    const TensorSpec& s = g_.spec(v);
    auto impl = std::make_shared<TensorImpl>();
    impl->shape = s.shape;
    impl->strides = contiguous_strides(s.shape);
    impl->dtype = s.dtype;
    impl->device = device;
    impl->storage = Storage::placeholder(size_t(numel(s.shape)) * dtype_size(s.dtype), device, std::move(origin));
    by_storage_[impl->storage.get()] = v;
    Tensor t(std::move(impl));
    if (placeholders_.size() <= size_t(v)) placeholders_.resize(size_t(v) + 1);
    placeholders_[size_t(v)] = t;
    return t;
  }

  // Views taken of `v` before it is updated in place still hold the old
  // contents in the graph (eagerly they would show the update): reading one
  // afterwards is refused.
  void mark_views_stale(ValueId v) {
    std::vector<bool> derived(g_.values.size(), false);
    derived[size_t(v)] = true;
    for (const Node& n : g_.nodes)
      if (n.prim->is_view() && !n.inputs.empty() && derived[size_t(n.inputs[0])])
        for (ValueId o : n.outputs) derived[size_t(o)] = true, stale_.insert(o);
  }

  ValueId value_of(const Tensor& t, const char* op, size_t position) {
    if (!t.defined()) fail(op, "input ", position, " is an undefined tensor");
    const std::shared_ptr<Storage>& storage = t.storage();
    if (storage && storage->is_placeholder()) {
      auto it = by_storage_.find(storage.get());
      if (it == by_storage_.end())
        fail("compile", op, " reads a traced tensor from another trace (a placeholder that escaped its compiled function)");
      if (stale_.count(it->second))
        fail("compile", op, " reads a view of a tensor that was updated in place after the view was taken; take the "
                            "view again after the update");
      const TensorSpec& s = g_.spec(it->second);
      if (t.shape() != s.shape || t.offset() != 0 || !t.is_contiguous())
        fail("compile", op, " reads a view of a traced tensor made without a primitive (shape ", shape_str(t.shape()),
             " of ", shape_str(s.shape), "); make views with ember ops so that they are recorded");
      return it->second;
    }
    auto it = by_impl_.find(t.impl_ptr().get());
    if (it != by_impl_.end()) return it->second;
    if (!storage) fail(op, "input ", position, " has no data");
    std::string name = namer_ ? namer_(t) : std::string();
    if (name.empty()) name = std::string(1, 'c').append(std::to_string(g_.captures.size()));  // not "c" + ...: GCC 12's false -Wrestrict (bug 105651)
    ValueId v = g_.add_capture(t, name, false);
    by_impl_[t.impl_ptr().get()] = v;
    if (t.requires_grad() && t.is_leaf()) {
      // Set the leaf's gradient aside: backward() in the trace must produce this
      // call's contribution alone, not add to a value baked in at trace time.
      stashed_.push_back({t, t.impl().grad});
      t.impl().grad = nullptr;
    }
    return v;
  }

  struct Stashed {
    Tensor leaf;
    std::shared_ptr<TensorImpl> grad;
  };

  Graph& g_;
  const CaptureNamer& namer_;
  std::unordered_map<const Storage*, ValueId> by_storage_;
  std::unordered_map<const TensorImpl*, ValueId> by_impl_;
  std::vector<Tensor> placeholders_;
  std::vector<Stashed> stashed_;
  std::unordered_set<ValueId> stale_;
};

}  // namespace

Graph trace(const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& fn,
            const std::vector<Tensor>& examples, const CaptureNamer& namer) {
  Graph g;
  Tracer tracer(g, namer);
  std::vector<Tensor> args;
  for (const Tensor& e : examples) {
    if (!e.defined()) fail("compile", "argument ", args.size(), " is an undefined tensor");
    args.push_back(tracer.add_input(e));
  }
  std::vector<Tensor> outputs;
  {
    TraceRecorderGuard guard(&tracer);
    try {
      outputs = fn(args);
    } catch (...) {
      tracer.restore_grads();  // leave the captured leaves' gradients as they were
      throw;
    }
  }
  args.clear();
  tracer.finish(std::move(outputs));
  g.verify();
  return g;
}

}  // namespace ember::graph
