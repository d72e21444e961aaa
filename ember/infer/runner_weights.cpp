// The runner's weights: from a model, quantized in memory, dequantized back
// (see runner_weights.h; loading and saving files is quant_io.cpp).
#include "ember/infer/runner_weights.h"

#include "ember/core/error.h"

namespace ember::infer {

const float* RunnerWeights::f32(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end() || !it->second.defined()) return nullptr;
  const Tensor& t = it->second;
  if (t.dtype() != DType::f32 || !t.device().is_cpu() || !t.is_contiguous())
    fail("GPTRunner", name, " must be a contiguous float32 CPU tensor, got ", dtype_name(t.dtype()),
         t.is_contiguous() ? "" : " (non-contiguous)", t.device().is_cpu() ? "" : " (not on the CPU)");
  return t.data<float>();
}

LinearWeight RunnerWeights::linear(const std::string& name) const {
  if (auto q = quantized.find(name); q != quantized.end()) return q->second.view();
  const float* p = f32(name);
  if (!p) fail("GPTRunner", "no weight ", name);
  const Tensor& t = tensors.at(name);
  if (t.ndim() != 2) fail("GPTRunner", name, " must be a matrix, got ", t.ndim(), " dimensions");
  LinearWeight w{WeightFormat::f32, t.shape(0), t.shape(1), 0, p, nullptr};
  if (auto pk = packed.find(name); pk != packed.end()) {
    w.packed = pk->second.data.data<float>();
    w.packed_layout = pk->second.layout;
  }
  return w;
}

int64_t RunnerWeights::prepack() {
  std::vector<std::string> names = block_linear_names(config);
  names.push_back(kHead);
  int64_t count = 0;
  for (const std::string& name : names) {
    if (quantized.count(name) || packed.count(name)) continue;
    auto it = tensors.find(name);
    if (it == tensors.end()) continue;
    graph::PackedWeight p = graph::prepack_linear_weight(it->second);
    if (!p.data.defined()) continue;
    packed[name] = p;
    ++count;
  }
  return count;
}

std::vector<std::string> block_linear_names(const models::GPTConfig& cfg) {
  std::vector<std::string> out;
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string p = "transformer.h." + std::to_string(l) + ".";
    for (const char* s : {"attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"})
      out.push_back(p + s);
  }
  return out;
}

std::map<std::string, std::vector<int64_t>> gpt_tensor_shapes(const models::GPTConfig& cfg) {
  const int64_t C = cfg.n_embd, V = cfg.vocab_size, D = cfg.head_dim(), F = cfg.mlp_hidden();
  const int64_t qkv = (cfg.n_head + 2 * cfg.n_kv_head) * D;
  const int64_t fc_out = cfg.mlp == models::MlpKind::swiglu ? 2 * F : F;
  const bool layernorm = cfg.norm == models::NormKind::layernorm;
  std::map<std::string, std::vector<int64_t>> s;
  auto norm = [&](const std::string& n) {
    s[n + ".weight"] = {C};
    if (layernorm && cfg.bias) s[n + ".bias"] = {C};
  };
  auto linear = [&](const std::string& n, int64_t out, int64_t in) {
    s[n + ".weight"] = {out, in};
    if (cfg.bias) s[n + ".bias"] = {out};
  };
  s["transformer.wte.weight"] = {V, C};
  if (cfg.position == models::PositionKind::learned) s["transformer.wpe.weight"] = {cfg.block_size, C};
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string p = "transformer.h." + std::to_string(l) + ".";
    norm(p + "ln_1");
    linear(p + "attn.c_attn", qkv, C);
    linear(p + "attn.c_proj", C, C);
    norm(p + "ln_2");
    linear(p + "mlp.c_fc", fc_out, C);
    linear(p + "mlp.c_proj", C, F);
  }
  norm("transformer.ln_f");
  s["lm_head.weight"] = {V, C};
  return s;
}

std::shared_ptr<RunnerWeights> runner_weights(const models::GPT& model) {
  auto w = std::make_shared<RunnerWeights>();
  w->config = model.config();
  w->tensors = model.state_dict();
  const auto& tr = *model.transformer;
  if (tr.rope) {
    w->tensors["rope.cos"] = tr.rope->cos;
    w->tensors["rope.sin"] = tr.rope->sin;
  }
  w->parameters = model.num_parameters();
  return w;
}

std::shared_ptr<RunnerWeights> quantize_weights(const RunnerWeights& w, WeightFormat format, int64_t group_size,
                                                bool quantize_head) {
  if (format == WeightFormat::f32) fail("quantize", "float32 is not a quantized format");
  if (w.format != WeightFormat::f32) fail("quantize", "the weights are already ", weight_format_name(w.format));
  if (format == WeightFormat::int4) check_group_size(group_size, "quantize");
  auto q = std::make_shared<RunnerWeights>(w);
  q->format = format;
  q->group_size = format == WeightFormat::int4 ? group_size : 0;
  q->head_quantized = quantize_head;
  std::vector<std::string> names = block_linear_names(w.config);
  if (quantize_head) names.push_back(RunnerWeights::kHead);
  for (const std::string& name : names) {
    const LinearWeight f = w.linear(name);
    q->quantized[name] = quantize_matrix(static_cast<const float*>(f.data), f.rows, f.cols, format, group_size, name);
    // With tied embeddings the lookup still needs the float table under its own name.
    q->tensors.erase(name);
    q->packed.erase(name);
  }
  return q;
}

std::unique_ptr<models::GPT> dequantized_model(const RunnerWeights& w) {
  models::GPTConfig cfg = w.config;
  // A tied model whose head is quantized has two different matrices (the float
  // lookup table and the dequantized head), which only an untied GPT can hold.
  if (cfg.tied_embeddings && w.quantized.count(RunnerWeights::kHead)) cfg.tied_embeddings = false;
  auto model = std::make_unique<models::GPT>(cfg);
  TensorMap state;
  for (const auto& [name, t] : w.tensors)
    if (name.rfind("rope.", 0) != 0) state[name] = t;
  for (const auto& [name, m] : w.quantized) {
    Tensor t = Tensor::empty({m.rows, m.cols});
    dequantize_rows(m.view(), 0, m.rows, t.data<float>());
    state[name] = t;
  }
  // A tied float head: state_dict names it, and it is the lookup table.
  if (cfg.tied_embeddings && !state.count(RunnerWeights::kHead)) state[RunnerWeights::kHead] = state.at("transformer.wte.weight");
  model->load_state_dict(state);
  model->eval();
  return model;
}

}  // namespace ember::infer
