// A tiny GPT whose reply is known in advance, for the serving tests.
//
// The tokenizer is byte-level with no merges (each byte is its own token) plus
// <|endoftext|>, <|im_start|>, <|im_end|>. The model's weights are set, not
// trained, so that the next token depends only on the current one: every
// attention and MLP block adds zero to the residual stream, token i of the
// reply has a one-hot embedding e_i, and lm_head maps e_i to reply token i+1.
// After the chat template's assistant header (which ends with "\n") the model
// writes the reply; after its last byte it writes <|im_end|>, or, with `loop`,
// starts the reply again (so a stream runs until max_tokens or the context).
// The reply's bytes must be distinct and not "\n" (each byte has one successor).
// Logits of the right token exceed the others by ~25, so even temperature 1
// samples the script (probability of anything else < 1e-8).
#pragma once

#include <map>
#include <set>
#include <string>

#include "ember/core/error.h"
#include "ember/core/tensor.h"
#include "ember/models/gpt.h"
#include "ember/tokenizer/pretokenizer.h"
#include "ember/tokenizer/tokenizer.h"
#include "ember/train/checkpoint.h"

namespace ember::serve::testing {

inline Tokenizer byte_tokenizer() {
  std::vector<std::pair<std::string, TokenId>> ranks;
  for (int b = 0; b < 256; ++b) ranks.emplace_back(std::string(1, char(b)), TokenId(b));
  return Tokenizer(Vocab(ranks), resolve_split_pattern("cl100k"),
                   {{"<|endoftext|>", 256}, {"<|im_start|>", 257}, {"<|im_end|>", 258}}, "bytes");
}

inline models::GPTConfig scripted_config(int64_t block_size) {
  models::GPTConfig cfg = models::GPTConfig::preset("tiny");
  cfg.n_layer = 1, cfg.n_head = 2, cfg.n_kv_head = 2, cfg.n_embd = 32, cfg.block_size = block_size;
  cfg.vocab_size = 259;
  cfg.tied_embeddings = false;
  cfg.dropout = 0;
  return cfg;
}

// Sets `model`'s weights (see the top of the file).
inline void script_model(models::GPT& model, const std::string& reply, bool loop) {
  const int64_t C = model.config().n_embd, V = model.config().vocab_size;
  std::set<char> seen;
  for (char c : reply)
    if (c == '\n' || !seen.insert(c).second || int64_t(seen.size()) > C)
      fail("script_model", "reply bytes must be distinct, not newlines, and at most n_embd of them: ", reply);
  std::vector<int64_t> chain = {'\n'};
  for (char c : reply) chain.push_back(int64_t(uint8_t(c)));
  const int64_t end = loop ? chain[1] : 258;  // after the last byte: the first again, or <|im_end|>
  std::map<std::string, Tensor> state;
  for (const auto& [name, p] : model.named_parameters()) {
    std::vector<double> v(size_t(p.numel()), 0.0);
    auto ends_with = [&](const std::string& s) { return name.size() >= s.size() && name.rfind(s) == name.size() - s.size(); };
    if (ends_with("ln_1.weight") || ends_with("ln_2.weight") || ends_with("ln_f.weight")) v.assign(v.size(), 1.0);
    if (name == "transformer.wte.weight")  // [V, C]: chain token k -> e_k
      for (size_t k = 0; k < chain.size(); ++k) v[size_t(chain[k] * C) + k] = 1.0;
    if (name == "lm_head.weight")  // [V, C]: e_k -> the token after chain[k]
      for (size_t k = 0; k < chain.size(); ++k) {
        const int64_t next = k + 1 < chain.size() ? chain[k + 1] : end;
        v[size_t(next * C) + k] = 5.0;
      }
    state[name] = tensor(v, p.shape());
  }
  (void)V;
  model.load_state_dict(state);
}

// Writes a checkpoint (kind "sft") under run_dir; returns its folder.
inline std::string write_scripted_checkpoint(const std::string& run_dir, const std::string& reply, bool loop,
                                             int64_t block_size) {
  const Tokenizer tok = byte_tokenizer();
  tok.save(run_dir + "/tokenizer");
  const models::GPTConfig cfg = scripted_config(block_size);
  models::GPT model(cfg);
  script_model(model, reply, loop);
  train::CheckpointSave what{&model, nullptr, {{"kind", "sft"}, {"step", 0}, {"config", cfg.to_json()}},
                             {{run_dir + "/tokenizer", "tokenizer"}}};
  return train::save_checkpoint(run_dir, 0, what);
}

}  // namespace ember::serve::testing
