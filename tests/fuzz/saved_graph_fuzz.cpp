// libFuzzer target for the saved-graph loader (.emb files, ember/graph/saved_graph.h):
// ANY bytes must either load into a graph that passes Graph::verify() or throw
// ember::Error, never crash, overread, overflow, allocate absurdly, or throw
// anything else (a JSON exception, std::bad_variant_access, ...). Nodes are
// rebuilt through the primitive registry and their own shape inference, so
// this also fuzzes every registered primitive's attribute checks.
//
// Each input is tried twice, like safetensors_fuzz.cpp:
//   1. as a whole file (random bytes rarely pass the checksum, but seeds do);
//   2. as the header JSON inside a well-formed envelope (magic, version,
//      length, a data section of 16 * (first byte) patterned bytes, a correct
//      checksum), so mutations reach the JSON validation and the primitives.
// Run by scripts/fuzz.sh with tests/fuzz/saved_graph.dict; the corpus
// tests/fuzz/corpus/saved_graph/ (headers of a tiny exported GPT, its
// captures turned into inputs) is replayed by CTest (fuzz_target.h).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "ember/core/error.h"
#include "ember/graph/saved_graph.h"
#include "fuzz/fuzz_target.h"

namespace {

void load(std::string_view bytes) {
  try {
    ember::graph::SavedGraph g = ember::graph::load_graph_from_bytes(bytes, "fuzz.emb");
    // load_graph_from_bytes verifies the graph; a second verify checks it is stable.
    g.graph.verify();
  } catch (const ember::Error&) {
    // Rejecting bad input is the expected outcome.
  }
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ uint8_t(c)) * 1099511628211ull;
  return h;
}

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

}  // namespace

EMBER_FUZZ_TARGET(saved_graph) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  load(input);
  if (size >= 1) {
    const std::string_view header = input.substr(1);
    std::string file = "EMBGRAPH";
    put<uint32_t>(file, ember::graph::kSavedGraphVersion);
    put<uint64_t>(file, header.size());
    file.append(header);
    for (size_t i = 0; i < size_t(data[0]) * 16; ++i) file.push_back(char(i * 37 + 11));
    put<uint64_t>(file, fnv1a(file));
    load(file);
  }
  return 0;
}
