// The default pass pipeline (see passes.h for the order and why).
#include "ember/graph/passes.h"
#include "ember/graph/prepacked_linear.h"

namespace ember::graph {

std::vector<PassReport> optimize(Graph& g, const PassOptions& o, bool keep_differentiable) {
  std::vector<PassReport> report;
  auto run = [&](const char* name, bool enabled, auto&& pass) {
    if (!enabled) return;
    int64_t changed = pass();
    report.push_back({name, changed, int64_t(g.nodes.size())});
  };
  run("algebraic_simplification", o.algebra, [&] { return simplify_algebra(g); });
  run("slice_sinking", o.slices, [&] { return sink_slices(g); });
  run("constant_folding", o.constant_folding, [&] { return fold_constants(g); });
  run("common_subexpression_elimination", o.cse, [&] { return eliminate_common_subexpressions(g); });
  run("dead_code_elimination", o.dead_code, [&] { return eliminate_dead_code(g); });
  if (!keep_differentiable) {
    // Prepacking first: the epilogue fusion takes single activations and adds
    // into the prepacked linears before elementwise fusion could group them.
    run("weight_prepacking", o.prepack_weights, [&] { return prepack_linear_weights(g, o.packed_weights.get()); });
    run("linear_epilogue_fusion", o.prepack_weights && o.fusion, [&] { return fuse_linear_epilogues(g); });
    run("elementwise_fusion", o.fusion, [&] { return fuse_elementwise(g); });
  }
  run("rematerialization", o.remat, [&] { return rematerialize(g); });
  run("dead_code_elimination", o.dead_code, [&] { return eliminate_dead_code(g); });
  g.verify();
  return report;
}

}  // namespace ember::graph
