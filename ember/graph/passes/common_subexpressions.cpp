// Common-subexpression elimination: one node per (primitive, inputs).
//
// Two nodes are the same computation when their primitives are equivalent
// (same name and attributes: the primitive contract makes attributes complete)
// and they read the same values. Primitives are pure, so the later node's
// outputs can be replaced by the earlier node's.
#include <map>

#include "ember/graph/passes.h"

namespace ember::graph {

int64_t eliminate_common_subexpressions(Graph& g) {
  std::map<std::pair<std::string, std::vector<ValueId>>, int32_t> seen;
  std::vector<bool> keep(g.nodes.size(), true);
  int64_t merged = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    auto key = std::make_pair(n.prim->str(), n.inputs);
    auto [it, inserted] = seen.emplace(std::move(key), int32_t(i));
    if (inserted) continue;
    const Node& first = g.nodes[size_t(it->second)];
    for (size_t k = 0; k < n.outputs.size(); ++k) g.replace_uses(n.outputs[k], first.outputs[k]);
    keep[i] = false;
    ++merged;
  }
  if (merged > 0) g.compact(keep);
  return merged;
}

}  // namespace ember::graph
