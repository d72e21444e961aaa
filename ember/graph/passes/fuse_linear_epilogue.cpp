// Linear epilogue fusion for graphs with frozen weights: a linear_prepacked
// whose output only an activation reads (a transformer MLP's GELU) takes the
// activation in, and one whose output only an add reads, with a float32
// operand of the output's shape (the residual stream around a block's output
// projection), takes the add in. The GEMM then applies them as it writes its
// output (cpu::gemm_packed_weights), saving a pass over that output and its
// buffer each (as separate ops they took 1.5 of a 33 ms `small` prefill in a
// two-thread profile; docs/PERFORMANCE.md, "Frozen weights in oneDNN's layout").
//
// The fused node takes the reader's place (its position and output values), so
// the residual may be computed anywhere before the reader; the linear's own
// inputs come before the linear, hence before the reader too. An activation
// is taken only into a linear without an epilogue yet, a residual into one
// without a residual: act(x Wᵀ + b) + r at most, in that order, as the kernel
// computes it.
#include <cstring>
#include <memory>

#include "ember/graph/passes.h"
#include "ember/graph/prepacked_linear.h"

namespace ember::graph {

int64_t fuse_linear_epilogues(Graph& g) {
  const auto consumers = g.consumers();
  const std::vector<bool> observed = g.observed();
  std::vector<bool> keep(g.nodes.size(), true);
  int64_t fused = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const auto* linear = dynamic_cast<const PrepackedLinearPrim*>(g.nodes[i].prim.get());
    if (!linear) continue;
    const ValueId out = g.nodes[i].outputs[0];
    if (observed[size_t(out)] || consumers[size_t(out)].size() != 1) continue;
    const int32_t j = consumers[size_t(out)][0];
    Node& reader = g.nodes[size_t(j)];
    if (reader.outputs.size() != 1 || g.spec(reader.outputs[0]) != g.spec(out)) continue;
    PrepackedLinearPrim::Options options = linear->options();
    std::vector<ValueId> inputs = g.nodes[i].inputs;
    UnaryOp unary;
    BinaryOp binary;
    if (reader.inputs.size() == 1 && parse_unary_op(reader.prim->name(), unary)) {
      if (options.activation || options.residual || !cpu::epilogue_activation_supported(options.layout, unary))
        continue;
      options.activation = unary;
    } else if (reader.inputs.size() == 2 && parse_binary_op(reader.prim->name(), binary) && binary == BinaryOp::add) {
      const ValueId other = reader.inputs[0] == out ? reader.inputs[1] : reader.inputs[0];
      if (options.residual || other == out || g.spec(other) != g.spec(out)) continue;
      options.residual = true;
      inputs.push_back(other);
    } else {
      continue;
    }
    reader.prim = std::make_shared<PrepackedLinearPrim>(linear->in_features(), linear->out_features(), options);
    reader.inputs = std::move(inputs);
    keep[i] = false;
    ++fused;
  }
  if (fused) g.compact(keep);
  return fused;
}

}  // namespace ember::graph
