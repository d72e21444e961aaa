// ONNX export (graph/onnx_export.h, models/gpt_onnx.h): the exported GPT parses
// back through the ONNX protobuf classes with the expected inputs, outputs,
// opset and initializers (every parameter under its name, with its bytes);
// ONNX's checker and strict shape inference accept the mappings of the other
// primitives; unsupported primitives and training graphs are refused by name;
// the file is written atomically. Numbers against onnxruntime are checked by
// the conformance test (tests/conformance/onnx_export.py).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

#include "ember/graph/onnx_export.h"
#include "ember/graph/onnx_proto.h"
#include "ember/graph/tracer.h"
#include "ember/models/gpt_onnx.h"
#include "graph/graph_test_util.h"
#include "models/gpt_test_configs.h"
#include "test_util.h"

using namespace ember;
using namespace ember::graph_test;
using models::GPT;
using models::GPTConfig;

namespace {

onnx::ModelProto parse(const std::string& bytes) {
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(bytes));
  return m;
}

std::vector<int64_t> dims_of(const onnx::ValueInfoProto& v) {
  std::vector<int64_t> d;
  for (const auto& dim : v.type().tensor_type().shape().dim()) d.push_back(dim.dim_value());
  return d;
}

std::map<std::string, int64_t> op_counts(const onnx::ModelProto& m) {
  std::map<std::string, int64_t> n;
  for (const auto& node : m.graph().node()) ++n[node.op_type()];
  return n;
}

std::string temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("ember_onnx_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

class OnnxExportGPT : public ::testing::TestWithParam<bool> {
 protected:
  GPTConfig config() const { return GetParam() ? models::test_configs::modern() : models::test_configs::gpt2_style(); }
};

// Graph of fn(inputs) exported with the checks on; the parsed model.
onnx::ModelProto export_fn(const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& fn,
                           const std::vector<Tensor>& examples) {
  graph::Graph g = graph::trace(fn, examples);
  return parse(graph::onnx_model_bytes(g));
}

}  // namespace

