// Writing and reading .emb saved graphs (see saved_graph.h).
#include "ember/graph/saved_graph.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "ember/core/error.h"
#include "ember/io/atomic_file.h"
#include "ember/graph/rebuild.h"
#include "ember/ops/primitive_registry.h"
#include "ember/ops/trace_hook.h"

namespace ember::graph {
namespace {

constexpr char kMagic[8] = {'E', 'M', 'B', 'G', 'R', 'A', 'P', 'H'};
constexpr uint64_t kAlign = 64;

uint64_t fnv1a(const char* p, size_t n, uint64_t h = 1469598103934665603ull) {
  for (size_t i = 0; i < n; ++i) h = (h ^ uint8_t(p[i])) * 1099511628211ull;
  return h;
}

nlohmann::json attrs_json(const Attrs& attrs) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : attrs) {
    const std::string& key = k;  // clang 14 (the fuzz build) cannot capture a structured binding
    std::visit([&](const auto& x) { j[key] = x; }, v);
  }
  return j;
}

Attrs attrs_from_json(const nlohmann::json& j, const std::string& where) {
  Attrs a;
  for (const auto& [k, v] : j.items()) {
    if (v.is_number_integer()) a[k] = v.get<int64_t>();
    else if (v.is_number_float()) a[k] = v.get<double>();
    else if (v.is_string()) a[k] = v.get<std::string>();
    else if (v.is_array()) a[k] = v.get<std::vector<int64_t>>();
    else fail("load", where, ": attribute '", k, "' has an unsupported type");
  }
  return a;
}

nlohmann::json spec_json(const TensorSpec& s) { return {{"dtype", dtype_name(s.dtype)}, {"shape", s.shape}}; }

}  // namespace

void save_graph(const Graph& g, const std::string& path, const nlohmann::json& metadata) {
  if (!g.grads.empty()) fail("save", "a graph that computes gradients cannot be saved for deployment");
  if (!g.mutations.empty())
    fail("save", "a graph that updates tensors in place (an optimizer step) cannot be saved for deployment");
  nlohmann::json h;
  h["metadata"] = metadata;
  nlohmann::json values = nlohmann::json::array();
  for (const Value& v : g.values) values.push_back(spec_json(v.spec));
  h["values"] = values;
  h["inputs"] = g.inputs;
  h["outputs"] = g.outputs;
  nlohmann::json nodes = nlohmann::json::array();
  for (const Node& n : g.nodes) {
    if (!primitive_registry().find(n.prim->name()))
      fail("save", "primitive '", n.prim->name(),
           "' cannot be saved (it has no loader); save the graph before fusion and weight prepacking");
    nodes.push_back({{"prim", n.prim->name()}, {"attrs", attrs_json(n.prim->attrs())}, {"inputs", n.inputs},
                     {"outputs", n.outputs}});
  }
  h["nodes"] = nodes;
  nlohmann::json caps = nlohmann::json::array();
  uint64_t offset = 0;
  std::vector<Tensor> data;
  for (const Capture& c : g.captures) {
    Tensor t = c.tensor.is_contiguous() ? c.tensor : Tensor();
    if (!t.defined()) fail("save", "capture '", c.name, "' is not contiguous");
    if (!t.device().is_cpu()) fail("save", "capture '", c.name, "' is on ", t.device().str(), "; copy it to cpu first");
    caps.push_back({{"name", c.name}, {"value", c.value}, {"offset", offset}, {"bytes", t.nbytes()}});
    data.push_back(t);
    offset += (t.nbytes() + kAlign - 1) / kAlign * kAlign;
  }
  h["captures"] = caps;
  const std::string header = h.dump();

  AtomicFileWriter out(path, "save");
  uint64_t sum = 1469598103934665603ull;
  auto put = [&](const void* p, size_t n) {
    out.write(p, n);
    sum = fnv1a(static_cast<const char*>(p), n, sum);
  };
  const uint32_t version = kSavedGraphVersion;
  const uint64_t header_len = header.size();
  put(kMagic, sizeof kMagic);
  put(&version, sizeof version);
  put(&header_len, sizeof header_len);
  put(header.data(), header.size());
  static const char zeros[kAlign] = {};
  for (const Tensor& t : data) {
    put(t.raw_data(), t.nbytes());
    put(zeros, size_t((kAlign - t.nbytes() % kAlign) % kAlign));
  }
  out.write(&sum, sizeof sum);
  out.commit();
}

SavedGraph load_graph(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("load", path, ": cannot open the file");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return load_graph_from_bytes(bytes, path);
}

