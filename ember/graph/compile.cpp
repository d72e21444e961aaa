// The compile cache and the choice between planned and replayed runs (see compile.h).
#include "ember/graph/compile.h"

#include <cstdio>
#include <map>
#include <mutex>

#include "ember/autograd/grad_mode.h"
#include "ember/core/error.h"
#include "ember/graph/prepacked_linear.h"
#include "ember/ops/dispatch.h"

namespace ember {

struct CompiledFunction::State {
  struct Entry {
    std::unique_ptr<graph::Executor> executor;
    graph::Graph differentiable;  // optimised without fusion, for replay
    std::vector<graph::PassReport> report;
    bool eager = false;
  };
  TensorFn fn;
  CompileOptions options;
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<Entry>> cache;
  std::shared_ptr<Entry> last;
  CompileStats stats;
};

namespace {

std::string signature(const std::vector<Tensor>& inputs, const CompileOptions& o) {
  std::string s = GradMode::enabled() ? "grad" : "nograd";
  if (o.mode) s += " mode=" + std::to_string(o.mode());
  for (const Tensor& t : inputs) {
    if (!t.defined()) fail("compile", "argument ", &t - inputs.data(), " is an undefined tensor");
    // Piece by piece: GCC 12 warns falsely (-Wrestrict, bug 105651) about one
    // chain of + on a temporary string here.
    s += ' ';
    s += dtype_name(t.dtype());
    s += shape_str(t.shape());
    s += '@';
    s += t.device().str();
  }
  return s;
}

// Whether a run must record autograd history: grad mode on, something read
// requires grad, and the graph neither takes its own gradients nor updates
// captures in place (a whole training step, whose outputs need no history).
bool needs_replay(const graph::Graph& g, const std::vector<Tensor>& inputs) {
  if (!GradMode::enabled() || !g.grads.empty() || !g.mutations.empty()) return false;
  for (const Tensor& t : inputs)
    if (t.requires_grad()) return true;
  for (const graph::Capture& c : g.captures)
    if (c.tensor.requires_grad()) return true;
  return false;
}

}  // namespace

std::vector<Tensor> replay(const graph::Graph& g, const std::vector<Tensor>& inputs) {
  graph::check_inputs(g, inputs, "compiled function");
  std::vector<Tensor> vals(g.values.size());
  for (size_t i = 0; i < inputs.size(); ++i) vals[size_t(g.inputs[i])] = inputs[i];
  for (const graph::Capture& c : g.captures) vals[size_t(c.value)] = c.tensor;
  std::vector<Tensor> ins;
  for (const graph::Node& n : g.nodes) {
    ins.clear();
    for (graph::ValueId v : n.inputs) ins.push_back(vals[size_t(v)]);
    std::vector<Tensor> outs = ember::apply(n.prim, ins);
    for (size_t k = 0; k < outs.size(); ++k) vals[size_t(n.outputs[k])] = outs[k];
  }
  for (const graph::Mutation& m : g.mutations) copy_bytes(g.capture_of(m.capture)->tensor, vals[size_t(m.value)]);
  std::vector<Tensor> result;
  for (graph::ValueId v : g.outputs) result.push_back(vals[size_t(v)]);
  return result;
}

CompiledFunction::CompiledFunction(TensorFn fn, CompileOptions options) : state_(std::make_shared<State>()) {
  if (!fn) fail("compile", "no function given");
  state_->fn = std::move(fn);
  state_->options = std::move(options);
  graph::PassOptions& passes = state_->options.passes;
  if (passes.prepack_weights && !passes.packed_weights) passes.packed_weights = std::make_shared<graph::PackedWeightCache>();
}

std::vector<Tensor> CompiledFunction::operator()(const std::vector<Tensor>& inputs) const {
  State& st = *state_;
  const std::string key = signature(inputs, st.options);
  std::shared_ptr<State::Entry> entry;
  {
    std::lock_guard<std::mutex> lock(st.mutex);
    auto it = st.cache.find(key);
    if (it != st.cache.end()) entry = it->second;
  }
  if (!entry) {
    entry = std::make_shared<State::Entry>();
    try {
      graph::Graph traced = graph::trace(st.fn, inputs, st.options.names);
      graph::PassOptions passes = st.options.passes;
      entry->differentiable = traced;
      graph::optimize(entry->differentiable, passes, /*keep_differentiable=*/true);
      entry->report = graph::optimize(traced, passes);
      entry->executor = std::make_unique<graph::Executor>(std::move(traced));
    } catch (const Error& e) {
      if (st.options.fullgraph) throw;
      std::fprintf(stderr, "compile: running eagerly for signature (%s): %s\n", key.c_str(), e.what());
      entry->eager = true;
    }
    std::lock_guard<std::mutex> lock(st.mutex);
    st.cache.emplace(key, entry);
    ++st.stats.traces;
  }
  {
    std::lock_guard<std::mutex> lock(st.mutex);
    st.last = entry;
  }
  if (entry->eager) {
    std::lock_guard<std::mutex> lock(st.mutex);
    ++st.stats.eager_runs;
  } else if (!st.options.passes.prepack_weights && needs_replay(entry->differentiable, inputs)) {
    {
      std::lock_guard<std::mutex> lock(st.mutex);
      ++st.stats.replayed_runs;
    }
    graph::check_captures(entry->differentiable);
    return replay(entry->differentiable, inputs);
  } else {
    {
      std::lock_guard<std::mutex> lock(st.mutex);
      ++st.stats.planned_runs;
    }
    return entry->executor->run(inputs);
  }
  return st.fn(inputs);
}

const graph::Graph* CompiledFunction::last_graph() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->last && state_->last->executor ? &state_->last->executor->graph() : nullptr;
}

const graph::MemoryPlan* CompiledFunction::last_plan() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->last && state_->last->executor ? &state_->last->executor->plan() : nullptr;
}

const std::vector<graph::PassReport>* CompiledFunction::last_report() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->last && state_->last->executor ? &state_->last->report : nullptr;
}

CompileStats CompiledFunction::stats() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->stats;
}

CompiledFunction compile(TensorFn fn, CompileOptions options) { return CompiledFunction(std::move(fn), std::move(options)); }

}  // namespace ember
