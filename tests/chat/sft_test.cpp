// SFT: targets cover assistant tokens only (the loss gradient w.r.t. logits is
// zero elsewhere), packing keeps whole conversations, and a short run on a tiny
// model lowers the held-out loss and writes a checkpoint of kind "sft".
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "chat/chat_test_util.h"
#include "ember/chat/sft.h"
#include "ember/core/error.h"
#include "ember/ops/ops.h"
#include "ember/train/checkpoint.h"

namespace ember::chat {
namespace {
namespace fs = std::filesystem;

TEST(Sft, LossGradientIsZeroOnNonAssistantPositions) {
  ChatTemplate t(testing::curriculum_tokenizer());
  const RenderedChat r = t.render({{Role::system, "Be brief."},
                                   {Role::user, "How old is Mia?"},
                                   {Role::assistant, "Mia is 34 years old."},
                                   {Role::user, "And her pet?"},
                                   {Role::assistant, "Mia has a cat."}});
  const std::vector<int64_t> targets = sft_targets(r);
  const int64_t n = int64_t(targets.size());
  const int64_t V = int64_t(t.tokenizer().vocab_size());
  Generator gen(3);
  Tensor logits = randn({1, n, V}, DType::f32, Device::cpu(), &gen);
  logits.requires_grad_();
  Tensor loss = cross_entropy(logits, tensor_i64(targets, {1, n}), -1);
  loss.backward();
  const std::vector<float> g = logits.grad().to_vector<float>();
  int64_t trained = 0;
  for (int64_t p = 0; p < n; ++p) {
    double row = 0;
    for (int64_t v = 0; v < V; ++v) row += std::abs(g[size_t(p * V + v)]);
    // Position p predicts token p + 1: trained exactly when that token is assistant output.
    if (r.mask[size_t(p + 1)]) {
      EXPECT_GT(row, 0.0) << p;
      ++trained;
    } else {
      EXPECT_EQ(row, 0.0) << p;
    }
  }
  EXPECT_GT(trained, 4);
  EXPECT_LT(trained, n / 2);
}

TEST(Sft, PackingKeepsConversationsWholeAndLabelsMasked) {
  ChatTemplate t(testing::curriculum_tokenizer());
  const World w = make_world(curriculum_preset("tiny"), 4);
  std::vector<RenderedChat> chats;
  for (const auto& c : curriculum_conversations(w, 50, 4, 0)) chats.push_back(t.render(c));
  std::vector<size_t> order(chats.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::vector<std::vector<int64_t>> labels;
  int64_t truncated = -1;
  const auto rows = pack_rows(chats, order, 191, t.turn_end_id(), &labels, &truncated);
  EXPECT_EQ(truncated, 0);
  EXPECT_LT(rows.size(), chats.size() / 2);  // several conversations per row
  size_t starts = 0, trained = 0, want_trained = 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    ASSERT_EQ(rows[r].size(), 192u);
    EXPECT_EQ(rows[r][0], t.turn_start_id());  // rows begin at a conversation
    starts += size_t(std::count(rows[r].begin(), rows[r].end(), t.turn_start_id()));
    for (int64_t l : labels[r]) trained += l >= 0;
  }
  for (const auto& c : chats) want_trained += size_t(std::count(c.mask.begin(), c.mask.end(), 1));
  size_t want_starts = 0;
  for (const auto& c : chats) want_starts += size_t(std::count(c.ids.begin(), c.ids.end(), t.turn_start_id()));
  EXPECT_EQ(starts, want_starts);
  EXPECT_EQ(trained, want_trained);
}

TEST(Sft, ShortRunLowersHeldOutLoss) {
  const std::string root = ::testing::TempDir() + "/ember_sft_test_" + std::to_string(::getpid());
  fs::remove_all(root);
  write_curriculum(root + "/data", curriculum_preset("tiny"), 7);
  const Tokenizer& tok = testing::curriculum_tokenizer();
  tok.save(root + "/tokenizer");
  models::GPTConfig cfg = models::GPTConfig::preset("tiny");
  cfg.n_layer = 2, cfg.n_head = 2, cfg.n_kv_head = 2, cfg.n_embd = 64, cfg.block_size = 128;
  cfg.vocab_size = int64_t(tok.vocab_size());
  Generator gen(1);
  models::GPT model(cfg, &gen);
  train::CheckpointSave init{&model, nullptr, {{"step", 0}, {"config", cfg.to_json()}}, {{root + "/tokenizer", "tokenizer"}}};
  const std::string init_dir = train::save_checkpoint(root + "/pre", 0, init);

  SftOptions o;
  o.init = root + "/pre";
  o.data = root + "/data/sft_train.jsonl";
  o.val_data = root + "/data/sft_val.jsonl";
  o.prompts = root + "/data/prompts_heldout.jsonl";
  o.eval_prompts = 4;
  o.max_new_tokens = 6;
  o.out_dir = root + "/sft";
  o.steps = 40;
  o.batch_size = 8;
  o.lr = 3e-3;
  o.eval_every = 0;
  o.quiet = true;
  const SftResult r = sft(o);
  EXPECT_EQ(r.step, 40);
  EXPECT_LT(r.val_loss, 0.7 * r.val_loss_before) << r.val_loss_before << " -> " << r.val_loss;
  EXPECT_EQ(r.oracle.prompts, 4);
  const nlohmann::json tj = train::read_trainer_json(r.checkpoint);
  EXPECT_EQ(tj.at("kind"), "sft");
  EXPECT_TRUE(fs::exists(r.checkpoint + "/tokenizer/tokenizer.json"));
  EXPECT_TRUE(fs::exists(r.checkpoint + "/model.safetensors"));

  // Stopped after step 15 and resumed: the losses equal an uninterrupted
  // run's, bit for bit (model, optimizer, RNG and data position restored).
  o.steps = 30;
  o.prompts.clear();
  o.checkpoint_every = 10;
  o.out_dir = root + "/sft_full";
  sft(o);
  o.out_dir = root + "/sft_resumed";
  o.stop_after = 15;
  const SftResult first = sft(o);
  EXPECT_TRUE(first.interrupted);
  EXPECT_EQ(first.step, 15);
  o.stop_after = 0;
  o.resume = true;
  o.lr = 123.0;  // ignored: a resumed run keeps the checkpoint's hyper-parameters
  const SftResult second = sft(o);
  EXPECT_EQ(second.step, 30);
  EXPECT_FALSE(second.interrupted);
  EXPECT_EQ(testing::train_losses(root + "/sft_resumed"), testing::train_losses(root + "/sft_full"));
  EXPECT_EQ(testing::train_losses(root + "/sft_full").size(), 30u);
  EXPECT_EQ(testing::metric_steps(root + "/sft_resumed"), testing::metric_steps(root + "/sft_full"));
  o.resume = false;
  o.lr = 3e-3;

  // A checkpoint of another kind is refused by name.
  train::CheckpointSave rm{&model, nullptr, {{"kind", "reward"}, {"step", 0}, {"config", cfg.to_json()}}, {}};
  const std::string rm_dir = train::save_checkpoint(root + "/rm", 0, rm);
  o.init = rm_dir;
  o.out_dir = root + "/sft2";
  try {
    sft(o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"reward\" checkpoint"), std::string::npos) << e.what();
  }
  fs::remove_all(root);
}

}  // namespace
}  // namespace ember::chat
