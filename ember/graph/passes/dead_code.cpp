// Dead-code elimination: a backward walk from the values the caller observes.
#include "ember/graph/passes.h"

namespace ember::graph {

int64_t eliminate_dead_code(Graph& g) {
  std::vector<bool> live(g.values.size(), false);
  for (ValueId v : g.outputs) live[size_t(v)] = true;
  for (const GradBinding& b : g.grads) live[size_t(b.value)] = true;
  for (const Mutation& m : g.mutations) live[size_t(m.value)] = true;
  std::vector<bool> keep(g.nodes.size(), false);
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const Node& n = g.nodes[i];
    for (ValueId o : n.outputs) keep[i] = keep[i] || live[size_t(o)];
    if (keep[i])
      for (ValueId v : n.inputs) live[size_t(v)] = true;
  }
  int64_t removed = 0;
  for (bool k : keep) removed += !k;
  g.compact(keep);  // also drops captures nothing reads any more
  return removed;
}

}  // namespace ember::graph
