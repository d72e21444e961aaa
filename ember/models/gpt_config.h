// GPTConfig: the shape and variant of a GPT (layers, heads, widths, norm,
// position encoding, MLP), named presets (`tiny`, `small`, `gpt2`), validation
// and the JSON form stored in checkpoints (trainer.json, config.json beside
// ember's weights).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace ember::models {

enum class NormKind { layernorm, rmsnorm };
enum class PositionKind { learned, rope };
// gelu is GPT-2's tanh form ("gelu_new" in Hugging Face), not the erf form.
enum class MlpKind { gelu, swiglu };

std::string norm_name(NormKind k);
std::string position_name(PositionKind k);
std::string mlp_name(MlpKind k);
NormKind norm_from_name(const std::string& name);          // "layernorm" | "rmsnorm"
PositionKind position_from_name(const std::string& name);  // "learned" | "rope"
MlpKind mlp_from_name(const std::string& name);            // "gelu" | "swiglu"

struct GPTConfig {
  int64_t n_layer = 4;
  int64_t n_head = 4;
  int64_t n_kv_head = 4;  // grouped-query attention: divides n_head (== n_head: plain multi-head)
  int64_t n_embd = 256;
  int64_t vocab_size = 8192;
  int64_t block_size = 256;  // the longest sequence (learned position table / RoPE table length)
  NormKind norm = NormKind::layernorm;
  PositionKind position = PositionKind::learned;
  MlpKind mlp = MlpKind::gelu;
  bool bias = true;             // biases in every Linear and in LayerNorm
  bool tied_embeddings = true;  // lm_head.weight is transformer.wte.weight
  double dropout = 0.0;         // embedding and residual dropout (training mode only)
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
  int64_t batch_size = 8;  // the preset's default batch for training; not part of the model

  // "tiny", "small": GPT-2 style models small enough to train on a CPU; "gpt2":
  // the 124M Hugging Face GPT-2. Unknown names list the known ones.
  static GPTConfig preset(const std::string& name);
  static std::vector<std::string> preset_names();

  // Throws ember::Error("[GPTConfig] <field> ...") naming the first bad field.
  void validate() const;

  int64_t head_dim() const { return n_embd / n_head; }
  // MLP hidden width: 4 * n_embd for gelu; for swiglu 8/3 * n_embd rounded up to
  // a multiple of 64 (Llama's rule, which keeps the parameter count near gelu's).
  int64_t mlp_hidden() const;

  // Every field, with enums as their names. from_json rejects unknown,
  // missing and mistyped fields, then validates.
  nlohmann::json to_json() const;
  static GPTConfig from_json(const nlohmann::json& j);

  bool operator==(const GPTConfig&) const = default;
};

}  // namespace ember::models
