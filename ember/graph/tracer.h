// Tracing: runs a function on placeholder tensors and records the primitives
// it applies into a Graph (see ir.h).
//
// While a Tracer is active on a thread, every op records instead of running
// (ember/ops/trace_hook.h) and returns placeholders: tensors with a shape and
// dtype whose storage has no data. Real tensors the function touches become
// captures, read by reference at run time: parameters and buffers stay live,
// so optimizer updates between calls are seen. A capture that nothing outside
// the graph can reach once the function returns (a mask or a scalar made while
// tracing) is marked constant. Reading a placeholder's values (data-dependent
// control flow) throws an error naming the op that produced it.
//
// Autograd works during a trace: backward() inside the function records the
// backward pass too (vjps are ops). Gradients that land in a captured leaf's
// .grad become the graph's grad bindings; the leaf's own .grad is set aside
// while tracing and restored afterwards, so a trace never changes it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ember/graph/ir.h"
#include "ember/ops/trace_hook.h"

namespace ember::graph {

// Names captured tensors in dumps (a module's parameter names); empty: "c<k>".
using CaptureNamer = std::function<std::string(const Tensor&)>;

// Traces fn(args) with placeholders shaped like `examples` (their values are
// never read) and returns the graph. Throws ember::Error when the function
// cannot be traced (reads values, draws random numbers, updates in place).
Graph trace(const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& fn,
            const std::vector<Tensor>& examples, const CaptureNamer& namer = {});

}  // namespace ember::graph
