// The oracle evaluation split over the ranks (chat/eval.h's evaluate_oracle
// with a train::DataParallelRun): each rank replies to its share of the
// held-out prompts and the graded replies are gathered, and every rank's result
// equals the one-process result exactly (figures, per-kind counts, samples),
// also when the shares are uneven or a rank's share is empty. Plus
// DataParallelRun::all_gather_text, which carries the grades.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "chat/chat_test_util.h"
#include "ember/chat/eval.h"
#include "ember/train/data_parallel_run.h"

using namespace ember;

namespace {

TEST(DataParallelRun, AllGatherTextKeepsEveryRanksBytes) {
  train::DataParallelRun dp("test");
  // Lengths 0, 9, 18, ...: one rank sends nothing, the others not a multiple of 8 bytes.
  std::string mine;
  for (int i = 0; i < 9 * dp.rank(); ++i) mine.push_back(char('a' + (i + dp.rank()) % 26));
  if (dp.rank() == 1) mine[3] = '\0';
  const std::vector<std::string> all = dp.all_gather_text(mine);
  ASSERT_EQ(all.size(), size_t(dp.size()));
  for (int r = 0; r < dp.size(); ++r) {
    ASSERT_EQ(all[size_t(r)].size(), size_t(9 * r)) << r;
    for (int i = 0; i < 9 * r; ++i)
      EXPECT_EQ(all[size_t(r)][size_t(i)], r == 1 && i == 3 ? '\0' : char('a' + (i + r) % 26)) << r << " " << i;
  }
}

TEST(OracleSplit, EveryRankGetsTheOneProcessResult) {
  const Tokenizer& tok = chat::testing::curriculum_tokenizer();
  const chat::ChatTemplate tmpl(tok);
  models::GPTConfig cfg = models::GPTConfig::preset("tiny");
  cfg.n_layer = 2, cfg.n_head = 2, cfg.n_kv_head = 2, cfg.n_embd = 32, cfg.block_size = 96;
  cfg.vocab_size = int64_t(tok.vocab_size());
  Generator gen(11);
  models::GPT model(cfg, &gen);
  model.eval();
  const chat::World w = chat::make_world(chat::curriculum_preset("tiny"), 3);
  std::vector<chat::PromptRecord> all = chat::curriculum_heldout_prompts(w, 11, 3);
  // A random model answers nothing right: some keys are swapped for ones its
  // replies meet (a list of no names: correct, half the score unless one word)
  // or fail as hallucination (an unknown person), so the figures are not all zero.
  for (size_t i = 0; i < all.size(); ++i) {
    if (i % 4 == 0) all[i].meta["grade"] = {{"kind", "list"}, {"names", nlohmann::json::array()}};
    if (i % 4 == 1) all[i].meta["grade"] = {{"kind", "list"}, {"names", nlohmann::json::array()}, {"format", "one_word"}};
    if (i % 4 == 2) all[i].meta["grade"] = {{"kind", "unknown"}};
  }
  train::DataParallelRun dp("test");
  // 11 prompts: shares of 5 and 6 on 2 ranks, 3, 4, 4 on 3 (rank 0 holds fewer than
  // the 6 samples); 1 prompt: the other ranks reply to none.
  for (size_t n : {all.size(), size_t(1)}) {
    const std::vector<chat::PromptRecord> prompts(all.begin(), all.begin() + std::ptrdiff_t(n));
    const chat::OracleResult one = chat::evaluate_oracle(model, tmpl, prompts, 6);
    const chat::OracleResult split = chat::evaluate_oracle(model, tmpl, prompts, 6, &dp);
    EXPECT_EQ(split.prompts, int64_t(n));
    // Exactly: the same replies, graded and summed in the same order.
    EXPECT_EQ(split.accuracy, one.accuracy) << n;
    EXPECT_EQ(split.world_accuracy, one.world_accuracy) << n;
    EXPECT_EQ(split.score, one.score) << n;
    EXPECT_EQ(split.hallucination, one.hallucination) << n;
    EXPECT_EQ(split.over_refusal, one.over_refusal) << n;
    EXPECT_EQ(split.mean_reply_tokens, one.mean_reply_tokens) << n;
    EXPECT_EQ(split.by_kind, one.by_kind) << n;
    EXPECT_EQ(split.samples, one.samples) << n;
    EXPECT_EQ(split.replies, one.replies) << n;  // every graded reply (`ember eval --replies`)
    EXPECT_EQ(split.replies.size(), n) << n;
    EXPECT_EQ(split.samples.size(), std::min<size_t>(n, 6)) << n;
    if (n > 1) {
      EXPECT_GT(one.accuracy, 0.0);
      EXPECT_GT(one.hallucination, 0.0);
      EXPECT_GT(one.mean_reply_tokens, 0.0);
      EXPECT_NE(one.samples[0]["reply"], one.samples[4]["reply"]);  // the order of the replies shows
    }
  }
}

}  // namespace
