// Weight prepacking for inference graphs: a `linear` whose weight is a
// captured float32 CPU matrix becomes a PrepackedLinearPrim reading that
// weight's packed panels, made once here (see prepacked_linear.h).
//
// The panels are a copy: they hold the weight's values when they are made.
// So the pass runs only when the caller froze the weights
// (PassOptions::prepack_weights, off by default) and never on a graph that
// updates a capture in place or binds gradients (a training step). A weight
// read by several linears is packed once; with a PackedWeightCache (one per
// compiled function), once for every graph sharing the cache.
#include <cstring>
#include <map>
#include <memory>

#include "ember/graph/passes.h"
#include "ember/graph/prepacked_linear.h"

namespace ember::graph {

int64_t prepack_linear_weights(Graph& g, PackedWeightCache* cache) {
  if (!g.grads.empty() || !g.mutations.empty()) return 0;
  PackedWeightCache local;
  if (!cache) cache = &local;
  std::map<ValueId, ValueId> packed_of;  // weight value -> its packed constant (or -1: cannot pack)
  int64_t changed = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (std::strcmp(g.nodes[i].prim->name(), "linear") != 0) continue;
    const ValueId w = g.nodes[i].inputs[1];
    auto found = packed_of.find(w);
    if (found == packed_of.end()) {
      const Capture* cap = g.capture_of(w);
      Tensor packed = cap ? cache->get(cap->tensor) : Tensor();
      const std::string name = cap ? cap->name + ".packed" : std::string();
      // add_capture may grow g.values and g.captures: `cap` is not read after it.
      found = packed_of.emplace(w, packed.defined() ? g.add_capture(packed, name, /*constant=*/true) : -1).first;
    }
    if (found->second < 0) continue;
    Node& n = g.nodes[i];
    const TensorSpec& ws = g.spec(w);
    n.prim = std::make_shared<PrepackedLinearPrim>(ws.shape[1], ws.shape[0]);
    n.inputs[1] = found->second;
    ++changed;
  }
  if (changed) g.compact(std::vector<bool>(g.nodes.size(), true));  // drops the captures no node reads now
  return changed;
}

}  // namespace ember::graph
