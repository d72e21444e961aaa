// ONNX export of a traced graph (see onnx_export.h): names, inputs, outputs,
// initializers and the model around the nodes that onnx_ops.cpp emits.
#include "ember/graph/onnx_export.h"

#include <climits>

#include "ember/core/error.h"
#include "ember/graph/onnx_builder.h"
#include "ember/graph/onnx_ops.h"
#include "ember/io/atomic_file.h"

namespace ember::graph {
namespace {

constexpr const char* kOp = "onnx export";
constexpr int64_t kIrVersion = 8;  // the IR version of opset 17 (ONNX 1.12)

std::string name_or(const std::vector<std::string>& names, size_t i, const char* prefix) {
  if (i < names.size() && !names[i].empty()) return names[i];
  return prefix + std::to_string(i);
}

}  // namespace

std::string onnx_model_bytes(const Graph& g, const OnnxExportOptions& o, OnnxExportInfo* info) {
  using namespace onnx_detail;
  if (o.opset != 17) fail(kOp, "opset ", o.opset, " is not supported (ember exports opset 17)");
  if (!g.grads.empty())
    fail(kOp, "the graph stores ", g.grads.size(),
         " gradients (a training graph); only inference graphs are exported: trace the forward pass under "
         "NoGradGuard, without backward()");
  if (!g.mutations.empty())
    fail(kOp, "the graph updates ", g.mutations.size(),
         " tensors in place (an optimizer step); only inference graphs are exported");
  if (g.outputs.empty()) fail(kOp, "the graph has no outputs");
  if (o.input_names.size() > g.inputs.size())
    fail(kOp, o.input_names.size(), " input names given for a graph of ", g.inputs.size(), " inputs");
  if (o.output_names.size() > g.outputs.size())
    fail(kOp, o.output_names.size(), " output names given for a graph of ", g.outputs.size(), " outputs");

  onnx::ModelProto model;
  model.set_ir_version(kIrVersion);
  model.set_producer_name("ember");
  model.set_producer_version("0.1.0");
  if (!o.doc_string.empty()) model.set_doc_string(o.doc_string);
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(o.opset);
  for (const auto& [key, value] : o.metadata) {
    onnx::StringStringEntryProto* e = model.add_metadata_props();
    e->set_key(key);
    e->set_value(value);
  }
  onnx::GraphProto* gp = model.mutable_graph();
  gp->set_name(o.graph_name);
  OnnxBuilder b(gp);

  // Names: the caller's input and output names first (exactly as given), then
  // the captures' (parameter names), then "v<id>" for everything else.
  std::vector<std::string> names(g.values.size());
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    const ValueId v = g.inputs[i];
    const std::string want = name_or(o.input_names, i, "input");
    names[size_t(v)] = b.fresh(want);
    if (names[size_t(v)] != want) fail(kOp, "input name '", want, "' is given twice");
    fill_value_info(gp->add_input(), names[size_t(v)], g.spec(v).dtype, g.spec(v).shape);
  }
  std::vector<std::string> output_names(g.outputs.size());
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const ValueId v = g.outputs[i];
    const std::string want = name_or(o.output_names, i, "output");
    output_names[i] = b.fresh(want);
    if (output_names[i] != want) fail(kOp, "output name '", want, "' is given twice or is an input's");
    // A node's output returned once takes the output's name; anything else (an
    // input or a capture returned, a value returned twice) leaves through Identity.
    if (g.values[size_t(v)].kind == ValueKind::node_output && names[size_t(v)].empty()) names[size_t(v)] = want;
  }
  for (size_t k = 0; k < g.captures.size(); ++k) {
    const Capture& c = g.captures[k];
    const std::string want = c.name.empty() ? str_cat("c", k) : c.name;
    names[size_t(c.value)] = b.initializer(want, c.tensor);
  }

  const std::vector<std::vector<int32_t>> consumers = g.consumers();
  std::vector<bool> is_output(g.values.size(), false);
  for (ValueId v : g.outputs) is_output[size_t(v)] = true;
  std::vector<ValueId> internal;  // node outputs that get a value_info
  for (const Node& node : g.nodes) {
    OnnxNodeContext ctx{b, g, node, node.prim->attrs(), {}, {}, {}};
    for (ValueId v : node.inputs) {
      if (names[size_t(v)].empty()) fail(kOp, "value %", v, " is read before it is defined");
      ctx.in.push_back(names[size_t(v)]);
    }
    for (ValueId v : node.outputs) {
      const bool used = !consumers[size_t(v)].empty() || is_output[size_t(v)];
      if (names[size_t(v)].empty()) names[size_t(v)] = b.fresh(str_cat("v", v));
      if (used && !is_output[size_t(v)]) internal.push_back(v);
      ctx.out.push_back(names[size_t(v)]);
      ctx.used.push_back(used);
    }
    if (!emit_onnx_node(ctx)) {
      // fused_qkv_attention records its training primitive only while gradients are on.
      const bool training_only = std::string(node.prim->name()) == "qkv_attention";
      fail(kOp, "primitive '", node.prim->name(), "' has no ONNX mapping",
           training_only ? "; trace the forward with gradients off (NoGradGuard), which records "
                           "scaled_dot_product_attention instead"
                         : "");
    }
  }
  for (ValueId v : internal) fill_value_info(gp->add_value_info(), names[size_t(v)], g.spec(v).dtype, g.spec(v).shape);
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const ValueId v = g.outputs[i];
    if (names[size_t(v)] != output_names[i]) b.node("Identity", {names[size_t(v)]}, {output_names[i]});
    fill_value_info(gp->add_output(), output_names[i], g.spec(v).dtype, g.spec(v).shape);
  }

  const size_t size = model.ByteSizeLong();
  if (size > size_t(INT_MAX))
    fail(kOp, "the model is ", size, " bytes, over protobuf's 2 GiB limit (external weight files are not supported yet)");
  if (o.check) {
    // The checker (structure, names, attributes) and strict shape inference,
    // which also compares every inferred type and shape with the value_info
    // written above: a mapping that computes the wrong shape fails here, not in
    // the runtime that loads the file.
    try {
      onnx::checker::check_model(model);
      onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(),
                                         onnx::ShapeInferenceOptions(/*check_type=*/true, /*strict_mode=*/1));
    } catch (const std::exception& e) {
      fail(kOp, "the ONNX checker rejects the exported model: ", e.what());
    }
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) fail(kOp, "protobuf could not serialise the model");
  if (info) {
    info->nodes = gp->node_size();
    info->initializers = gp->initializer_size();
    info->bytes = int64_t(bytes.size());
  }
  return bytes;
}

OnnxExportInfo export_onnx(const Graph& g, const std::string& path, const OnnxExportOptions& options) {
  OnnxExportInfo info;
  const std::string bytes = onnx_model_bytes(g, options, &info);
  AtomicFileWriter out(path, kOp);
  out.write(bytes);
  out.commit();
  return info;
}

}  // namespace ember::graph
