// The primitive registry and typed attribute access (see primitive_registry.h).
#include "ember/ops/primitive_registry.h"

#include "ember/core/error.h"

namespace ember {

void PrimitiveRegistry::add(const std::string& name, InputCount inputs, PrimitiveFactory factory) {
  entries_[name] = {std::move(factory), inputs};
}

const PrimitiveRegistry::Entry* PrimitiveRegistry::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

const PrimitiveRegistry& primitive_registry() {
  static const PrimitiveRegistry registry = [] {
    PrimitiveRegistry r;
    register_elementwise_primitives(r);
    register_shape_primitives(r);
    register_linalg_primitives(r);
    register_norm_primitives(r);
    register_softmax_primitives(r);
    register_attention_primitives(r);
    register_index_primitives(r);
    register_join_primitives(r);
    register_reduce_primitives(r);
    register_creation_primitives(r);
    return r;
  }();
  return registry;
}

PrimitivePtr make_primitive(const std::string& name, const Attrs& attrs, size_t n_inputs) {
  const PrimitiveRegistry::Entry* e = primitive_registry().find(name);
  if (!e) fail("load", "primitive '", name, "' cannot be loaded (no factory: it is not part of saved inference graphs)");
  const InputCount& c = e->inputs;
  if (int64_t(n_inputs) < c.min || (c.max >= 0 && int64_t(n_inputs) > c.max)) {
    if (c.min == c.max) fail("load", "primitive '", name, "' takes ", c.min, " inputs, got ", n_inputs);
    if (c.max < 0) fail("load", "primitive '", name, "' takes at least ", c.min, " inputs, got ", n_inputs);
    fail("load", "primitive '", name, "' takes ", c.min, " to ", c.max, " inputs, got ", n_inputs);
  }
  return e->factory(attrs);
}

namespace {

template <typename T>
const T& attr(const Attrs& a, const char* key, const std::string& prim, const char* type) {
  auto it = a.find(key);
  if (it == a.end()) fail("load", "primitive '", prim, "' is missing attribute '", key, "'");
  const T* v = std::get_if<T>(&it->second);
  if (!v) fail("load", "primitive '", prim, "' attribute '", key, "' must be ", type);
  return *v;
}

}  // namespace

int64_t attr_int(const Attrs& a, const char* key, const std::string& prim) {
  return attr<int64_t>(a, key, prim, "an integer");
}
double attr_double(const Attrs& a, const char* key, const std::string& prim) {
  return attr<double>(a, key, prim, "a number");
}
std::string attr_string(const Attrs& a, const char* key, const std::string& prim) {
  return attr<std::string>(a, key, prim, "a string");
}
std::vector<int64_t> attr_ints(const Attrs& a, const char* key, const std::string& prim) {
  return attr<std::vector<int64_t>>(a, key, prim, "a list of integers");
}

}  // namespace ember
