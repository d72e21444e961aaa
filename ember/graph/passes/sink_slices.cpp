// Slice sinking: compute only the rows a slice keeps (see passes.h).
//
// A model written for whole sequences often reads part of a result at the
// end: generation's prefill wants the last position's logits, so it slices
// the final hidden states. Eagerly, every op before that slice has already run
// on every position. But most of a transformer treats the sequence axis row by
// row (linear layers, norms, activations, residual adds, the attention output
// for each query), so slice(f(x)) = f(slice(x)): the slice can move before f,
// and f then computes only the kept rows. Moved as far as it goes, the last
// block's output projection and MLP run on one row instead of T, and its
// attention on one query (llama.cpp does the same by hand for the last layer).
//
// A slice moves into its input's producer when that value is read by nothing
// else and observed by nobody (else the full value is needed anyway), the
// producer's other outputs are unused, and the producer maps each output row
// along the slice's axis to one row of some inputs (and all of the others):
//   - unary elementwise ops; binary ones, where a broadcast input (missing the
//     axis or of extent 1 along it) is read whole;
//   - linear, layer_norm, rms_norm along any axis but the last (features);
//   - embedding (the ids are sliced), permute (the axis is permuted), slice
//     along a higher axis (q, k and v split from one projection along the
//     features), and reshape when it keeps every axis up to the sliced one;
//   - causal attention along the query axis when the slice keeps the last
//     queries: their keys are all the earlier positions, and the kernel aligns
//     the last query with the last key, so the masks agree.
// Each value is computed by the same primitive on fewer rows, so results are
// unchanged to float32 rounding (a kernel may choose another blocking for a
// smaller product). Between sweeps the pass runs dead-code and
// common-subexpression elimination (whatever PassOptions says of those
// passes: the moved slices' old producers must go, and equal slices must
// merge), so a slice of a value with two readers that both end up slicing it
// the same way (a residual stream read by the norm and by the add) moves on.
#include <cstring>
#include <optional>

#include "ember/core/op_kinds.h"
#include "ember/graph/passes.h"
#include "ember/graph/rebuild.h"
#include "ember/ops/primitive_registry.h"

