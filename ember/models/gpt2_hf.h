// Hugging Face GPT-2 weights in and out: a folder with `model.safetensors`
// (and `config.json`) as `GPT2LMHeadModel.save_pretrained(dir,
// safe_serialization=True)` writes it, or a bare `GPT2Model` file.
//
// Differences handled here:
//  * names: GPT2LMHeadModel saves "transformer.h.0...", GPT2Model "h.0..."; both
//    are accepted. The attention-mask buffers "attn.bias" / "attn.masked_bias"
//    of older files are ignored. A tied lm_head.weight is not stored (HF ties it
//    on load), and one present in a file of a tied model is ignored, as HF does.
//  * layout: GPT-2's Conv1D stores [in, out]; ember's Linear [out, in]. The four
//    Conv1D weights per block (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj)
//    are transposed on the way in and out.
//  * config: n_layer, n_head, n_embd, vocab_size, n_positions (block_size),
//    layer_norm_epsilon (norm_eps), tie_word_embeddings. Variants ember's GPT does
//    not implement (another activation, n_inner != 4 n_embd, attention scaled by
//    layer index) are errors, not silent mismatches.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "ember/io/safetensors.h"
#include "ember/models/gpt.h"

namespace ember::models {

// config.json -> GPTConfig (GPT-2 style: layernorm, learned, gelu, bias, n_kv_head = n_head).
// Dropout is 0 (as nanoGPT's from_pretrained); `where` names the file in errors.
GPTConfig gpt2_config_from_hf(const nlohmann::json& j, const std::string& where);
// GPTConfig -> config.json that GPT2LMHeadModel.from_pretrained accepts. Errors
// name the field when the model is not GPT-2 shaped (rmsnorm, rope, swiglu, no
// bias, grouped-query attention).
nlohmann::json gpt2_config_to_hf(const GPTConfig& cfg);

// Builds a GPT from `path`: a folder holding model.safetensors (and config.json;
// without it the sizes come from the tensor shapes and n_head = n_embd / 64, true
// of every GPT-2 size), or a .safetensors file. The model is in eval mode.
std::shared_ptr<GPT> load_gpt2_hf(const std::string& path, Generator* gen = nullptr);
// Copies the weights of a Hugging Face GPT-2 safetensors file into `model`,
// checking every tensor first (missing, unexpected, mis-shaped: errors name the
// tensor and the file); nothing is written unless all of them fit.
void load_gpt2_hf_weights(GPT& model, const std::string& safetensors_path);

// Writes dir/model.safetensors (float tensors in the model's dtype, HF names
// and Conv1D layout, metadata format=pt) and dir/config.json; creates dir.
void save_gpt2_hf(const GPT& model, const std::string& dir);

// The model's named tensors in Hugging Face's names and layout: `tensors` maps
// ember parameter names to tensors of the parameters' shapes (the parameters
// themselves, or their gradients). The tied lm_head.weight is left out.
TensorMap to_hf_layout(const GPT& model, const TensorMap& tensors);
// True for the four Conv1D weight names of a block (stored transposed by HF).
bool is_gpt2_conv1d_weight(const std::string& name);

}  // namespace ember::models
