// ember::compile: the same model code, run as an optimised static graph.
//
//   auto step = ember::compile([&](const std::vector<Tensor>& in) {
//     Tensor loss = model.loss(in[0], in[1]);
//     loss.backward();
//     return std::vector<Tensor>{loss};
//   });
//   step({x, y});   // first call with these shapes: trace, optimise, plan, run
//   step({x2, y2}); // same signature: run the cached graph
//
// A call's signature is its inputs' shapes, dtypes and devices, the grad mode,
// and the caller's `mode` (e.g. a module's train/eval flag); a new signature
// traces again. Parameters and buffers are captured by reference, so training
// updates between calls are seen; arguments are the tensors passed in. For
// inference, options.passes.prepack_weights freezes the weights instead: each
// float32 Linear weight is packed once for the GEMM, at its first use by any
// signature of this function, and later updates to it are not seen (passes.h);
// such a function always runs planned, so its outputs carry no autograd
// history even in grad mode.
//
// Two ways to run a cached graph:
//   - planned (the usual): the fully optimised graph (fusion included) on the
//     executor with its preallocated arena, no autograd recorded. A function
//     that calls backward() has its backward pass in the graph, and its
//     gradients land in the parameters' .grad (added to an existing .grad).
//     On a GPU the same graph runs each primitive's CUDA kernel from an arena
//     on the device, fused elementwise programs included.
//   - replayed: when grad mode is on and the graph reads tensors that require
//     grad but does not itself call backward() (a compiled forward inside an
//     eager training loop), the differentiable graph (no fusion) runs op by op
//     through eager dispatch, so the outputs carry autograd history.
//
// Not yet compiled: random ops (dropout > 0 in train mode), optimizer steps
// other than AdamW's and reading tensor values; with fullgraph = false such a
// function runs eagerly instead (with a one-line note on stderr), otherwise
// the call throws naming the op.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ember/graph/executor.h"
#include "ember/graph/passes.h"
#include "ember/graph/tracer.h"

namespace ember {

using TensorFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

struct CompileOptions {
  bool fullgraph = true;          // false: fall back to eager when tracing fails
  graph::PassOptions passes;      // which passes run
  std::function<int64_t()> mode;  // extra signature key (train/eval), may be empty
  graph::CaptureNamer names;      // names captured tensors in dumps, may be empty
};

struct CompileStats {
  int64_t traces = 0;           // signatures traced
  int64_t planned_runs = 0;     // calls run on the executor
  int64_t replayed_runs = 0;    // calls replayed through eager ops (autograd)
  int64_t eager_runs = 0;       // calls run eagerly after a failed trace (fullgraph = false)
};

class CompiledFunction {
 public:
  CompiledFunction(TensorFn fn, CompileOptions options);
  std::vector<Tensor> operator()(const std::vector<Tensor>& inputs) const;

  // The most recently used signature's optimised graph, memory plan and pass
  // report; null before the first call or when that call ran eagerly.
  const graph::Graph* last_graph() const;
  const graph::MemoryPlan* last_plan() const;
  const std::vector<graph::PassReport>* last_report() const;
  CompileStats stats() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

CompiledFunction compile(TensorFn fn, CompileOptions options = {});

// Runs a graph op by op through eager dispatch (autograd recorded when enabled).
std::vector<Tensor> replay(const graph::Graph& g, const std::vector<Tensor>& inputs);

}  // namespace ember
