// Shared by the reward-model and DPO tests: the tiny curriculum on disk, a
// tiny randomly initialised GPT saved as a "pretrain" checkpoint with the
// shared test tokenizer, and the stop-and-resume check.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>

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

// The first `n` records of a JSON Lines file, written to `to` (small epochs
// for the resume tests).
inline std::string head_jsonl(const std::string& from, const std::string& to, int n) {
  std::ifstream in(from);
  std::ofstream out(to);
  std::string line;
  for (int i = 0; i < n && std::getline(in, line); ++i) out << line << "\n";
  return to;
}

// The resume tests' run: 10 training lists in batches of 4, so epochs end
// inside batches, 6 held-out lists, 8 steps, checkpoints every 3 (all kept).
// O is RewardOptions or DpoOptions.
template <typename O>
O small_resume_run(const TinySetup& s) {
  O o;
  o.init = s.root + "/pre";
  o.data = head_jsonl(s.data + "/preferences_train.jsonl", s.root + "/train10.jsonl", 10);
  o.val_data = head_jsonl(s.data + "/preferences_val.jsonl", s.root + "/val6.jsonl", 6);
  o.steps = 8;
  o.batch_size = 4;
  o.checkpoint_every = 3;
  o.keep_checkpoints = 0;  // the stop's checkpoint is read after the resumed run
  o.quiet = true;
  o.threads = 1;
  return o;
}

// A stage (train_reward_model, dpo) stopped at step stop_after and resumed
// equals the run with no stop: the same train losses, metrics records (none
// repeated), weights and optimizer state, bit for bit. `o` is the whole run's
// options (o.steps > stop_after); returns the stopped run's result and the
// final ones (uninterrupted, resumed).
template <typename O, typename Train>
auto expect_resume_matches(O o, const std::string& root, int64_t stop_after, Train train) {
  o.out_dir = root + "/full";
  const auto full = train(o);
  o.out_dir = root + "/resumed";
  o.stop_after = stop_after;
  const auto first = train(o);
  EXPECT_TRUE(first.interrupted);
  EXPECT_EQ(first.step, stop_after);
  o.stop_after = 0;
  o.resume = true;
  o.lr = 123.0;  // ignored: a resumed run keeps the checkpoint's hyper-parameters
  const auto second = train(o);
  EXPECT_FALSE(second.interrupted);
  EXPECT_EQ(second.step, o.steps);
  EXPECT_EQ(train_losses(root + "/resumed"), train_losses(root + "/full"));
  EXPECT_EQ(train_losses(root + "/full").size(), size_t(o.steps));
  EXPECT_EQ(metric_steps(root + "/resumed"), metric_steps(root + "/full"));
  EXPECT_EQ(second.train_loss, full.train_loss);
  for (const char* f : {"/model.safetensors", "/optimizer.safetensors"})
    EXPECT_TRUE(file_bytes(second.checkpoint + f) == file_bytes(full.checkpoint + f)) << f;
  return std::make_tuple(first, full, second);
}

}  // namespace ember::chat::testing
