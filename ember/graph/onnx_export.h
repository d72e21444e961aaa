// ONNX export of a traced inference graph (see docs/COMPILER.md, "ONNX export").
//
//   graph::Graph g = graph::trace(fn, {ids}, namer);          // tracer.h
//   graph::export_onnx(g, "model.onnx", {.input_names = {"input_ids"},
//                                        .output_names = {"logits"}});
//
// Each node becomes one or a few ONNX operators (opset 17, the default domain):
// matmul/linear -> MatMul/Gemm, layer_norm -> LayerNormalization, rms_norm,
// gelu_tanh and silu as their formulas, scaled_dot_product_attention as
// MatMul, Softmax and an additive causal mask (grouped-query attention by
// reshaping the query heads into groups, not by copying k and v), movements
// (reshape, permute, slice, broadcast_to, concat) as their ONNX namesakes, and
// the elementwise, reduction, indexing and creation primitives likewise. A
// primitive without a mapping is an error naming it.
//
// Captures become initializers: a parameter keeps the name the tracer's namer
// gave it (e.g. "transformer.h.0.attn.c_attn.weight"), a constant its "c<k>"
// name. Shapes are static: the graph was traced at one input shape, and its
// reshape targets, masks and position tables are specific to it.
//
// Inference graphs only: a graph with gradient bindings is refused. The model
// is checked with ONNX's checker and strict shape inference, and written
// atomically (io/atomic_file.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ember/graph/ir.h"

namespace ember::graph {

struct OnnxExportOptions {
  int64_t opset = 17;                    // the only one supported for now
  std::vector<std::string> input_names;   // per graph input; missing ones are "input<i>"
  std::vector<std::string> output_names;  // per graph output; missing ones are "output<i>"
  std::string graph_name = "ember";
  std::string doc_string;                      // the model's doc_string
  std::map<std::string, std::string> metadata;  // ModelProto metadata_props
  bool check = true;  // run ONNX's checker and strict shape inference before writing
};

struct OnnxExportInfo {
  int64_t nodes = 0;          // ONNX nodes written
  int64_t initializers = 0;   // parameters and constants
  int64_t bytes = 0;          // size of the serialised model
};

// The serialised ONNX ModelProto of `g`. Throws ember::Error ("[onnx export] ...")
// for a primitive without a mapping, a training graph, or a model over
// protobuf's 2 GiB limit.
std::string onnx_model_bytes(const Graph& g, const OnnxExportOptions& options = {}, OnnxExportInfo* info = nullptr);

// Writes onnx_model_bytes(g, options) to `path` atomically.
OnnxExportInfo export_onnx(const Graph& g, const std::string& path, const OnnxExportOptions& options = {});

}  // namespace ember::graph
