// Liveness analysis, in-place reuse and greedy-by-size offset assignment (see memory_plan.h).
#include "ember/graph/memory_plan.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "ember/core/op_kinds.h"

namespace ember::graph {

bool may_write_in_place(const Primitive& prim) {
  const char* name = prim.name();
  UnaryOp u;
  BinaryOp b;
  if (parse_unary_op(name, u)) return u != UnaryOp::logical_not;
  if (parse_binary_op(name, b)) return !is_comparison(b);
  // cross_entropy_backward reads each logits row (and its target entry) before
  // writing that row of dlogits, so dlogits may take over the logits' buffer:
  // at the loss of a language model that is the largest buffer of the step.
  return std::strcmp(name, "fused_elementwise") == 0 || std::strcmp(name, "activation_grad") == 0 ||
         std::strcmp(name, "cross_entropy_backward") == 0;
}

int in_place_slot(const Primitive& prim, int output) {
  if (std::strcmp(prim.name(), "adamw_update") == 0) return output == 0 ? 0 : output == 1 ? 2 : output == 2 ? 3 : -1;
  if (std::strcmp(prim.name(), "sgd_update") == 0) return output == 0 ? 0 : output == 1 ? 2 : -1;
  return may_write_in_place(prim) && output == 0 ? kAnySameShape : -1;
}

namespace {

int64_t aligned_bytes(const TensorSpec& s) {
  int64_t n = numel(s.shape) * int64_t(dtype_size(s.dtype));
  return (n + kPlanAlignment - 1) / kPlanAlignment * kPlanAlignment;
}

struct Buffer {
  int64_t bytes = 0;
  int32_t start = 0, end = 0;  // node indices, inclusive
  int64_t offset = -1;
};

}  // namespace

MemoryPlan plan_memory(const Graph& g) {
  const size_t nv = g.values.size();
  MemoryPlan plan;
  plan.offset.assign(nv, -1);
  plan.last_use.assign(nv, -1);
  plan.reuses.assign(nv, -1);
  plan.in_capture.assign(nv, -1);

  // The buffer each value lives in: itself, or for a view output the root of its input.
  std::vector<ValueId> root(nv);
  for (size_t v = 0; v < nv; ++v) root[v] = ValueId(v);
  for (const Node& n : g.nodes)
    if (n.prim->is_view() && !n.inputs.empty())
      for (ValueId o : n.outputs) root[size_t(o)] = root[size_t(n.inputs[0])];

  // Liveness of roots: the last node reading the value or any alias of it.
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (ValueId v : g.nodes[i].inputs) {
      plan.last_use[size_t(v)] = int32_t(i);
      plan.last_use[size_t(root[size_t(v)])] = int32_t(i);
    }
  // Observed values (and whatever they alias) are never planned.
  std::vector<bool> plannable(nv, false);
  for (const Node& n : g.nodes)
    if (!n.prim->is_view())
      for (ValueId o : n.outputs) plannable[size_t(o)] = true;
  // Returned values (and whatever they alias) are never planned: the caller
  // keeps them. Gradients are, and live to the end: the executor lends their
  // bytes to the caller's .grad and takes a fresh arena for a run that starts
  // while a lent gradient is still held (see Executor::run).
  for (ValueId v : g.outputs) plannable[size_t(root[size_t(v)])] = false;
  const int32_t last_node = int32_t(g.nodes.size()) - 1;
  for (const GradBinding& b : g.grads) {
    const size_t r = size_t(root[size_t(b.value)]);
    if (plannable[r]) plan.lent.push_back(ValueId(r));
    plan.last_use[r] = last_node;
  }
  for (ValueId v : g.outputs)  // a gradient that is also returned stays unplanned
    plan.lent.erase(std::remove(plan.lent.begin(), plan.lent.end(), root[size_t(v)]), plan.lent.end());
  std::vector<bool> returned(nv, false);
  for (ValueId v : g.outputs) returned[size_t(root[size_t(v)])] = true;
  for (const Mutation& m : g.mutations) {
    const size_t y = size_t(m.value);
    plannable[y] = false;  // in the capture's bytes, or fresh and copied there after the run
    const Value& val = g.values[y];
    if (val.kind != ValueKind::node_output || returned[y] || root[y] != ValueId(y)) continue;
    const Node& n = g.nodes[size_t(val.node)];
    const int32_t at = val.node, last = plan.last_use[size_t(m.capture)];
    if (last > at) continue;  // a later node still reads the old contents
    if (last == at) {
      // The producer reads the capture: only in the slot it may overwrite.
      const int slot = in_place_slot(*n.prim, val.index);
      if (slot == -1) continue;
      bool ok = true;
      for (size_t k = 0; k < n.inputs.size(); ++k) {
        const bool aliases = root[size_t(n.inputs[k])] == m.capture;
        const bool allowed = n.inputs[k] == m.capture && (slot == kAnySameShape || slot == int(k));
        if (aliases && !allowed) ok = false;
      }
      if (!ok) continue;
    }
    plan.in_capture[y] = m.capture;
    ++plan.mutations_in_place;
  }
  std::sort(plan.lent.begin(), plan.lent.end());
  plan.lent.erase(std::unique(plan.lent.begin(), plan.lent.end()), plan.lent.end());

  // Buffers, with in-place reuse: an output takes over a dying input's buffer.
  std::vector<int32_t> buffer_of(nv, -1);
  std::vector<Buffer> buffers;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    for (ValueId o : n.outputs) {
      if (!plannable[size_t(o)]) continue;
      const TensorSpec& os = g.spec(o);
      const int32_t end = std::max<int32_t>(int32_t(i), plan.last_use[size_t(o)]);
      int32_t reuse = -1;
      if (may_write_in_place(*n.prim) && n.outputs.size() == 1) {
        for (ValueId in : n.inputs) {
          const size_t r = size_t(in);
          if (root[r] != in || buffer_of[r] < 0 || plan.last_use[r] != int32_t(i)) continue;
          const TensorSpec& is = g.spec(in);
          if (is.shape != os.shape || is.dtype != os.dtype) continue;
          // Another input that aliases the same buffer through a view would be
          // read in a different layout while being overwritten.
          bool clash = false;
          for (ValueId other : n.inputs) clash = clash || (other != in && root[size_t(other)] == in);
          if (clash) continue;
          reuse = buffer_of[r];
          plan.reuses[size_t(o)] = in;
          break;
        }
      }
      if (reuse >= 0) {
        buffers[size_t(reuse)].end = std::max(buffers[size_t(reuse)].end, end);
        buffer_of[size_t(o)] = reuse;
        ++plan.in_place;
      } else {
        buffer_of[size_t(o)] = int32_t(buffers.size());
        buffers.push_back({aligned_bytes(os), int32_t(i), end, -1});
      }
    }
  }

