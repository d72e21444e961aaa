// The graph IR of ember::compile: SSA values produced by primitive nodes.
//
// A Graph is what a traced function did, as data:
//   - values: every tensor the function saw or made, each with a shape and dtype
//     and exactly one definition: a graph input (an argument of the call), a
//     capture (a tensor that existed before the call: a parameter, a buffer, a
//     constant made while tracing), or an output of one node;
//   - nodes: primitives (the same objects eager execution runs) in a valid
//     execution order, each reading values and defining its outputs;
//   - outputs: the values the function returned, and grad bindings: values to
//     be stored as a leaf's .grad after a run (a function that called backward());
//   - mutations: captures the function updated in place (an optimizer step
//     writes parameters and moments with apply_into). In the graph an update is
//     functional: the node defines a new value, later reads see that value, and
//     after a run the capture's tensor holds it (the memory plan computes it in
//     the capture's own bytes when no later node reads the old contents).
//
// Passes rewrite graphs (ember/graph/passes.h); the executor runs them
// (executor.h). dump() prints a stable, readable text form and hash() is a
// digest of it, so two graphs with equal hashes compute the same thing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ember/ops/primitive.h"

namespace ember::graph {

using ValueId = int32_t;

enum class ValueKind : uint8_t { input, capture, node_output };

struct Value {
  TensorSpec spec;
  ValueKind kind = ValueKind::node_output;
  int32_t node = -1;   // producing node (node_output), else -1
  int32_t index = 0;   // output index within the node, input position, or capture position
};

struct Node {
  PrimitivePtr prim;
  std::vector<ValueId> inputs;
  std::vector<ValueId> outputs;
};

// A tensor the graph reads but does not receive as an argument. A parameter or
// buffer is read by reference at run time (in-place training updates are
// seen); a constant (a tensor only the graph can reach, e.g. a mask made while
// tracing, or a folded result) may be folded into other constants.
struct Capture {
  ValueId value = -1;
  Tensor tensor;
  std::string name;
  bool constant = false;
};

// After a run, `value` becomes (or is added to) the .grad of `leaf`.
struct GradBinding {
  Tensor leaf;
  ValueId value = -1;
};

// After a run, the tensor of capture `capture` holds `value` (same spec).
struct Mutation {
  ValueId capture = -1;
  ValueId value = -1;
};

class Graph {
 public:
  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<ValueId> inputs;
  std::vector<Capture> captures;
  std::vector<ValueId> outputs;
  std::vector<GradBinding> grads;
  std::vector<Mutation> mutations;

  ValueId add_input(const TensorSpec& spec);
  ValueId add_capture(const Tensor& t, std::string name, bool constant);
  // Appends a node; its outputs get fresh values with `specs`.
  const Node& add_node(PrimitivePtr prim, std::vector<ValueId> inputs, const std::vector<TensorSpec>& specs);

  const TensorSpec& spec(ValueId v) const { return values.at(size_t(v)).spec; }
  // The capture defining v, or null.
  const Capture* capture_of(ValueId v) const;

  // For each value, the indices of the nodes that read it (in order).
  std::vector<std::vector<int32_t>> consumers() const;
  // Values the caller can observe: outputs, grad bindings and mutations.
  std::vector<bool> observed() const;

  // Replaces every use of `from` (node inputs, outputs, grad bindings, mutated
  // values) by `to`.
  void replace_uses(ValueId from, ValueId to);
  // Puts the nodes in `order` (a permutation of their indices; the caller
  // keeps definitions before uses), updating the values' producer indices.
  void reorder(const std::vector<int32_t>& order);
  // Moves nodes a pass appended to where they must run: before[i] lists
  // appended nodes (indices past before.size()) that go just before node i,
  // in that order. Every appended node is listed once.
  void place_before(const std::vector<std::vector<int32_t>>& before);
  // Drops nodes whose `keep` flag is false and values/captures nothing refers to
  // any more, renumbering the rest; the order of what stays is unchanged.
  void compact(const std::vector<bool>& keep_node);

  // Checks the SSA invariants (each use after its definition, specs
  // consistent); throws naming the first broken node. Passes call it in tests.
  void verify() const;

  // "%3 = matmul(%1, %2) : f32[4,8]" lines; stable across runs.
  std::string dump() const;
  uint64_t hash() const;  // FNV-1a of dump()

  int64_t node_count(const char* prim_name) const;  // nodes whose primitive has this name
};

}  // namespace ember::graph
