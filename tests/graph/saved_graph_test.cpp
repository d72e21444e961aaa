// Saved graphs (.emb, ember/graph/saved_graph) and the deployment runtime:
// a GPT forward saved and loaded runs to eager's logits; damaged, truncated,
// version-mismatched files and unloadable primitives are refused by name.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "ember/graph/compile.h"
#include "ember/graph/runtime.h"
#include "ember/graph/saved_graph.h"
#include "ember/models/gpt.h"
#include "ember/models/gpt_onnx.h"
#include "ember/ops/primitive_registry.h"
#include "graph/graph_test_util.h"
#include "models/gpt_test_configs.h"
#include "test_util.h"

using namespace ember;
using namespace ember::graph_test;
namespace fs = std::filesystem;

namespace {

std::string temp_path(const char* name) { return (fs::temp_directory_path() / name).string(); }

void patch_byte(const std::string& path, size_t at, char value) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(long(at));
  f.put(value);
}

}  // namespace

TEST(SavedGraph, GptForwardRoundTripsThroughTheRuntime) {
  for (bool modern : {false, true}) {
    Generator gen(3);
    models::GPT model(modern ? models::test_configs::modern() : models::test_configs::gpt2_style(), &gen);
    model.eval();
    const std::string path = temp_path(modern ? "ember_modern.emb" : "ember_gpt2.emb");
    graph::save_graph(models::trace_gpt_forward(model, 1, 16), path, {{"kind", "test"}});
    graph::GraphRuntime rt(path);
    EXPECT_EQ(rt.seq_len(), 16);
    EXPECT_EQ(rt.metadata()["kind"], "test");
    const std::vector<int64_t> ids = {3, 1, 4, 1, 5, 9, 2};
    std::vector<float> got = rt.last_logits(ids);
    NoGradGuard ng;
    Tensor want = model.forward(tensor_i64(ids, {1, 7}));
    std::vector<float> w = want.to_vector<float>();
    ASSERT_EQ(got.size(), 50u);
    double diff = 0;
    for (size_t i = 0; i < got.size(); ++i) diff = std::max(diff, std::fabs(double(got[i]) - w[6 * 50 + i]));
    EXPECT_LE(diff, 1e-5) << (modern ? "modern" : "gpt2_style");
    EXPECT_ERROR(rt.last_logits(std::vector<int64_t>(17, 1)), "[run] " + path + " was exported for at most 16 tokens");
    EXPECT_ERROR(rt.last_logits({50}), "[run] token id 50 is outside the vocabulary [0, 50)");
    fs::remove(path);
  }
}

TEST(SavedGraph, DamagedOrForeignFilesAreRefused) {
  Generator gen(4);
  models::GPT model(models::test_configs::gpt2_style(), &gen);
  const std::string path = temp_path("ember_damaged.emb");
  graph::save_graph(models::trace_gpt_forward(model, 1, 8), path);
  const size_t size = fs::file_size(path);

  patch_byte(path, size / 2, 0x5a);
  EXPECT_ERROR(graph::load_graph(path), "[load] " + path + ": the file is damaged (checksum mismatch) or truncated");
  graph::save_graph(models::trace_gpt_forward(model, 1, 8), path);
  patch_byte(path, 8, 2);  // the version field
  EXPECT_ERROR(graph::load_graph(path), "[load] " + path + ": format version 2, this ember reads version 1");
  fs::resize_file(path, 100);
  EXPECT_ERROR(graph::load_graph(path), "[load] " + path + ": format version 2");
  graph::save_graph(models::trace_gpt_forward(model, 1, 8), path);
  fs::resize_file(path, size - 1000);
  EXPECT_ERROR(graph::load_graph(path), "[load] " + path + ": the file is damaged");
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << "{\"not\": \"a graph\"}";
  }
  EXPECT_ERROR(graph::load_graph(path), "[load] " + path + ": not an ember saved graph (.emb)");
  EXPECT_ERROR(graph::load_graph(temp_path("ember_missing.emb")), "[load] ");
  fs::remove(path);
}

// A header inside a well-formed file (magic, version, length, checksum), as
// tests/fuzz/saved_graph_fuzz.cpp builds them.
static std::string emb_file(const std::string& header) {
  std::string file = "EMBGRAPH";
  const uint32_t version = graph::kSavedGraphVersion;
  const uint64_t length = header.size();
  file.append(reinterpret_cast<const char*>(&version), sizeof version);
  file.append(reinterpret_cast<const char*>(&length), sizeof length);
  file += header;
  uint64_t sum = 1469598103934665603ull;  // FNV-1a 64, as the format says
  for (char c : file) sum = (sum ^ uint8_t(c)) * 1099511628211ull;
  file.append(reinterpret_cast<const char*>(&sum), sizeof sum);
  return file;
}