TEST_P(OnnxExportGPT, ParsesBackWithNamedInputsOutputsAndParameters) {
  const GPTConfig cfg = config();
  Generator gen(3);
  GPT model(cfg, &gen);
  const int64_t B = 2, T = 8;
  graph::OnnxExportInfo info;
  const std::string bytes =
      graph::onnx_model_bytes(models::trace_gpt_forward(model, B, T), models::gpt_onnx_options(cfg, B, T), &info);
  EXPECT_TRUE(model.is_training());  // the trace restored the mode
  onnx::ModelProto m = parse(bytes);
  EXPECT_EQ(info.bytes, int64_t(bytes.size()));
  EXPECT_EQ(info.nodes, m.graph().node_size());

  EXPECT_EQ(m.ir_version(), 8);
  ASSERT_EQ(m.opset_import_size(), 1);
  EXPECT_EQ(m.opset_import(0).domain(), "");
  EXPECT_EQ(m.opset_import(0).version(), 17);
  EXPECT_EQ(m.producer_name(), "ember");
  std::map<std::string, std::string> meta;
  for (const auto& e : m.metadata_props()) meta[e.key()] = e.value();
  EXPECT_EQ(meta["ember.batch"], "2");
  EXPECT_EQ(meta["ember.seq_len"], "8");
  EXPECT_EQ(GPTConfig::from_json(nlohmann::json::parse(meta["ember.config"])), cfg);

  ASSERT_EQ(m.graph().input_size(), 1);
  EXPECT_EQ(m.graph().input(0).name(), "input_ids");
  EXPECT_EQ(m.graph().input(0).type().tensor_type().elem_type(), onnx::TensorProto::INT64);
  EXPECT_EQ(dims_of(m.graph().input(0)), (std::vector<int64_t>{B, T}));
  ASSERT_EQ(m.graph().output_size(), 1);
  EXPECT_EQ(m.graph().output(0).name(), "logits");
  EXPECT_EQ(m.graph().output(0).type().tensor_type().elem_type(), onnx::TensorProto::FLOAT);
  EXPECT_EQ(dims_of(m.graph().output(0)), (std::vector<int64_t>{B, T, cfg.vocab_size}));

  // Every parameter is an initializer under its name, with its shape and bytes.
  std::map<std::string, const onnx::TensorProto*> inits;
  for (const auto& t : m.graph().initializer()) inits[t.name()] = &t;
  auto params = model.named_parameters();
  for (const auto& [name, p] : params) {
    if (cfg.tied_embeddings && name == "lm_head.weight") continue;  // the same tensor as transformer.wte.weight
    ASSERT_TRUE(inits.count(name)) << name;
    const onnx::TensorProto& t = *inits[name];
    EXPECT_EQ(t.data_type(), onnx::TensorProto::FLOAT) << name;
    EXPECT_EQ(std::vector<int64_t>(t.dims().begin(), t.dims().end()), std::vector<int64_t>(p.shape().begin(), p.shape().end()))
        << name;
    std::vector<float> want = p.to_vector<float>();
    ASSERT_EQ(t.raw_data().size(), want.size() * sizeof(float)) << name;
    EXPECT_EQ(std::memcmp(t.raw_data().data(), want.data(), t.raw_data().size()), 0) << name;
  }
  EXPECT_EQ(inits.count("lm_head.weight"), size_t(!cfg.tied_embeddings));

  std::map<std::string, int64_t> ops = op_counts(m);
  EXPECT_EQ(ops["Softmax"], cfg.n_layer);  // one attention per block
  EXPECT_EQ(ops["Gather"], cfg.position == models::PositionKind::learned ? 2 : 1);
  EXPECT_EQ(ops["LayerNormalization"], cfg.norm == models::NormKind::layernorm ? 2 * cfg.n_layer + 1 : 0);
  EXPECT_EQ(ops["Tanh"], cfg.mlp == models::MlpKind::gelu ? cfg.n_layer : 0);        // gelu_tanh
  EXPECT_EQ(ops["Sigmoid"], cfg.mlp == models::MlpKind::swiglu ? cfg.n_layer : 0);   // silu
  EXPECT_TRUE(inits.count("causal_mask"));
  EXPECT_EQ(dims_of(m.graph().output(0)).size(), 3u);
}

TEST_P(OnnxExportGPT, WritesTheFileAtomically) {
  Generator gen(4);
  GPT model(config(), &gen);
  const std::string dir = temp_dir(GetParam() ? "modern" : "gpt2");
  const std::string path = dir + "/model.onnx";
  graph::OnnxExportInfo info = models::export_gpt_onnx(model, path, 1, 0);  // seq_len 0: block_size
  ASSERT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ(int64_t(std::filesystem::file_size(path)), info.bytes);
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  onnx::ModelProto m = parse(ss.str());
  EXPECT_EQ(dims_of(m.graph().input(0)), (std::vector<int64_t>{1, config().block_size}));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()), 1);
  // A failed export leaves an existing file untouched.
  EXPECT_ERROR(models::export_gpt_onnx(model, path, 1, config().block_size + 1), "[onnx export] seq_len 17 exceeds");
  EXPECT_EQ(int64_t(std::filesystem::file_size(path)), info.bytes);
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Variants, OnnxExportGPT, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "modern" : "gpt2_style"; });

TEST(OnnxExport, UnsupportedPrimitiveIsNamed) {
  Tensor logits = random({4, 10}, 1);
  Tensor targets = tensor_i64({1, 2, 3, 4}, {4});
  graph::Graph g = graph::trace(
      [](const std::vector<Tensor>& in) { return std::vector<Tensor>{cross_entropy(in[0], in[1])}; }, {logits, targets});
  EXPECT_ERROR(graph::onnx_model_bytes(g), "[onnx export] primitive 'cross_entropy' has no ONNX mapping");
}

TEST(OnnxExport, TrainingAttentionSuggestsTracingWithoutGradients) {
  // With gradients on, fused_qkv_attention records its training primitive.
  Tensor w = random({8, 24}, 4).requires_grad_();
  graph::Graph g = graph::trace(
      [&](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{fused_qkv_attention(matmul(in[0], w), 2, 2)};
      },
      {random({1, 3, 8}, 5)});
  EXPECT_ERROR(graph::onnx_model_bytes(g),
               "[onnx export] primitive 'qkv_attention' has no ONNX mapping; trace the forward with gradients off");
}

