// Graph construction, rewriting helpers, verification and the text dump.
#include "ember/graph/ir.h"

#include <cstring>
#include <sstream>

#include "ember/core/error.h"
#include "ember/ops/elementwise.h"

namespace ember::graph {

ValueId Graph::add_input(const TensorSpec& spec) {
  ValueId id = ValueId(values.size());
  values.push_back({spec, ValueKind::input, -1, int32_t(inputs.size())});
  inputs.push_back(id);
  return id;
}

ValueId Graph::add_capture(const Tensor& t, std::string name, bool constant) {
  ValueId id = ValueId(values.size());
  values.push_back({{t.shape(), t.dtype()}, ValueKind::capture, -1, int32_t(captures.size())});
  captures.push_back({id, t, std::move(name), constant});
  return id;
}

const Node& Graph::add_node(PrimitivePtr prim, std::vector<ValueId> ins, const std::vector<TensorSpec>& specs) {
  Node n;
  n.prim = std::move(prim);
  n.inputs = std::move(ins);
  for (size_t k = 0; k < specs.size(); ++k) {
    n.outputs.push_back(ValueId(values.size()));
    values.push_back({specs[k], ValueKind::node_output, int32_t(nodes.size()), int32_t(k)});
  }
  nodes.push_back(std::move(n));
  return nodes.back();
}

const Capture* Graph::capture_of(ValueId v) const {
  const Value& val = values.at(size_t(v));
  return val.kind == ValueKind::capture ? &captures.at(size_t(val.index)) : nullptr;
}

std::vector<std::vector<int32_t>> Graph::consumers() const {
  std::vector<std::vector<int32_t>> c(values.size());
  for (size_t i = 0; i < nodes.size(); ++i)
    for (ValueId v : nodes[i].inputs)
      if (c[size_t(v)].empty() || c[size_t(v)].back() != int32_t(i)) c[size_t(v)].push_back(int32_t(i));
  return c;
}

std::vector<bool> Graph::observed() const {
  std::vector<bool> o(values.size(), false);
  for (ValueId v : outputs) o[size_t(v)] = true;
  for (const GradBinding& g : grads) o[size_t(g.value)] = true;
  for (const Mutation& m : mutations) o[size_t(m.value)] = true;
  return o;
}

void Graph::replace_uses(ValueId from, ValueId to) {
  for (Node& n : nodes)
    for (ValueId& v : n.inputs)
      if (v == from) v = to;
  for (ValueId& v : outputs)
    if (v == from) v = to;
  for (GradBinding& g : grads)
    if (g.value == from) g.value = to;
  for (Mutation& m : mutations)
    if (m.value == from) m.value = to;
}

void Graph::place_before(const std::vector<std::vector<int32_t>>& before) {
  std::vector<int32_t> order;
  order.reserve(nodes.size());
  for (size_t i = 0; i < before.size(); ++i) {
    order.insert(order.end(), before[i].begin(), before[i].end());
    order.push_back(int32_t(i));
  }
  reorder(order);
}

void Graph::reorder(const std::vector<int32_t>& order) {
  if (order.size() != nodes.size()) fail("graph", "reorder: ", order.size(), " indices for ", nodes.size(), " nodes");
  std::vector<Node> sorted;
  sorted.reserve(nodes.size());
  for (int32_t i : order) sorted.push_back(std::move(nodes.at(size_t(i))));
  nodes = std::move(sorted);
  for (size_t i = 0; i < nodes.size(); ++i)
    for (ValueId o : nodes[i].outputs) values[size_t(o)].node = int32_t(i);
}

void Graph::compact(const std::vector<bool>& keep_node) {
  std::vector<bool> used(values.size(), false);
  for (size_t i = 0; i < nodes.size(); ++i)
    if (keep_node[i])
      for (ValueId v : nodes[i].inputs) used[size_t(v)] = true;
  for (ValueId v : outputs) used[size_t(v)] = true;
  for (const GradBinding& g : grads) used[size_t(g.value)] = true;
  for (const Mutation& m : mutations) used[size_t(m.value)] = used[size_t(m.capture)] = true;
  for (ValueId v : inputs) used[size_t(v)] = true;  // the calling convention never changes

  Graph out;
  std::vector<ValueId> remap(values.size(), -1);
  for (ValueId v : inputs) remap[size_t(v)] = out.add_input(values[size_t(v)].spec);
  for (const Capture& c : captures)
    if (used[size_t(c.value)]) remap[size_t(c.value)] = out.add_capture(c.tensor, c.name, c.constant);
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!keep_node[i]) continue;
    std::vector<ValueId> ins;
    for (ValueId v : nodes[i].inputs) {
      if (remap[size_t(v)] < 0) fail("graph", "compact: node ", i, " (", nodes[i].prim->name(), ") reads a dropped value");
      ins.push_back(remap[size_t(v)]);
    }
    std::vector<TensorSpec> specs;
    for (ValueId v : nodes[i].outputs) specs.push_back(values[size_t(v)].spec);
    const Node& n = out.add_node(nodes[i].prim, std::move(ins), specs);
    for (size_t k = 0; k < n.outputs.size(); ++k) remap[size_t(nodes[i].outputs[k])] = n.outputs[k];
  }
  for (ValueId v : outputs) out.outputs.push_back(remap[size_t(v)]);
  for (const GradBinding& g : grads) out.grads.push_back({g.leaf, remap[size_t(g.value)]});
  for (const Mutation& m : mutations) out.mutations.push_back({remap[size_t(m.capture)], remap[size_t(m.value)]});
  *this = std::move(out);
}

