// The weights GPTRunner reads, by name, each Linear weight in its own format
// (f32 | int8 | int4 | f16, see quant.h): float32 tensors for the embeddings, norms,
// biases, RoPE tables and float Linear weights; quantized matrices for the
// quantized Linear weights.
//
// Three ways to get them:
//   runner_weights(model)      shares a live GPT's tensors (no copy), so a model
//                              trained in place (PPO's actor) is seen as it changes;
//   quantize_weights(w, ...)   quantizes every block's Linear weights (and the
//                              lm_head) of float weights in memory (ember bench);
//   load_runner_weights(...)   reads a checkpoint's model.safetensors, float or
//                              quantized (quant_io.h).
// What quantizes: c_attn, attn.c_proj, mlp.c_fc and mlp.c_proj of every block and
// lm_head.weight. With tied embeddings the token lookup keeps the float table
// (transformer.wte.weight) and the head multiplies by a quantized copy of it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ember/graph/prepacked_linear.h"
#include "ember/infer/quant.h"
#include "ember/io/safetensors.h"
#include "ember/models/gpt.h"

namespace ember::infer {

struct RunnerWeights {
  models::GPTConfig config;
  WeightFormat format = WeightFormat::f32;  // of the quantized matrices (f32: none)
  int64_t group_size = 0;                   // int4 only
  bool head_quantized = false;
  TensorMap tensors;  // float32 CPU tensors by GPT parameter name, plus "rope.cos" and "rope.sin" with RoPE
  std::map<std::string, QuantizedMatrix> quantized;  // by weight name
  std::map<std::string, graph::PackedWeight> packed;  // float Linear weights packed for the GEMM, by name (see prepack)
  int64_t parameters = 0;                            // the float model's (unique) parameter count

  // The float32 data of `name`, or null when absent. Errors when the tensor is
  // not a contiguous float32 CPU tensor.
  const float* f32(const std::string& name) const;
  // The Linear weight `name` in its format. Errors when it is absent.
  LinearWeight linear(const std::string& name) const;
  // The name of the weight the logits are computed with: "lm_head.weight".
  static constexpr const char* kHead = "lm_head.weight";

  // Packs every float Linear weight (the blocks' and the head) once in the
  // layout of the GEMM kernel (cpu::frozen_weight_layout: oneDNN's blocked
  // layout on AVX-512, ember's panels on AVX2), so that prefill chunks neither
  // pack them on every product (about 15% of a 256-row chunk's time on the
  // hosts measured) nor read them row-major. Costs a second copy of those weights. Only for weights
  // that no longer change: the packed copy does not follow in-place updates
  // (runner_weights(model) shares a live model, which PPO trains). Returns how
  // many were packed (0 when there is no layout to pack in, e.g. EMBER_GEMM=sgemm).
  int64_t prepack();
};

// The Linear weights that quantize, block by block: transformer.h.{i}.attn.c_attn.weight, ...
std::vector<std::string> block_linear_names(const models::GPTConfig& cfg);
// Every persistent tensor of a float GPT with this config (its state_dict:
// lm_head.weight included, also when tied) and its shape.
std::map<std::string, std::vector<int64_t>> gpt_tensor_shapes(const models::GPTConfig& cfg);

std::shared_ptr<RunnerWeights> runner_weights(const models::GPT& model);
// Float weights -> quantized ones (blocks' Linear weights; the head too when
// quantize_head). The float tensors that stay are shared, not copied.
std::shared_ptr<RunnerWeights> quantize_weights(const RunnerWeights& w, WeightFormat format, int64_t group_size,
                                                bool quantize_head = true);
// A float GPT holding the dequantized weights (what the quantized kernels
// multiply by): for measuring a quantized model with the training forward
// (e.g. `ember eval`'s conversation loss). Materialises every matrix.
std::unique_ptr<models::GPT> dequantized_model(const RunnerWeights& w);

}  // namespace ember::infer
