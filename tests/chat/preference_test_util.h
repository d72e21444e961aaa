// Shared by the reward-model and DPO tests: the tiny curriculum on disk and a
// tiny randomly initialised GPT saved as a "pretrain" checkpoint with the
// shared test tokenizer.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "chat/chat_test_util.h"
#include "ember/chat/curriculum.h"
#include "ember/models/gpt.h"
#include "ember/train/checkpoint.h"

// The statement throws ember::Error whose message contains `part` (the
// "[op] " prefix and the path before a file name vary; the cause does not).
#define EXPECT_ERROR_HAS(stmt, part)                                                          \
  do {                                                                                        \
    try {                                                                                     \
      (void)(stmt);                                                                           \
      ADD_FAILURE() << #stmt << " did not throw";                                             \
    } catch (const ::ember::Error& e) {                                                       \
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << "message: " << e.what(); \
    }                                                                                         \
  } while (0)

namespace ember::chat::testing {

struct TinySetup {
  std::string root, data, init;
  models::GPTConfig cfg;
};

// A fresh folder `root` with data/ (the tiny curriculum, seed 7) and pre/ (the
// checkpoint); `kind` goes into trainer.json when not empty.
inline TinySetup make_tiny_setup(const std::string& root, const std::string& kind = "") {
  namespace fs = std::filesystem;
  fs::remove_all(root);
  TinySetup s;
  s.root = root;
  s.data = root + "/data";
  write_curriculum(s.data, curriculum_preset("tiny"), 7);
  const Tokenizer& tok = curriculum_tokenizer();
  tok.save(root + "/tokenizer");
  s.cfg = models::GPTConfig::preset("tiny");
  s.cfg.n_layer = 2, s.cfg.n_head = 2, s.cfg.n_kv_head = 2, s.cfg.n_embd = 64, s.cfg.block_size = 192;
  s.cfg.vocab_size = int64_t(tok.vocab_size());
  Generator gen(1);
  models::GPT model(s.cfg, &gen);
  nlohmann::json tj = {{"step", 0}, {"config", s.cfg.to_json()}};
  if (!kind.empty()) tj["kind"] = kind;
  train::CheckpointSave init{&model, nullptr, tj, {{root + "/tokenizer", "tokenizer"}}};
  s.init = train::save_checkpoint(root + "/pre", 0, init);
  return s;
}

}  // namespace ember::chat::testing
