// TokenLoader: target = input shifted by one, determinism for a seed,
// resume from a saved state gives the same batches, sequential order covers
// the split, and clear errors for mismatched tokenizers, states and shards.
#include <gtest/gtest.h>

#include "data/data_test_util.h"
#include "ember/data/loader.h"
#include "ember/data/prepare.h"

namespace ember::data {
namespace {

namespace fs = std::filesystem;
using testing::error_of;
using testing::TempDir;

// A data folder prepared from 300 KB of the built-in corpus.
class DataLoader : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("loader");
    testing::write_text(*dir_ / "corpus.txt", builtin_corpus(300'000, 3));
    PrepareOptions o;
    o.inputs = {*dir_ / "corpus.txt"};
    o.out = *dir_ / "data";
    o.val_fraction = 0.1;
    o.shard_tokens = 20'000;  // several shards, so windows come from more than one
    prepare_data(testing::small_tokenizer(), o);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string data() { return *dir_ / "data"; }
  static TempDir* dir_;
};
TempDir* DataLoader::dir_ = nullptr;

TEST_F(DataLoader, TargetIsInputShiftedByOne) {
  TokenLoader loader(data(), "train", 4, 32, 1);
  EXPECT_GT(loader.meta().split("train", data()).shards.size(), 2u);
  for (int step = 0; step < 3; ++step) {
    auto [x, y] = loader.next();
    ASSERT_EQ(x.shape(), (Shape{4, 32}));
    ASSERT_EQ(y.shape(), (Shape{4, 32}));
    ASSERT_EQ(x.dtype(), DType::i64);
    auto xv = x.to_vector<int64_t>(), yv = y.to_vector<int64_t>();
    for (int b = 0; b < 4; ++b)
      for (int t = 0; t + 1 < 32; ++t) EXPECT_EQ(yv[b * 32 + t], xv[b * 32 + t + 1]);
    for (int64_t v : xv) EXPECT_LT(v, 400);
  }
}

TEST_F(DataLoader, DeterministicForASeedAndDifferentAcrossSeeds) {
  TokenLoader a(data(), "train", 3, 16, 42), b(data(), "train", 3, 16, 42), c(data(), "train", 3, 16, 43);
  for (int i = 0; i < 5; ++i) {
    auto [xa, ya] = a.next();
    auto [xb, yb] = b.next();
    auto [xc, yc] = c.next();
    EXPECT_EQ(xa.to_vector<int64_t>(), xb.to_vector<int64_t>());
    EXPECT_EQ(ya.to_vector<int64_t>(), yb.to_vector<int64_t>());
    EXPECT_NE(xa.to_vector<int64_t>(), xc.to_vector<int64_t>());
  }
}

TEST_F(DataLoader, ResumeFromStateContinuesTheSameBatches) {
  TokenLoader run(data(), "train", 2, 24, 5);
  std::vector<std::vector<int64_t>> uninterrupted;
  nlohmann::json saved;
  for (int i = 0; i < 10; ++i) {
    if (i == 4) saved = run.state().to_json();
    uninterrupted.push_back(run.next().first.to_vector<int64_t>());
  }
  // A fresh process: a new loader with another seed, restored from the JSON.
  TokenLoader resumed(data(), "train", 2, 24, 999);
  resumed.set_state(LoaderState::from_json(nlohmann::json::parse(saved.dump())));
  EXPECT_EQ(resumed.state().step, 4u);
  EXPECT_EQ(resumed.state().seed, 5u);
  for (int i = 4; i < 10; ++i) EXPECT_EQ(resumed.next().first.to_vector<int64_t>(), uninterrupted[i]) << i;
  EXPECT_EQ(resumed.state(), run.state());
  EXPECT_EQ(run.batch_at(7).first.to_vector<int64_t>(), uninterrupted[7]);
}

// Rows are one stream of windows: two batches of 4 are one batch of 8, so a
// position rebatched for another batch size (a resume on another rank count)
// continues exactly; a position that falls mid-batch is refused.
TEST_F(DataLoader, RebatchedStateContinuesTheSameStream) {
  for (Order order : {Order::random, Order::sequential}) {
    TokenLoader eight(data(), "train", 8, 16, 3, order);
    TokenLoader four(data(), "train", 4, 16, 3, order);
    four.next(), four.next(), four.next(), four.next();  // 16 sequences
    eight.set_state(four.state().rebatched(8));
    EXPECT_EQ(eight.state().step, 2u);
    const std::vector<int64_t> a = eight.next().first.to_vector<int64_t>();
    std::vector<int64_t> b = four.next().first.to_vector<int64_t>();
    const std::vector<int64_t> b2 = four.next().first.to_vector<int64_t>();
    b.insert(b.end(), b2.begin(), b2.end());
    EXPECT_EQ(a, b) << order_name(order);
  }
  TokenLoader three(data(), "train", 3, 16, 3);
  three.next();
  std::string msg = error_of([&] { three.state().rebatched(2); });
  EXPECT_NE(msg.find("the position (3 sequences read in batches of 3) is not a multiple of the new batch size 2"),
            std::string::npos) << msg;
}

TEST_F(DataLoader, StateMismatchAndBadJsonAreErrors) {
  TokenLoader loader(data(), "train", 2, 24, 5);
  LoaderState other = loader.state();
  other.batch_size = 3;
  std::string msg = error_of([&] { loader.set_state(other); });
  EXPECT_NE(msg.find("batch 3x24, but this loader reads split 'train', order random, batch 2x24"), std::string::npos) << msg;
  other = loader.state();
  other.split = "val";
  EXPECT_THROW(loader.set_state(other), Error);
  msg = error_of([] { LoaderState::from_json(nlohmann::json{{"split", "train"}}); });
  EXPECT_NE(msg.find("[data] loader state:"), std::string::npos) << msg;
}

TEST_F(DataLoader, SequentialCoversTheSplitInOrder) {
  const DataMeta meta = read_meta(data());
  const SplitInfo& val = meta.split("val", data());
  ASSERT_GT(val.tokens, 64u);
  // Read the val stream directly, shard by shard.
  std::vector<std::vector<int64_t>> shards;
  for (const auto& sh : val.shards) {
    TokenShard s(*dir_ / ("data/" + sh.file));
    std::vector<int64_t> all(s.size());
    s.read(0, all);
    shards.push_back(all);
  }
  const int64_t T = 16;
  TokenLoader loader(data(), "val", 1, T, 0, Order::sequential);
  uint64_t expected = 0;
  for (const auto& s : shards) expected += s.size() >= T + 1 ? (s.size() - 1) / T : 0;
  EXPECT_EQ(loader.windows(), expected);
  size_t shard = 0, pos = 0;
  for (uint64_t w = 0; w < loader.windows(); ++w) {
    while (pos + T + 1 > shards[shard].size()) ++shard, pos = 0;
    auto x = loader.next().first.to_vector<int64_t>();
    EXPECT_EQ(x, std::vector<int64_t>(shards[shard].begin() + pos, shards[shard].begin() + pos + T)) << w;
    pos += T;
  }
  // Then it wraps around to the first window.
  EXPECT_EQ(loader.next().first.to_vector<int64_t>(), std::vector<int64_t>(shards[0].begin(), shards[0].begin() + T));
}

TEST_F(DataLoader, TokenizerMismatchIsAClearError) {
  TokenLoader loader(data(), "train", 1, 8);
  loader.check_compatible(testing::small_tokenizer());  // the one that made it: fine
  BpeTrainOptions options;
  options.vocab_size = 400;
  Tokenizer other = train_bpe({builtin_corpus(100'000, 99) + "other text entirely 12345"}, options);
  std::string msg = error_of([&] { loader.check_compatible(other); });
  EXPECT_NE(msg.find("meta.json: data was tokenized with a different tokenizer"), std::string::npos) << msg;
  msg = error_of([&] { loader.check_compatible(8192, ""); });
  EXPECT_NE(msg.find("vocabulary of 400 ('data-test-bpe') but the tokenizer given has 8192"), std::string::npos) << msg;
  EXPECT_EQ(tokenizer_fingerprint(testing::small_tokenizer()), loader.meta().fingerprint);
}

TEST_F(DataLoader, WindowLongerThanEveryShardIsAnError) {
  std::string msg = error_of([&] { TokenLoader loader(data(), "train", 1, 20'000); });
  EXPECT_NE(msg.find("a window needs 20001 tokens in one shard"), std::string::npos) << msg;
  msg = error_of([&] { TokenLoader loader(data(), "test", 1, 8); });
  EXPECT_NE(msg.find("no split named 'test'"), std::string::npos) << msg;
  msg = error_of([&] { TokenLoader loader(*dir_ / "nowhere", "train", 1, 8); });
  EXPECT_NE(msg.find("nowhere: no such data folder"), std::string::npos) << msg;
}

// Damage after preparation: a shard that no longer matches meta.json, or
// holds ids outside the vocabulary.
TEST(DataLoaderDamage, ShardCountAndTokenRangeAreChecked) {
  TempDir dir("loader_damage");
  testing::write_text(dir / "a.txt", builtin_corpus(20'000, 1));
  PrepareOptions o;
  o.inputs = {dir / "a.txt"};
  o.out = dir / "data";
  o.val_fraction = 0;
  prepare_data(testing::small_tokenizer(), o);
  const std::string shard = dir / "data/train_00000.bin";
  const uint64_t n = TokenShard(shard).size();
  std::vector<uint32_t> tokens(n - 1, 5);
  write_shard(shard, tokens, TokenDType::u16);
  std::string msg = error_of([&] { TokenLoader loader(dir / "data", "train", 1, 8); });
  EXPECT_NE(msg.find("train_00000.bin: holds " + std::to_string(n - 1) + " tokens but"), std::string::npos) << msg;
  tokens.assign(n, 60000);
  write_shard(shard, tokens, TokenDType::u16);
  TokenLoader loader(dir / "data", "train", 1, 8);
  msg = error_of([&] { loader.next(); });
  EXPECT_NE(msg.find("is 60000, outside the vocabulary of 400"), std::string::npos) << msg;
}

}  // namespace
}  // namespace ember::data