  // Peak with no reuse: every buffer alive from its definition to its last use.
  {
    std::map<int32_t, int64_t> delta;
    for (const Buffer& b : buffers) {
      delta[b.start] += b.bytes;
      delta[b.end + 1] -= b.bytes;
      plan.total_bytes += b.bytes;
    }
    int64_t live = 0;
    for (const auto& [node, d] : delta) {
      live += d;
      plan.unplanned_peak_bytes = std::max(plan.unplanned_peak_bytes, live);
    }
  }

  // Greedy by size: largest first, at the lowest offset free over its lifetime.
  std::vector<int32_t> order(buffers.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = int32_t(k);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return buffers[size_t(a)].bytes > buffers[size_t(b)].bytes; });
  std::vector<int32_t> placed;
  for (int32_t k : order) {
    Buffer& b = buffers[size_t(k)];
    std::vector<std::pair<int64_t, int64_t>> busy;  // [offset, offset + bytes) of overlapping lifetimes
    for (int32_t p : placed) {
      const Buffer& q = buffers[size_t(p)];
      if (q.start <= b.end && b.start <= q.end) busy.emplace_back(q.offset, q.offset + q.bytes);
    }
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (const auto& [lo, hi] : busy) {
      if (offset + b.bytes <= lo) break;
      offset = std::max(offset, hi);
    }
    b.offset = offset;
    plan.arena_bytes = std::max(plan.arena_bytes, offset + b.bytes);
    placed.push_back(k);
  }
  for (size_t v = 0; v < nv; ++v)
    if (buffer_of[v] >= 0) plan.offset[v] = buffers[size_t(buffer_of[v])].offset;
  return plan;
}

}  // namespace ember::graph
