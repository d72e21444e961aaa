// Opening a model checkpoint for a later stage of the recipe (SFT, reward
// model, PPO, DPO, eval, serving): resolve the folder, read trainer.json, check
// the checkpoint's kind, and find its model config and tokenizer, with one
// clear error for each way a folder can be wrong.
//
// Kinds written by the stages (trainer.json "kind"):
//   "pretrain", "sft", "dpo", "ppo"   a GPT (language model) in model.safetensors
//   "reward"                          a models::ValueModel (trunk + score head)
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ember/models/gpt_config.h"
#include "ember/tokenizer/tokenizer.h"

namespace ember::train {

struct ModelCheckpoint {
  std::string dir;              // the resolved checkpoint folder (holds trainer.json)
  std::string kind;             // trainer.json "kind" ("pretrain" when absent)
  nlohmann::json trainer;       // the whole trainer.json
  models::GPTConfig config;     // trainer.json "config"
  std::string model_path;       // dir/model.safetensors
  std::string tokenizer_dir;    // dir/tokenizer
  std::string tokenizer_fingerprint;  // data::tokenizer_fingerprint of that tokenizer
  // trainer.json "quantization"."scheme" of a checkpoint from `ember quantize`
  // ("int8", "int4"); empty for float32 weights.
  std::string quantization;
};

// `path` is a checkpoint folder or a run folder with `latest`. `kinds` lists
// the kinds the caller accepts (empty: any); `op` names the caller in errors,
// e.g. "ppo: runs/rm/ckpt-00000200 is a \"pretrain\" checkpoint; --reward needs
// a reward checkpoint". Also checks that the tokenizer exists and fits the
// model's vocabulary. A quantized checkpoint (`ember quantize`) is refused
// unless allow_quantized: it holds inference-only weights that training and
// the float model loader cannot use.
ModelCheckpoint open_model_checkpoint(const std::string& path, const std::vector<std::string>& kinds,
                                      const std::string& op, const std::string& what = "the checkpoint",
                                      bool allow_quantized = false);

// The checkpoint's tokenizer (loaded from tokenizer_dir).
Tokenizer load_checkpoint_tokenizer(const ModelCheckpoint& ckpt);

// Errors unless two checkpoints share one tokenizer (same fingerprint), naming
// both folders: e.g. a reward model trained with another tokenizer than the policy.
void require_same_tokenizer(const ModelCheckpoint& a, const ModelCheckpoint& b, const std::string& op);

}  // namespace ember::train
