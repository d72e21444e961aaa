// Algebraic simplification: local rewrites that remove nodes (see passes.h).
//
// A rewrite either forwards a node's input in place of its output (x*1 -> x)
// or points a node past a redundant producer (reshape(reshape(x)) reads x).
// Forwarding is allowed only when the replacement has exactly the output's
// shape and dtype, so no consumer can tell the difference.
#include <algorithm>
#include <cstring>

#include "ember/graph/passes.h"
#include "ember/graph/rebuild.h"
#include "ember/ops/index_ops.h"
#include "ember/ops/shape_ops.h"

namespace ember::graph {
namespace {

bool is(const Node& n, const char* name) { return std::strcmp(n.prim->name(), name) == 0; }

// The value of a one-element constant, if v is one.
bool constant_scalar(const Graph& g, ValueId v, double& value) {
  const Capture* c = g.capture_of(v);
  if (!c || !c->constant || c->tensor.numel() != 1) return false;
  value = c->tensor.item<double>();
  return true;
}

std::vector<int64_t> int_list(const Primitive& p, const char* key) {
  return std::get<std::vector<int64_t>>(p.attrs().at(key));
}

int64_t int_attr(const Primitive& p, const char* key) { return std::get<int64_t>(p.attrs().at(key)); }

// One slice_backward term of a gradient sum: `source` scattered into zeros at
// [start, start + length) along the axis.
struct SliceTerm {
  int64_t start, length;
  ValueId source;
};

// Collects the terms of a sum of slice_backward nodes (adds whose operands
// are read nowhere else), as the autograd engine builds when the pieces of a
// split (q, k, v of one projection) each send their gradient back. False when
// anything else is summed in or the slices differ in axis or full shape.
bool collect_slice_terms(const Graph& g, const std::vector<int32_t>& producer,
                         const std::vector<std::vector<int32_t>>& consumers, ValueId v, int64_t& axis,
                         std::vector<SliceTerm>& terms) {
  const int32_t p = producer[size_t(v)];
  if (p < 0 || consumers[size_t(v)].size() != 1 || g.observed()[size_t(v)]) return false;
  const Node& n = g.nodes[size_t(p)];
  if (is(n, "add") && n.inputs.size() == 2 && n.inputs[0] != n.inputs[1])
    return collect_slice_terms(g, producer, consumers, n.inputs[0], axis, terms) &&
           collect_slice_terms(g, producer, consumers, n.inputs[1], axis, terms);
  if (!is(n, "slice_backward") || int_attr(*n.prim, "step") != 1) return false;
  const int64_t a = int_attr(*n.prim, "axis");
  if (axis >= 0 && a != axis) return false;
  axis = a;
  terms.push_back({int_attr(*n.prim, "start"), int_attr(*n.prim, "length"), n.inputs[0]});
  return true;
}

}  // namespace

int64_t simplify_algebra(Graph& g) {
  int64_t changed = 0;
  std::vector<int32_t> producer(g.values.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (ValueId o : g.nodes[i].outputs) producer[size_t(o)] = int32_t(i);
  auto same_spec = [&](ValueId a, ValueId b) {
    return g.spec(a).shape == g.spec(b).shape && g.spec(a).dtype == g.spec(b).dtype;
  };
  auto forward = [&](const Node& n, ValueId replacement) {
    g.replace_uses(n.outputs[0], replacement);
    ++changed;
  };

  const auto consumers = g.consumers();
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    if (n.outputs.size() != 1) continue;
    const ValueId out = n.outputs[0];
    double c = 0;
    if (is(n, "add") && n.inputs.size() == 2 && n.inputs[0] != n.inputs[1]) {
      // A sum of slice_backwards that tile the axis exactly is a concat: no
      // zero-filled full-size tensors, no adds.
      int64_t axis = -1;
      std::vector<SliceTerm> terms;
      if (collect_slice_terms(g, producer, consumers, n.inputs[0], axis, terms) &&
          collect_slice_terms(g, producer, consumers, n.inputs[1], axis, terms) &&
          g.spec(n.inputs[0]).shape == g.spec(out).shape) {
        std::sort(terms.begin(), terms.end(), [](const SliceTerm& a, const SliceTerm& b) { return a.start < b.start; });
        int64_t next = 0;
        for (const SliceTerm& t : terms) next = t.start == next ? next + t.length : -1;
        if (next == g.spec(out).shape[size_t(axis)]) {
          std::vector<TensorSpec> specs;
          std::vector<ValueId> sources;
          for (const SliceTerm& t : terms) specs.push_back(g.spec(t.source)), sources.push_back(t.source);
          n.prim = primitive_of(specs, [axis](const std::vector<Tensor>& xs) { return concat(xs, axis); });
          n.inputs = sources;
          ++changed;
          continue;
        }
      }
    }
    if (n.inputs.size() == 2 && (is(n, "mul") || is(n, "add") || is(n, "sub") || is(n, "div"))) {
      const ValueId a = n.inputs[0], b = n.inputs[1];
      const double identity = is(n, "mul") || is(n, "div") ? 1.0 : 0.0;
      if (constant_scalar(g, b, c) && c == identity && same_spec(a, out)) {
        forward(n, a);
      } else if ((is(n, "mul") || is(n, "add")) && constant_scalar(g, a, c) && c == identity && same_spec(b, out)) {
        forward(n, b);
      }
      continue;
    }
    if (n.inputs.size() != 1) continue;
    const ValueId x = n.inputs[0];
    const int32_t p = producer[size_t(x)];
    if (is(n, "neg") && p >= 0 && is(g.nodes[size_t(p)], "neg")) {
      forward(n, g.nodes[size_t(p)].inputs[0]);
    } else if ((is(n, "reshape") || is(n, "broadcast_to")) && same_spec(x, out)) {
      forward(n, x);
    } else if (is(n, "reshape") && p >= 0 && is(g.nodes[size_t(p)], "reshape")) {
      n.inputs[0] = g.nodes[size_t(p)].inputs[0];  // reshape of a reshape reads the original
      ++changed;
    } else if (is(n, "permute")) {
      std::vector<int64_t> dims = int_list(*n.prim, "dims");
      ValueId source = x;
      if (p >= 0 && is(g.nodes[size_t(p)], "permute")) {
        // permute(permute(y, d1), d2) = permute(y, d1[d2[i]]).
        std::vector<int64_t> inner = int_list(*g.nodes[size_t(p)].prim, "dims");
        for (int64_t& d : dims) d = inner[size_t(d)];
        source = g.nodes[size_t(p)].inputs[0];
      }
      bool identity = true;
      for (size_t k = 0; k < dims.size(); ++k) identity = identity && dims[k] == int64_t(k);
      if (identity) {
        forward(n, source);
      } else if (source != x) {
        n.prim = primitive_of(g.spec(source), [&](const Tensor& t) { return permute(t, dims); });
        n.inputs[0] = source;
        ++changed;
      }
    }
  }
  if (changed > 0) eliminate_dead_code(g);
  return changed;
}

}  // namespace ember::graph
