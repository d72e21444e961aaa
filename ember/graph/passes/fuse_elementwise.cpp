// Elementwise fusion: connected float32 unary/binary chains of one shape
// become one FusedElementwise node (see fused_elementwise.h).
//
// Nodes are visited in order; a fusible node joins the group of one of its
// inputs' producers when the group has its shape and no node outside the group
// reads the group's values before this node (the fused node runs where its last
// member was, so such a reader would run before its input exists). Inputs must
// have the output's shape or one element: broadcasting a bias inside the loop
// would cost a full-size copy, more than the fusion saves. A group holds at
// most kMaxFusedOps ops (the CUDA kernel's bound); a longer chain continues in
// a new group.
#include <algorithm>
#include <cstring>
#include <memory>

#include "ember/core/op_kinds.h"
#include "ember/graph/fused_elementwise.h"
#include "ember/graph/passes.h"

namespace ember::graph {
namespace {

bool fusible(const Graph& g, const Node& n, FusedInstr& instr) {
  if (n.outputs.size() != 1 || g.spec(n.outputs[0]).dtype != DType::f32) return false;
  const Shape& shape = g.spec(n.outputs[0]).shape;
  for (ValueId v : n.inputs) {
    const TensorSpec& s = g.spec(v);
    if (s.dtype != DType::f32 || (s.shape != shape && numel(s.shape) != 1)) return false;
  }
  if (n.inputs.size() == 1 && parse_unary_op(n.prim->name(), instr.unary_op)) {
    instr.binary = false;
    return instr.unary_op != UnaryOp::logical_not;
  }
  if (n.inputs.size() == 2 && parse_binary_op(n.prim->name(), instr.binary_op)) {
    instr.binary = true;
    return !is_comparison(instr.binary_op);
  }
  return false;
}

struct Group {
  Shape shape;
  std::vector<int32_t> members;  // node indices, ascending
};

}  // namespace

int64_t fuse_elementwise(Graph& g) {
  const auto consumers = g.consumers();
  const std::vector<bool> observed = g.observed();
  std::vector<int32_t> producer(g.values.size(), -1), group_of(g.nodes.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (ValueId o : g.nodes[i].outputs) producer[size_t(o)] = int32_t(i);
  std::vector<FusedInstr> instr(g.nodes.size());
  std::vector<Group> groups;

  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (!fusible(g, n, instr[i])) continue;
    const Shape& shape = g.spec(n.outputs[0]).shape;
    int32_t join = -1;
    for (ValueId v : n.inputs) {
      const int32_t p = producer[size_t(v)];
      if (p < 0 || group_of[size_t(p)] < 0) continue;
      const Group& grp = groups[size_t(group_of[size_t(p)])];
      if (grp.shape != shape || int32_t(grp.members.size()) >= kMaxFusedOps) continue;
      bool legal = true;
      for (int32_t m : grp.members)
        for (int32_t c : consumers[size_t(g.nodes[size_t(m)].outputs[0])])
          if (c != int32_t(i) && group_of[size_t(c)] != group_of[size_t(p)] && c < int32_t(i)) legal = false;
      if (legal) {
        join = group_of[size_t(p)];
        break;
      }
    }
    if (join < 0) {
      join = int32_t(groups.size());
      groups.push_back({shape, {}});
    }
    groups[size_t(join)].members.push_back(int32_t(i));
    group_of[i] = join;
  }

  // Build one fused node per group of two or more.
  std::vector<bool> keep(g.nodes.size(), true);
  std::vector<int32_t> place_after(g.nodes.size(), -1);  // fused node index to emit at a last member
  int64_t fused_nodes = 0;
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    const Group& grp = groups[gi];
    if (grp.members.size() < 2) continue;
    std::vector<ValueId> ext;        // external inputs, in first-use order
    std::vector<int32_t> reg(g.values.size(), -1);
    std::vector<FusedInstr> program;
    for (int32_t m : grp.members)
      for (ValueId v : g.nodes[size_t(m)].inputs) {
        // An earlier group's fused node (made in this loop, after `producer`)
        // may define v now: external to this group.
        const int32_t p = size_t(v) < producer.size() ? producer[size_t(v)] : -1;
        const bool internal = p >= 0 && group_of[size_t(p)] == int32_t(gi);
        if (!internal && std::find(ext.begin(), ext.end(), v) == ext.end()) ext.push_back(v);
      }
    for (size_t k = 0; k < ext.size(); ++k) reg[size_t(ext[k])] = int32_t(k);
    std::vector<ValueId> leaving;
    std::vector<int32_t> out_regs;
    for (int32_t m : grp.members) {
      const Node& n = g.nodes[size_t(m)];
      FusedInstr in = instr[size_t(m)];
      in.a = reg[size_t(n.inputs[0])];
      if (in.binary) in.b = reg[size_t(n.inputs[1])];
      const ValueId o = n.outputs[0];
      reg[size_t(o)] = int32_t(ext.size() + program.size());
      program.push_back(in);
      bool used_outside = observed[size_t(o)];
      for (int32_t c : consumers[size_t(o)]) used_outside = used_outside || group_of[size_t(c)] != int32_t(gi);
      if (used_outside) {
        leaving.push_back(o);
        out_regs.push_back(reg[size_t(o)]);
      }
    }
    auto prim = std::make_shared<const FusedElementwisePrim>(grp.shape, int32_t(ext.size()), std::move(program), out_regs);
    const Node& fused = g.add_node(prim, ext, std::vector<TensorSpec>(leaving.size(), {grp.shape, DType::f32}));
    const std::vector<ValueId> new_outs = fused.outputs;
    for (size_t k = 0; k < leaving.size(); ++k) g.replace_uses(leaving[k], new_outs[k]);
    for (int32_t m : grp.members) keep[size_t(m)] = false;
    place_after[size_t(grp.members.back())] = int32_t(g.nodes.size() - 1);
    ++fused_nodes;
  }
  if (fused_nodes == 0) return 0;

  // New order: each fused node where its last member was.
  std::vector<int32_t> order;
  std::vector<bool> keep_ordered;
  const size_t original = place_after.size();
  for (size_t i = 0; i < original; ++i) {
    order.push_back(int32_t(i));
    keep_ordered.push_back(keep[i]);
    if (place_after[i] >= 0) {
      order.push_back(place_after[i]);
      keep_ordered.push_back(true);
    }
  }
  g.reorder(order);
  g.compact(keep_ordered);
  return fused_nodes;
}

}  // namespace ember::graph
