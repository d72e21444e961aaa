// Constant folding: nodes whose inputs are all constants run once, now.
//
// Only constants fold (tensors nothing outside the graph can change), never
// parameters, which training updates between calls. Large results are left
// alone: baking them in would trade runtime work for memory held forever.
#include "ember/graph/passes.h"

#include "ember/autograd/grad_mode.h"
#include "ember/ops/dispatch.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/trace_hook.h"

namespace ember::graph {

int64_t fold_constants(Graph& g, int64_t max_bytes) {
  std::vector<bool> is_const(g.values.size(), false);
  for (const Capture& c : g.captures) is_const[size_t(c.value)] = c.constant;
  std::vector<bool> keep(g.nodes.size(), true);
  int64_t folded = 0;
  TraceSuspendGuard eager;  // folding may run inside a trace's compile step
  NoGradGuard no_grad;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node n = g.nodes[i];
    bool all_const = true;
    for (ValueId v : n.inputs) all_const = all_const && is_const[size_t(v)];
    if (!all_const) continue;
    int64_t bytes = 0;
    for (ValueId o : n.outputs) bytes += numel(g.spec(o).shape) * int64_t(dtype_size(g.spec(o).dtype));
    if (bytes > max_bytes) continue;
    std::vector<Tensor> ins;
    for (ValueId v : n.inputs) ins.push_back(g.capture_of(v)->tensor);
    std::vector<Tensor> outs = ember::apply(n.prim, ins);
    for (size_t k = 0; k < outs.size(); ++k) {
      // A view shares its input's bytes; a constant owns its own.
      Tensor owned = n.prim->is_view() ? clone(outs[k]) : outs[k];
      ValueId c = g.add_capture(owned, "folded" + std::to_string(g.captures.size()), true);
      is_const.push_back(true);
      g.replace_uses(n.outputs[k], c);
    }
    keep[i] = false;
    ++folded;
  }
  if (folded > 0) g.compact(keep);
  return folded;
}

}  // namespace ember::graph