void Graph::verify() const {
  std::vector<bool> defined(values.size(), false);
  for (ValueId v : inputs) defined[size_t(v)] = true;
  for (const Capture& c : captures) defined[size_t(c.value)] = true;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    for (ValueId v : n.inputs)
      if (v < 0 || size_t(v) >= values.size() || !defined[size_t(v)])
        fail("graph", "node ", i, " (", n.prim->str(), ") reads %", v, " before it is defined");
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      ValueId v = n.outputs[k];
      const Value& val = values.at(size_t(v));
      if (defined[size_t(v)] || val.kind != ValueKind::node_output || val.node != int32_t(i) || val.index != int32_t(k))
        fail("graph", "node ", i, " (", n.prim->str(), ") output ", k, " (%", v, ") is defined twice or mislabelled");
      defined[size_t(v)] = true;
    }
  }
  for (ValueId v : outputs)
    if (!defined.at(size_t(v))) fail("graph", "output %", v, " is never defined");
  for (const GradBinding& g : grads)
    if (!defined.at(size_t(g.value))) fail("graph", "gradient %", g.value, " is never defined");
  std::vector<bool> mutated(values.size(), false);
  for (const Mutation& m : mutations) {
    if (m.capture < 0 || size_t(m.capture) >= values.size() || values[size_t(m.capture)].kind != ValueKind::capture)
      fail("graph", "mutation of %", m.capture, ", which is not a capture");
    if (!defined.at(size_t(m.value))) fail("graph", "mutation value %", m.value, " is never defined");
    if (spec(m.capture).shape != spec(m.value).shape || spec(m.capture).dtype != spec(m.value).dtype)
      fail("graph", "mutation of %", m.capture, " by %", m.value, " changes its shape or dtype");
    if (mutated[size_t(m.capture)]) fail("graph", "capture %", m.capture, " is mutated twice");
    mutated[size_t(m.capture)] = true;
  }
}

namespace {

std::string spec_str(const TensorSpec& s) { return std::string(dtype_name(s.dtype)) + shape_str(s.shape); }

// Small constants print their values (they matter for what the graph computes);
// large ones a digest of their bytes, so the dump and hash still tell them apart.
std::string constant_str(const Tensor& t) {
  std::ostringstream os;
  if (t.numel() <= 8) {
    std::vector<double> v = t.to_vector<double>();
    os << "[";
    for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
    os << "]";
    return os.str();
  }
  const Tensor c = t.is_contiguous() ? t : clone(t);
  const unsigned char* p = static_cast<const unsigned char*>(c.raw_data());
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < c.nbytes(); ++i) h = (h ^ p[i]) * 1099511628211ull;
  os << "#" << std::hex << h;
  return os.str();
}

}  // namespace

std::string Graph::dump() const {
  std::ostringstream os;
  os << "graph(";
  for (size_t i = 0; i < inputs.size(); ++i) os << (i ? ", " : "") << "%" << inputs[i] << ": " << spec_str(spec(inputs[i]));
  os << ") {\n";
  for (const Capture& c : captures) {
    os << "  %" << c.value << " = " << (c.constant ? "constant " : "capture ") << "\"" << c.name << "\"";
    if (c.constant) os << " " << constant_str(c.tensor);
    os << " : " << spec_str(spec(c.value)) << "\n";
  }
  for (const Node& n : nodes) {
    os << "  ";
    for (size_t k = 0; k < n.outputs.size(); ++k) os << (k ? ", " : "") << "%" << n.outputs[k];
    os << " = " << n.prim->str() << "(";
    for (size_t k = 0; k < n.inputs.size(); ++k) os << (k ? ", " : "") << "%" << n.inputs[k];
    os << ") : ";
    for (size_t k = 0; k < n.outputs.size(); ++k) os << (k ? ", " : "") << spec_str(spec(n.outputs[k]));
    os << "\n";
  }
  os << "  return (";
  for (size_t i = 0; i < outputs.size(); ++i) os << (i ? ", " : "") << "%" << outputs[i];
  os << ")";
  if (!grads.empty()) {
    os << " grads (";
    for (size_t i = 0; i < grads.size(); ++i) os << (i ? ", " : "") << "%" << grads[i].value;
    os << ")";
  }
  if (!mutations.empty()) {
    os << " mutates (";
    for (size_t i = 0; i < mutations.size(); ++i)
      os << (i ? ", " : "") << "%" << mutations[i].capture << " <- %" << mutations[i].value;
    os << ")";
  }
  os << "\n}\n";
  return os.str();
}

uint64_t Graph::hash() const {
  std::string text = dump();
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  return h;
}

int64_t Graph::node_count(const char* prim_name) const {
  int64_t n = 0;
  for (const Node& node : nodes) n += std::strcmp(node.prim->name(), prim_name) == 0;
  return n;
}

}  // namespace ember::graph