namespace ember::graph {
namespace {

bool is(const Node& n, const char* name) { return std::strcmp(n.prim->name(), name) == 0; }

int64_t int_attr(const Primitive& p, const char* key) { return std::get<int64_t>(p.attrs().at(key)); }

// Which axis of each input holds the output's rows along `axis` (-1: the input
// is read whole), or nothing when the node does not map rows to rows. `end`
// is one past the last row the slice keeps; `extent` the axis's full size.
std::optional<std::vector<int64_t>> input_axes(const Graph& g, const Node& n, int64_t axis, int64_t end,
                                               int64_t extent) {
  const int64_t rank = int64_t(g.spec(n.outputs[0]).shape.size());
  const char* name = n.prim->name();
  std::vector<int64_t> axes(n.inputs.size(), -1);
  UnaryOp u;
  BinaryOp b;
  if (parse_unary_op(name, u)) {
    axes[0] = axis;
  } else if (parse_binary_op(name, b)) {
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const Shape& s = g.spec(n.inputs[i]).shape;
      const int64_t aligned = axis - (rank - int64_t(s.size()));  // broadcasting aligns trailing axes
      if (aligned >= 0 && s[size_t(aligned)] == extent) axes[i] = aligned;
      else if (aligned >= 0 && s[size_t(aligned)] != 1) return std::nullopt;
    }
  } else if (is(n, "linear") || is(n, "layer_norm") || is(n, "rms_norm")) {
    if (axis == rank - 1) return std::nullopt;  // the features are mixed
    axes[0] = axis;
  } else if (is(n, "embedding")) {
    if (axis == rank - 1) return std::nullopt;
    axes[1] = axis;  // embedding(weight, ids): output rows follow the ids
  } else if (is(n, "permute")) {
    axes[0] = std::get<std::vector<int64_t>>(n.prim->attrs().at("dims"))[size_t(axis)];
  } else if (is(n, "slice")) {
    // Two slices along different axes commute. Only the one along the lower
    // axis moves inward, or every sweep would swap them back (and merging two
    // slices of one axis is not this pass's work).
    if (int_attr(*n.prim, "axis") <= axis) return std::nullopt;
    axes[0] = axis;
  } else if (is(n, "reshape")) {
    const Shape& in = g.spec(n.inputs[0]).shape;
    const Shape& out = g.spec(n.outputs[0]).shape;
    if (int64_t(in.size()) <= axis) return std::nullopt;
    for (int64_t d = 0; d <= axis; ++d)
      if (in[size_t(d)] != out[size_t(d)]) return std::nullopt;
    axes[0] = axis;
  } else if (is(n, "scaled_dot_product_attention")) {
    // q [B, H, T, D]: rows are queries; k and v are read whole. Under the
    // causal mask, query i of T sees keys up to i + (S - T); keeping only the
    // last queries keeps that offset right.
    const bool causal = int_attr(*n.prim, "causal") != 0;
    if (axis != 2 || (causal && end != extent)) return std::nullopt;
    axes[0] = 2;
  } else {
    return std::nullopt;
  }
  return axes;
}

// One sweep: moves every movable slice one producer up. Returns how many moved.
int64_t sink_once(Graph& g) {
  const auto consumers = g.consumers();
  const std::vector<bool> observed = g.observed();
  const size_t original = g.nodes.size();
  std::vector<std::vector<int32_t>> replace_with(original);  // new node indices standing in for node i
  int64_t moved = 0;
  for (size_t i = 0; i < original; ++i) {
    const Node slice_node = g.nodes[i];
    if (!is(slice_node, "slice") || int_attr(*slice_node.prim, "step") != 1) continue;
    const ValueId v = slice_node.inputs[0];
    // A slice whose input a move earlier in this sweep replaced (a slice of a
    // slice) reads a value made this sweep, which `consumers` does not cover:
    // the next sweep moves it.
    if (size_t(v) >= consumers.size()) continue;
    const Value val = g.values[size_t(v)];  // a copy: add_node below grows g.values
    if (val.kind != ValueKind::node_output || val.index != 0) continue;
    if (consumers[size_t(v)].size() != 1 || observed[size_t(v)]) continue;
    const Node producer = g.nodes[size_t(val.node)];
    bool others_unused = true;
    for (size_t k = 1; k < producer.outputs.size(); ++k) {
      const ValueId o = producer.outputs[k];
      others_unused = others_unused && consumers[size_t(o)].empty() && !observed[size_t(o)];
    }
    if (!others_unused) continue;
    const int64_t axis = int_attr(*slice_node.prim, "axis");
    const int64_t start = int_attr(*slice_node.prim, "start"), length = int_attr(*slice_node.prim, "length");
    const int64_t extent = g.spec(v).shape[size_t(axis)];
    const auto axes = input_axes(g, producer, axis, start + length, extent);
    if (!axes) continue;

    // The producer's inputs, sliced where they hold the rows.
    std::vector<int32_t> added;
    std::vector<ValueId> inputs;
    std::vector<TensorSpec> input_specs;
    for (size_t k = 0; k < producer.inputs.size(); ++k) {
      ValueId in = producer.inputs[k];
      if ((*axes)[k] >= 0) {
        TensorSpec s = g.spec(in);
        const Attrs attrs = {{"axis", (*axes)[k]}, {"start", start}, {"length", length}, {"step", int64_t(1)}};
        s.shape[size_t((*axes)[k])] = length;
        in = g.add_node(make_primitive("slice", attrs, 1), {in}, {s}).outputs[0];
        added.push_back(int32_t(g.nodes.size() - 1));
      }
      inputs.push_back(in);
      input_specs.push_back(g.spec(in));
    }
    PrimitivePtr prim = producer.prim;
    if (is(producer, "reshape")) {
      Shape target = g.spec(v).shape;
      target[size_t(axis)] = length;
      prim = make_primitive("reshape", {{"shape", std::vector<int64_t>(target.begin(), target.end())}}, 1);
    }
    const Node& copy = g.add_node(prim, inputs, output_specs_of(*prim, input_specs));
    added.push_back(int32_t(g.nodes.size() - 1));
    g.replace_uses(slice_node.outputs[0], copy.outputs[0]);
    replace_with[i] = std::move(added);
    ++moved;
  }
  if (moved == 0) return 0;
  // The new nodes run where their slice ran: after the producer's inputs,
  // before the slice's readers. The slice itself is now unread (dead code).
  g.place_before(replace_with);
  return moved;
}

}  // namespace

int64_t sink_slices(Graph& g) {
  int64_t moved = 0;
  // Every move takes a slice one producer closer to the graph's inputs, so the
  // sweeps end; the bound only guards against a future rule that undoes another.
  const size_t max_sweeps = g.nodes.size() + 1;
  for (size_t sweep = 0; sweep < max_sweeps; ++sweep) {
    const int64_t m = sink_once(g);
    if (m == 0) break;
    moved += m;
    eliminate_dead_code(g);
    eliminate_common_subexpressions(g);
  }
  return moved;
}

}  // namespace ember::graph
