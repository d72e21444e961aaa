// A chat model ready to serve: a GPT checkpoint (sft, dpo, ppo or pretrain),
// float32 or quantized by `ember quantize`, with its tokenizer and chat
// template, loaded once and shared read-only by `ember serve` and `ember chat`.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ember/chat/template.h"
#include "ember/infer/runner_weights.h"
#include "ember/models/gpt.h"
#include "ember/train/model_checkpoint.h"

namespace ember::serve {

struct ServedModel {
  train::ModelCheckpoint checkpoint;
  Tokenizer tokenizer;
  std::unique_ptr<models::GPT> gpt;  // the float32 model; null for a quantized checkpoint
  // What the engine runs (infer::Engine(weights, ...)): gpt's tensors, or the quantized weights.
  std::shared_ptr<const infer::RunnerWeights> weights;
  std::unique_ptr<chat::ChatTemplate> chat_template;  // refers to `tokenizer`: the struct never moves
  int64_t end_of_text = -1;                            // <|endoftext|>, -1 when the tokenizer lacks it

  // Errors name `op` and the flag ("serve: --checkpoint ...").
  static std::unique_ptr<ServedModel> load(const std::string& path, const std::string& op);

  // Chat generation stops at the end of the assistant's turn (or of the text).
  std::vector<int64_t> chat_stop_tokens() const;
  // A plain-text prompt for /v1/completions: <|endoftext|> (a document start,
  // as in pretraining) followed by the text.
  std::vector<int64_t> completion_prompt(const std::string& text) const;
  int64_t context() const { return checkpoint.config.block_size; }
  // Ids the tokenizer can decode, for infer::EngineOptions::sample_vocab: a
  // model's vocab_size may be padded past its tokenizer's.
  int64_t sample_vocab() const {
    return std::min<int64_t>(checkpoint.config.vocab_size, int64_t(tokenizer.vocab_size()));
  }
};

}  // namespace ember::serve
