// ONNX export of a GPT's forward pass (see gpt_onnx.h).
#include "ember/models/gpt_onnx.h"
#include "ember/nn/parameter_namer.h"

#include <nlohmann/json.hpp>

#include "ember/autograd/grad_mode.h"
#include "ember/core/error.h"
#include "ember/graph/passes.h"
#include "ember/graph/tracer.h"
#include "ember/ops/creation.h"

namespace ember::models {
namespace {

constexpr const char* kOp = "onnx export";

int64_t resolve_seq_len(const GPTConfig& cfg, int64_t batch, int64_t seq_len) {
  if (batch < 1) fail(kOp, "batch must be >= 1, got ", batch);
  const int64_t T = seq_len > 0 ? seq_len : cfg.block_size;
  if (seq_len < 0) fail(kOp, "seq_len must be >= 1 (0: block_size), got ", seq_len);
  if (T > cfg.block_size) fail(kOp, "seq_len ", T, " exceeds the model's block_size ", cfg.block_size);
  return T;
}

}  // namespace

graph::Graph trace_gpt_forward(GPT& model, int64_t batch, int64_t seq_len) {
  const int64_t T = resolve_seq_len(model.config(), batch, seq_len);
  const graph::CaptureNamer namer = nn::parameter_namer(model);
  const bool was_training = model.is_training();
  model.eval();
  graph::Graph g;
  try {
    NoGradGuard no_grad;
    g = graph::trace([&](const std::vector<Tensor>& in) { return std::vector<Tensor>{model.forward(in[0])}; },
                     {zeros({batch, T}, DType::i64)}, namer);
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  graph::optimize(g, {}, /*keep_differentiable=*/true);  // no fused_elementwise nodes
  return g;
}

graph::OnnxExportOptions gpt_onnx_options(const GPTConfig& cfg, int64_t batch, int64_t seq_len) {
  const int64_t T = resolve_seq_len(cfg, batch, seq_len);
  graph::OnnxExportOptions o;
  o.input_names = {"input_ids"};
  o.output_names = {"logits"};
  o.graph_name = "ember_gpt";
  o.doc_string = str_cat("ember GPT forward pass: input_ids int64 [", batch, ", ", T, "] -> logits float32 [", batch,
                         ", ", T, ", ", cfg.vocab_size, "]. Static shapes; causal attention, so shorter sequences may be",
                         " right-padded.");
  o.metadata = {{"ember.config", cfg.to_json().dump()},
                {"ember.batch", std::to_string(batch)},
                {"ember.seq_len", std::to_string(T)}};
  return o;
}

graph::OnnxExportInfo export_gpt_onnx(GPT& model, const std::string& path, int64_t batch, int64_t seq_len) {
  const graph::OnnxExportOptions options = gpt_onnx_options(model.config(), batch, seq_len);
  return graph::export_onnx(trace_gpt_forward(model, batch, seq_len), path, options);
}

}  // namespace ember::models