TEST(OnnxExport, TrainingGraphIsRefused) {
  Tensor w = random({3, 3}, 2).requires_grad_();
  graph::Graph g = graph::trace(
      [&](const std::vector<Tensor>& in) {
        Tensor loss = sum(matmul(in[0], w), {0, 1});
        loss.backward();
        return std::vector<Tensor>{loss};
      },
      {random({2, 3}, 3)});
  EXPECT_ERROR(graph::onnx_model_bytes(g), "[onnx export] the graph stores 1 gradients (a training graph)");
}

TEST(OnnxExport, BadOptionsAreErrors) {
  graph::Graph g = graph::trace([](const std::vector<Tensor>& in) { return std::vector<Tensor>{exp(in[0])}; },
                                {random({2}, 4)});
  graph::OnnxExportOptions o;
  o.opset = 13;
  EXPECT_ERROR(graph::onnx_model_bytes(g, o), "[onnx export] opset 13 is not supported");
  o = {};
  o.input_names = {"x"};
  o.output_names = {"x"};
  EXPECT_ERROR(graph::onnx_model_bytes(g, o), "[onnx export] output name 'x' is given twice");
}

// The other mappings, through ONNX's checker and strict shape inference (which
// compares each inferred shape and type with the graph's): elementwise ops and
// their formulas, reductions, movements, indexing, creation, norms without
// weights, attention without a mask and with grouped heads, and outputs that are
// inputs or returned twice.
TEST(OnnxExport, OtherPrimitivesPassStrictShapeInference) {
  Tensor x = random({2, 3, 4}, 5), y = random({2, 3, 4}, 6);
  Tensor idx = tensor_i64({2, 0}, {2});
  onnx::ModelProto m = export_fn(
      [&](const std::vector<Tensor>& in) {
        const Tensor &a = in[0], &b = in[1];
        std::vector<Tensor> out;
        out.push_back(gelu(a) + gelu(b, true) + silu(a) * rsqrt(abs(b) + 1.0) - square(sigmoid(a)) / exp(b));
        out.push_back(where(gt(a, b), maximum(a, b), minimum(a, b)) + clamp(tanh(a), -0.5, 0.5));
        out.push_back(cast(logical_not(ne(a, b)), DType::f32) + cast(le(a, b), DType::f32));
        out.push_back(sum(a, {1}, true) + max(a, {2}, true) + mean(b, {-1}, true));
        out.push_back(cast(argmax(a, 1), DType::f32));
        out.push_back(softmax(a, 1) + log_softmax(b, -1));
        out.push_back(reshape(permute(a, {2, 0, 1}), {4, 6}));
        out.push_back(slice(a, 2, 1, 4, 2));
        out.push_back(concat({a, b}, 0));
        out.push_back(broadcast_to(sum(a, {0}, true), {2, 3, 4}));
        out.push_back(index_select(a, 2, idx));
        out.push_back(layer_norm(a, Tensor(), Tensor(), 1e-5));
        out.push_back(rms_norm(b, Tensor(), 1e-6));
        out.push_back(tril(reshape(a, {6, 4}), 1));
        out.push_back(cumsum(a, 1));
        out.push_back(a);        // an input returned
        out.push_back(out[0]);   // a value returned twice
        out.push_back(ones({2, 2}) * 3.0);
        return out;
      },
      {x, y});
  EXPECT_EQ(m.graph().output_size(), 18);
  EXPECT_GE(op_counts(m)["Identity"], 2);

  Tensor q = random({1, 4, 3, 8}, 7), kv = random({1, 2, 5, 8}, 8);
  onnx::ModelProto att = export_fn(
      [](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{scaled_dot_product_attention(in[0], in[1], in[2], false)};
      },
      {q, kv, kv});
  EXPECT_EQ(op_counts(att)["Softmax"], 1);
  EXPECT_EQ(op_counts(att)["Add"], 0);  // not causal: no mask
}
