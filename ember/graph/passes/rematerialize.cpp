// Rematerialisation: recompute cheap values where they are used late instead
// of keeping them alive across the whole step.
//
// In a training graph a forward value is often read twice: right away by the
// next forward op, and much later by the backward pass (e.g. gelu's output,
// read by the following Linear and then by that Linear's weight gradient).
// Between the two it occupies memory at the step's peak. When the value is
// cheap to compute (an elementwise op or a norm) and everything it is computed
// from stays alive until the late use anyway (gelu's input is kept for
// activation_grad; norm inputs for the norm backward), a copy of the node runs
// just before the late reader instead: the same bytes, a few extra flops, and
// the value's buffer is free in between. The late reader may be a view (a
// norm's output reshaped for the weight gradient's product): the view is
// re-pointed at the copy.
#include <cstring>

#include "ember/core/op_kinds.h"
#include "ember/graph/passes.h"

namespace ember::graph {
namespace {

bool cheap(const Primitive& p) {
  const char* name = p.name();
  UnaryOp u;
  return (parse_unary_op(name, u) && u != UnaryOp::logical_not) || std::strcmp(name, "layer_norm") == 0 ||
         std::strcmp(name, "rms_norm") == 0 || std::strcmp(name, "fused_elementwise") == 0;
}

}  // namespace

int64_t rematerialize(Graph& g, int64_t min_distance) {
  const auto consumers = g.consumers();
  const std::vector<bool> observed = g.observed();
  std::vector<int32_t> last_use(g.values.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (ValueId v : g.nodes[i].inputs) last_use[size_t(v)] = int32_t(i);
  std::vector<bool> view_output(g.values.size(), false);
  for (const Node& n : g.nodes)
    if (n.prim->is_view())
      for (ValueId o : n.outputs) view_output[size_t(o)] = true;

  const size_t original = g.nodes.size();
  std::vector<std::vector<int32_t>> insert_before(original);  // clone node indices to run before node j
  int64_t cloned = 0;
  for (size_t i = 0; i < original; ++i) {
    const Node n = g.nodes[i];
    // Output 0 is what is recomputed; a norm's other outputs (mean, rstd) are
    // small and recomputed alongside, unused.
    if (n.outputs.empty() || !cheap(*n.prim)) continue;
    const ValueId v = n.outputs[0];
    if (observed[size_t(v)]) continue;
    std::vector<int32_t> late;
    for (int32_t c : consumers[size_t(v)])
      if (c > int32_t(i) + min_distance) late.push_back(c);
    if (late.empty()) continue;
    const int32_t first_late = late.front();
    bool inputs_alive = true;
    for (ValueId u : n.inputs) {
      const Value& val = g.values[size_t(u)];
      if (val.kind != ValueKind::node_output) continue;  // arguments and captures live throughout
      inputs_alive = inputs_alive && !view_output[size_t(u)] && last_use[size_t(u)] >= first_late;
    }
    if (!inputs_alive) continue;
    std::vector<TensorSpec> specs;
    for (ValueId o : n.outputs) specs.push_back(g.spec(o));
    const ValueId copy = g.add_node(n.prim, n.inputs, specs).outputs[0];
    for (int32_t c : late)
      for (ValueId& in : g.nodes[size_t(c)].inputs)
        if (in == v) in = copy;
    insert_before[size_t(first_late)].push_back(int32_t(g.nodes.size() - 1));
    ++cloned;
  }
  if (cloned == 0) return 0;
  g.place_before(insert_before);
  return cloned;
}

}  // namespace ember::graph
