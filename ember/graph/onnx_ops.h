// The per-primitive half of the ONNX exporter: how one graph node becomes
// ONNX operators (onnx_ops.cpp, onnx_attention.cpp). onnx_export.cpp walks the
// graph and calls emit_onnx_node for each node. Internal to the exporter.
#pragma once

#include <string>
#include <vector>

#include "ember/core/op_kinds.h"
#include "ember/graph/ir.h"
#include "ember/graph/onnx_builder.h"

namespace ember::graph::onnx_detail {

struct OnnxNodeContext {
  OnnxBuilder& b;
  const Graph& g;
  const Node& node;
  Attrs attrs;                   // node.prim->attrs()
  std::vector<std::string> in;   // ONNX names of the node's inputs
  std::vector<std::string> out;  // the ONNX names its outputs must be given
  std::vector<bool> used;        // whether each output is read (unread ones may be left out)

  const TensorSpec& in_spec(size_t i) const { return g.spec(node.inputs.at(i)); }
  const TensorSpec& out_spec(size_t i) const { return g.spec(node.outputs.at(i)); }
  const char* prim_name() const { return node.prim->name(); }
  int64_t attr_int(const char* key) const;
  double attr_double(const char* key) const;
  std::vector<int64_t> attr_ints(const char* key) const;
};

// Emits the ONNX nodes computing ctx.node; false when its primitive has no mapping.
bool emit_onnx_node(OnnxNodeContext& ctx);

// y = op(x) / y = op(a, b) with ember's semantics, into the given output name
// (shared by the plain elementwise primitives and fused_elementwise).
void emit_unary(OnnxBuilder& b, UnaryOp op, const std::string& x, DType dt, const std::string& y);
void emit_binary(OnnxBuilder& b, BinaryOp op, const std::string& a, const std::string& c, const std::string& y);

// Writes `from` (of dtype `have`) to `to`, through a Cast when the dtypes differ.
void emit_cast_to(OnnxBuilder& b, const std::string& from, DType have, DType want, const std::string& to);

// scaled_dot_product_attention, layer_norm and rms_norm (onnx_attention.cpp).
void emit_attention(OnnxNodeContext& ctx);
void emit_norm(OnnxNodeContext& ctx, bool rms);

}  // namespace ember::graph::onnx_detail
