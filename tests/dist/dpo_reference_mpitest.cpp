// DPO's reference pass split over the ranks (chat/dpo.h's DpoReference): with
// prefetch() on every rank before each global batch, each block of lists is
// computed on one rank only and the values all-gathered, and every rank's
// values equal one process's bit for bit.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "ember/chat/dpo.h"
#include "ember/train/data_parallel_run.h"

using namespace ember;

namespace {

TEST(DpoReference, SplitOverTheRanksGivesTheOneProcessBits) {
  models::GPTConfig cfg = models::GPTConfig::preset("tiny");
  cfg.n_layer = 1, cfg.n_head = 2, cfg.n_kv_head = 2, cfg.n_embd = 16, cfg.block_size = 32, cfg.vocab_size = 50;
  Generator gen(5);
  models::GPT model(cfg, &gen);
  model.eval();
  // 13 ranked lists of 2-3 responses of different lengths (blocks of 3: the last holds one list).
  std::vector<chat::RankedRows> lists(13);
  for (size_t i = 0; i < lists.size(); ++i)
    for (size_t k = 0; k < 2 + i % 2; ++k) {
      std::vector<int64_t> row;
      for (size_t t = 0; t < 5 + (i * 7 + k * 3) % 9; ++t) row.push_back(int64_t(1 + (i * 13 + k * 5 + t * 3) % 49));
      lists[i].response_start.push_back(2 + int64_t(k));
      lists[i].rows.push_back(row);
    }
  train::DataParallelRun dp("test");
  if (!dp.distributed()) GTEST_SKIP() << "needs several ranks";
  chat::DpoReference one(model, lists, 0, 3), split(model, lists, 0, 3);
  // Global batches as the training loop draws them, each touching blocks that are
  // not cached yet (2, 2 and 1 of them) and some that are.
  const std::vector<std::vector<size_t>> batches{{7, 0, 1, 8}, {3, 12, 5, 0}, {10, 11, 2, 7}};
  for (const auto& global : batches) {
    split.prefetch(global, dp);
    // Every list of the batch is cached now, on every rank: get() computes nothing.
    const int64_t before = split.blocks_computed();
    const std::vector<float> got = split.get(global, DType::f32).to_vector<float>();
    EXPECT_EQ(split.blocks_computed(), before);
    const std::vector<float> want = one.get(global, DType::f32).to_vector<float>();
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0);
  }
  // The 5 blocks were each computed once over all ranks; on N ranks a rank
  // computed at most one block per batch (one process: all 5).
  EXPECT_EQ(one.blocks_computed(), 5);
  EXPECT_EQ(dp.sum(double(split.blocks_computed())), 5.0);
  EXPECT_LE(split.blocks_computed(), 3);
}

}  // namespace