// Headers no exporter writes, but a damaged or hostile file may hold: each is refused
// by name before anything is sized from it (the fuzz corpus keeps them too).
TEST(SavedGraph, ImplausibleHeadersAreRefused) {
  const std::string head = R"({"metadata": {}, "inputs": [], "nodes": [], "outputs": [0], "values": )";
  // No elements, but [2^62, 2^62, 0]'s element count and strides overflow int64 on the
  // way to 0 (undefined behaviour in numel() before the loader counted zeros as ones).
  EXPECT_ERROR(graph::load_graph_from_bytes(
                   emb_file(head + R"([{"dtype": "float32", "shape": [4611686018427387904, 4611686018427387904, 0]}],
                                       "captures": [{"name": "w", "value": 0, "offset": 0, "bytes": 0}]})"),
                   "hostile.emb"),
               "[load] hostile.emb: value 0 of shape [4611686018427387904, 4611686018427387904, 0] is implausibly large");
  EXPECT_ERROR(graph::load_graph_from_bytes(
                   emb_file(head + R"([{"dtype": "float32", "shape": [2, -3]}], "captures": []})"), "hostile.emb"),
               "[load] hostile.emb: value 0 has a negative dimension");
  // View primitives whose attributes do not fit their input (found by fuzzing): each would
  // have read or written past a shape vector, or viewed memory outside its input.
  auto one_node = [](const std::string& prim, const std::string& attrs, const std::string& out_shape) {
    return emb_file(R"({"metadata": {}, "values": [{"dtype": "float32", "shape": [2, 3]}, {"dtype": "float32", "shape": )" +
                    out_shape + R"(}], "inputs": [0], "captures": [], "nodes": [{"prim": ")" + prim +
                    R"(", "attrs": )" + attrs + R"(, "inputs": [0], "outputs": [1]}], "outputs": [1]})");
  };
  EXPECT_ERROR(graph::load_graph_from_bytes(one_node("permute", R"({"dims": [0, 2, 1]})", "[3, 2]"), "p.emb"),
               "[permute] got 3 dims for a tensor of 2 dimensions");
  EXPECT_ERROR(graph::load_graph_from_bytes(one_node("permute", R"({"dims": [0, 0]})", "[2, 2]"), "p.emb"),
               "[permute] dims [0, 0] are not a permutation of 2 dimensions");
  EXPECT_ERROR(graph::load_graph_from_bytes(
                   one_node("slice", R"({"axis": 5, "start": 0, "length": 1, "step": 1})", "[2, 1]"), "s.emb"),
               "[slice] axis 5 is out of range for [2, 3]");
  EXPECT_ERROR(graph::load_graph_from_bytes(
                   one_node("slice", R"({"axis": 1, "start": 2, "length": 2, "step": 1})", "[2, 2]"), "s.emb"),
               "[slice] start 2, length 2, step 1 do not fit dimension 1 of size 3");
  EXPECT_ERROR(graph::load_graph_from_bytes(
                   one_node("slice", R"({"axis": 1, "start": 0, "length": 2, "step": 0})", "[2, 2]"), "s.emb"),
               "[slice] start 0, length 2, step 0 do not fit dimension 1 of size 3");
  EXPECT_ERROR(graph::load_graph_from_bytes(one_node("reshape", R"({"shape": [4, 2]})", "[4, 2]"), "r.emb"),
               "[reshape] cannot view [2, 3] as [4, 2]");
  // The same nodes with attributes that fit load.
  EXPECT_NO_THROW(graph::load_graph_from_bytes(one_node("permute", R"({"dims": [1, 0]})", "[3, 2]"), "p.emb"));
  EXPECT_NO_THROW(graph::load_graph_from_bytes(
      one_node("slice", R"({"axis": 1, "start": 1, "length": 1, "step": 2})", "[2, 1]"), "s.emb"));
  EXPECT_NO_THROW(graph::load_graph_from_bytes(one_node("reshape", R"({"shape": [3, 2]})", "[3, 2]"), "r.emb"));

  // A valid file of one input, loaded from its bytes.
  const graph::SavedGraph g = graph::load_graph_from_bytes(
      emb_file(R"({"metadata": {"k": 1}, "values": [{"dtype": "float32", "shape": [2, 0, 3]}], "inputs": [0],
                   "captures": [], "nodes": [], "outputs": [0]})"),
      "ok.emb");
  EXPECT_EQ(g.graph.inputs.size(), 1u);
  EXPECT_EQ(g.graph.outputs.size(), 1u);
  EXPECT_EQ(g.metadata, nlohmann::json({{"k", 1}}));
}

TEST(SavedGraph, FusedOrTrainingGraphsAreNotSaved) {
  auto fn = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{exp(in[0] * 2.0) + 1.0}; };
  graph::Graph g = graph::trace(fn, {random({8}, 1)});
  graph::optimize(g, {});
  ASSERT_EQ(g.node_count("fused_elementwise"), 1);
  EXPECT_ERROR(graph::save_graph(g, temp_path("ember_fused.emb")), "[save] primitive 'fused_elementwise' cannot be saved");
  EXPECT_ERROR(make_primitive("no_such_op", {}, 1), "[load] primitive 'no_such_op' cannot be loaded");
  EXPECT_ERROR(make_primitive("reshape", {}, 1), "[load] primitive 'reshape' is missing attribute 'shape'");
  // A node's input count comes from the file; kernels index inputs unchecked.
  EXPECT_ERROR(make_primitive("add", {}, 1), "[load] primitive 'add' takes 2 inputs, got 1");
  EXPECT_ERROR(make_primitive("linear", {}, 4), "[load] primitive 'linear' takes 2 to 3 inputs, got 4");
  EXPECT_ERROR(make_primitive("concat", {{"axis", int64_t(0)}}, 0),
               "[load] primitive 'concat' takes at least 1 inputs, got 0");
  PrimitivePtr norm = make_primitive("layer_norm", {{"eps", 1e-5}, {"weight", int64_t(1)}, {"bias", int64_t(1)}}, 2);
  EXPECT_ERROR(norm->output_specs({Tensor::empty({2, 4}), Tensor::empty({4})}),
               "[layer_norm] expects 3 inputs (x, weight, bias), got 2");
}