SavedGraph load_graph_from_bytes(std::string_view bytes, const std::string& path) {
  const size_t fixed = sizeof kMagic + sizeof(uint32_t) + sizeof(uint64_t);
  if (bytes.size() < fixed + sizeof(uint64_t) || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    fail("load", path, ": not an ember saved graph (.emb); make one with `ember export --format emb`");
  uint32_t version;
  std::memcpy(&version, bytes.data() + sizeof kMagic, sizeof version);
  if (version != kSavedGraphVersion)
    fail("load", path, ": format version ", version, ", this ember reads version ", kSavedGraphVersion,
         "; export the model again with this ember");
  uint64_t stored;
  std::memcpy(&stored, bytes.data() + bytes.size() - sizeof stored, sizeof stored);
  if (fnv1a(bytes.data(), bytes.size() - sizeof stored) != stored)
    fail("load", path, ": the file is damaged (checksum mismatch) or truncated");
  uint64_t header_len;
  std::memcpy(&header_len, bytes.data() + sizeof kMagic + sizeof version, sizeof header_len);
  if (header_len > bytes.size() - fixed - sizeof stored) fail("load", path, ": header length runs past the end of the file");
  const char* data = bytes.data() + fixed + header_len;
  const uint64_t data_len = bytes.size() - fixed - header_len - sizeof stored;

  SavedGraph out;
  try {
    const nlohmann::json h = nlohmann::json::parse(bytes.begin() + long(fixed), bytes.begin() + long(fixed + header_len));
    out.metadata = h.at("metadata");
    Graph& g = out.graph;
    const auto& values = h.at("values");
    std::vector<TensorSpec> specs;
    for (const auto& v : values) {
      specs.push_back({v.at("shape").get<Shape>(), dtype_from_name(v.at("dtype"))});
      // Shapes come from the file: refuse ones no graph of ours could have
      // before anything is sized from them. A zero dimension counts as one:
      // [2^62, 2^62, 0] holds no elements, but its element count and strides,
      // multiplied out in int64, overflow.
      double bytes = double(dtype_size(specs.back().dtype));
      for (int64_t d : specs.back().shape) {
        if (d < 0) fail("load", path, ": value ", specs.size() - 1, " has a negative dimension");
        bytes *= double(std::max<int64_t>(d, 1));
      }
      if (bytes > double(int64_t(1) << 40))
        fail("load", path, ": value ", specs.size() - 1, " of shape ", shape_str(specs.back().shape), " is implausibly large");
    }
    // Rebuild in the file's value numbering: inputs, captures, then nodes.
    std::vector<ValueId> remap(specs.size(), -1);
    auto spec_of = [&](int64_t id) -> const TensorSpec& {
      if (id < 0 || size_t(id) >= specs.size()) fail("load", path, ": value id ", id, " out of range");
      return specs[size_t(id)];
    };
    for (int64_t id : h.at("inputs").get<std::vector<int64_t>>()) remap[size_t(id)] = g.add_input(spec_of(id));
    for (const auto& c : h.at("captures")) {
      const int64_t id = c.at("value");
      const TensorSpec& s = spec_of(id);
      const uint64_t off = c.at("offset"), n = c.at("bytes");
      if (n != uint64_t(numel(s.shape)) * dtype_size(s.dtype) || off > data_len || n > data_len - off)
        fail("load", path, ": capture '", c.at("name").get<std::string>(), "' has an inconsistent byte range");
      Tensor t = Tensor::empty(s.shape, s.dtype);
      std::memcpy(t.raw_data(), data + off, n);
      remap[size_t(id)] = g.add_capture(t, c.at("name"), true);
    }
    TraceSuspendGuard eager;
    for (const auto& n : h.at("nodes")) {
      const std::string name = n.at("prim");
      PrimitivePtr prim = make_primitive(name, attrs_from_json(n.at("attrs"), path), n.at("inputs").size());
      std::vector<ValueId> ins;
      std::vector<TensorSpec> in_specs;
      for (int64_t id : n.at("inputs").get<std::vector<int64_t>>()) {
        spec_of(id);
        if (remap[size_t(id)] < 0) fail("load", path, ": node ", name, " reads value ", id, " before it is defined");
        ins.push_back(remap[size_t(id)]);
        in_specs.push_back(specs[size_t(id)]);
      }
      const std::vector<TensorSpec> inferred = output_specs_of(*prim, in_specs);
      const auto outs = n.at("outputs").get<std::vector<int64_t>>();
      if (inferred.size() != outs.size()) fail("load", path, ": node ", name, " has the wrong number of outputs");
      for (size_t k = 0; k < outs.size(); ++k)
        if (inferred[k].shape != spec_of(outs[k]).shape || inferred[k].dtype != spec_of(outs[k]).dtype)
          fail("load", path, ": node ", prim->str(), " output ", k, " is recorded as ", shape_str(spec_of(outs[k]).shape),
               " but computes ", shape_str(inferred[k].shape));
      const Node& made = g.add_node(prim, std::move(ins), inferred);
      for (size_t k = 0; k < outs.size(); ++k) remap[size_t(outs[k])] = made.outputs[k];
    }
    for (int64_t id : h.at("outputs").get<std::vector<int64_t>>()) {
      spec_of(id);
      if (remap[size_t(id)] < 0) fail("load", path, ": output value ", id, " is never defined");
      g.outputs.push_back(remap[size_t(id)]);
    }
    g.verify();
  } catch (const nlohmann::json::exception& e) {
    fail("load", path, ": malformed header (", e.what(), ")");
  }
  return out;
}

}  // namespace ember::graph
