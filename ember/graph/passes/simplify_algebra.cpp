// Algebraic simplification: local rewrites that remove nodes (see passes.h).
//
// A rewrite either forwards a node's input in place of its output (x*1 -> x)
// or points a node past a redundant producer (reshape(reshape(x)) reads x).
// Forwarding is allowed only when the replacement has exactly the output's
// shape and dtype, so no consumer can tell the difference.
#include <cstring>

#include "ember/graph/passes.h"
#include "ember/graph/rebuild.h"
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

  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    if (n.outputs.size() != 1) continue;
    const ValueId out = n.outputs[0];
    double c = 0;
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
