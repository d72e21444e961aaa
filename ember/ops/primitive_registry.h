// Rebuilding primitives from their name and attributes: how a saved graph
// (ember/graph/saved_graph.h) is loaded back. A primitive's attributes are
// complete by contract (DESIGN.md), so (name, attrs) is all it takes.
//
// Each op file registers the primitives it owns (register_*_primitives, called
// once, in order, when the registry is first used); a primitive without a
// factory cannot be loaded, and make_primitive says so by name.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "ember/ops/primitive.h"

namespace ember {

using PrimitiveFactory = std::function<PrimitivePtr(const Attrs&)>;

// How many inputs a primitive reads: a saved graph's node lists its inputs,
// and a kernel indexes them without checking, so the loader checks the count
// before anything runs (max -1: any number).
struct InputCount {
  int min = 0, max = 0;
};

class PrimitiveRegistry {
 public:
  struct Entry {
    PrimitiveFactory factory;
    InputCount inputs;
  };
  void add(const std::string& name, InputCount inputs, PrimitiveFactory factory);
  const Entry* find(const std::string& name) const;

 private:
  std::map<std::string, Entry> entries_;
};

// The registry of every primitive ember can load.
const PrimitiveRegistry& primitive_registry();

// Builds `name` from `attrs` for a node with `n_inputs` inputs; errors
// ("[load] ...") name an unknown primitive, a wrong number of inputs, or a
// missing or mistyped attribute.
PrimitivePtr make_primitive(const std::string& name, const Attrs& attrs, size_t n_inputs);

// Typed attribute access for factories (errors name the primitive and attribute).
int64_t attr_int(const Attrs& a, const char* key, const std::string& prim);
double attr_double(const Attrs& a, const char* key, const std::string& prim);
std::string attr_string(const Attrs& a, const char* key, const std::string& prim);
std::vector<int64_t> attr_ints(const Attrs& a, const char* key, const std::string& prim);

// Per op file (each defined next to the primitives it registers).
void register_elementwise_primitives(PrimitiveRegistry& r);
void register_shape_primitives(PrimitiveRegistry& r);
void register_linalg_primitives(PrimitiveRegistry& r);
void register_norm_primitives(PrimitiveRegistry& r);
void register_softmax_primitives(PrimitiveRegistry& r);
void register_attention_primitives(PrimitiveRegistry& r);
void register_index_primitives(PrimitiveRegistry& r);
void register_join_primitives(PrimitiveRegistry& r);
void register_reduce_primitives(PrimitiveRegistry& r);
void register_creation_primitives(PrimitiveRegistry& r);

}  // namespace ember
