// Saved graphs (.emb): an inference graph with its weights in one versioned,
// checksummed file, for the deployment runtime (`ember run`, `ember-run`).
//
// Layout (little-endian):
//   "EMBGRAPH"  8-byte magic
//   u32         format version (kSavedGraphVersion)
//   u64         header length H
//   H bytes     header JSON: inputs, values (dtype, shape), nodes (primitive
//               name, attributes, input and output value ids), captures (name,
//               value, byte range in the data), outputs, metadata
//   data        every capture's bytes, contiguous, each at a 64-byte offset
//   u64         FNV-1a 64 of every byte before it
//
// Nodes are rebuilt from (name, attributes) through the primitive registry
// (ops/primitive_registry.h) and re-checked by their own shape inference, so a
// damaged or edited file is refused before anything runs. Graphs are saved
// before fusion (the loader optimises again), so only registered primitives
// appear in files.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "ember/graph/ir.h"

namespace ember::graph {

constexpr uint32_t kSavedGraphVersion = 1;

// Writes g (no gradients) and `metadata` to `path` atomically. Errors name a
// primitive that cannot be loaded back.
void save_graph(const Graph& g, const std::string& path, const nlohmann::json& metadata = {});

struct SavedGraph {
  Graph graph;
  nlohmann::json metadata;
};

// Reads and validates a file written by save_graph. Errors ("[load] <path>: ...")
// say what is wrong: not an .emb file, a newer version, truncation, a checksum
// mismatch, an unknown primitive, inconsistent shapes.
SavedGraph load_graph(const std::string& path);
// The same from the file's bytes; `path` only names the source in errors.
SavedGraph load_graph_from_bytes(std::string_view bytes, const std::string& path);

}  // namespace ember::graph
