// The graph executor: runs a planned graph with preallocated buffers.
//
// Intermediates live in one arena laid out by the memory plan, allocated on the
// first run and reused by every later one; outputs are fresh tensors the caller
// owns; gradients are lent arena bytes (a new arena is taken when a run starts
// while the caller still holds the previous run's gradients). Kernels are the primitives' own (eval_cpu /
// eval_cuda), so a compiled graph computes exactly what eager execution does.
// No autograd is recorded: a graph that needs gradients has its backward pass
// inside it (trace a function that calls backward()), or is replayed through
// eager ops by CompiledFunction.
//
// One run at a time per executor (runs are serialised by a mutex: the arena is
// shared state).
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "ember/graph/ir.h"
#include "ember/graph/memory_plan.h"

namespace ember::graph {

// The device a run of `g` on `inputs` uses: the first of the arguments, then
// of the captures, that is not on the CPU (a GPU model compiled as a function
// of no arguments runs on its weights' device); the CPU when all are there.
Device run_device(const Graph& g, const std::vector<Tensor>& inputs);

class Executor {
 public:
  explicit Executor(Graph graph);

  // Runs the graph on `inputs` (checked against its input specs) and applies
  // its grad bindings (leaf.grad = g, or leaf.grad + g when one exists).
  std::vector<Tensor> run(const std::vector<Tensor>& inputs);

  const Graph& graph() const { return graph_; }
  const MemoryPlan& plan() const { return plan_; }
  // Runs that found a lent gradient still held and took a new arena.
  int64_t fresh_arenas() const { return fresh_arenas_; }

 private:
  Graph graph_;
  MemoryPlan plan_;
  std::shared_ptr<Storage> arena_;
  std::vector<Tensor> arena_views_;  // per value: a tensor over its arena bytes (built once)
  std::vector<int32_t> free_after_;  // per value: node after which the executor drops it (-1: keep)
  int64_t fresh_arenas_ = 0;
  std::mutex mutex_;
};

// Checks that `inputs` match the graph's inputs (count, shape, dtype); errors
// name the position and both specs.
void check_inputs(const Graph& g, const std::vector<Tensor>& inputs, const char* who);
// Checks that captured tensors still have the shapes and dtypes they were traced with.
void check_captures(const Graph& g);

}  // namespace ember::graph
