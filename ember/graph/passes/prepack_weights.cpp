// Weight prepacking for inference graphs: a `linear` whose weight is a
// captured float32 CPU matrix becomes a PrepackedLinearPrim reading that
// weight packed once here in the layout of the kernel (see prepacked_linear.h).
//
// The packed form is a copy: it holds the weight's values when it is made.
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
  // weight value -> its packed constant (or -1: cannot pack) and layout
  std::map<ValueId, std::pair<ValueId, cpu::WeightLayout>> packed_of;
  int64_t changed = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (std::strcmp(g.nodes[i].prim->name(), "linear") != 0) continue;
    const ValueId w = g.nodes[i].inputs[1];
    auto found = packed_of.find(w);
    if (found == packed_of.end()) {
      const Capture* cap = g.capture_of(w);
      const PackedWeight packed = cap ? cache->get(cap->tensor) : PackedWeight();
      const std::string name = cap ? cap->name + ".packed" : std::string();
      // add_capture may grow g.values and g.captures: `cap` is not read after it.
      const ValueId v = packed.data.defined() ? g.add_capture(packed.data, name, /*constant=*/true) : -1;
      found = packed_of.emplace(w, std::make_pair(v, packed.layout)).first;
    }
    if (found->second.first < 0) continue;
    Node& n = g.nodes[i];
    const TensorSpec& ws = g.spec(w);
    PrepackedLinearPrim::Options options;
    options.layout = found->second.second;
    options.bias = n.inputs.size() == 3;
    n.prim = std::make_shared<PrepackedLinearPrim>(ws.shape[1], ws.shape[0], options);
    n.inputs[1] = found->second.first;
    ++changed;
  }
  if (changed) g.compact(std::vector<bool>(g.nodes.size(), true));  // drops the captures no node reads now
  return changed;
}

}  // namespace ember::graph
