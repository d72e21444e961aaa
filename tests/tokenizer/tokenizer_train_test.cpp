// BPE training: a stated vocabulary on a fixed corpus, agreement with a naive
// recount-every-merge trainer, determinism across thread counts and input
// order, special tokens, and argument checks.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <map>
#include <random>

#include "ember/core/error.h"
#include "ember/tokenizer/train.h"

namespace ember {
namespace {

std::vector<std::string> merged_tokens(const Tokenizer& tok) {
  std::vector<std::string> out;
  for (TokenId id = 256; id < tok.vocab().end_rank(); ++id) out.emplace_back(tok.vocab().bytes(id));
  return out;
}

// The textbook algorithm, recounting every pair after every merge, with the
// same tie-break (largest count, then smallest (left id, right id)).
std::vector<std::string> naive_train(const std::vector<std::string>& texts, size_t n_ranks, size_t min_freq) {
  Pretokenizer pre(kPatternCl100k);
  std::map<std::string, int64_t> counts;
  for (const auto& t : texts) {
    std::vector<std::string_view> pieces;
    pre.split(t, pieces);
    for (auto p : pieces) ++counts[std::string(p)];
  }
  std::vector<std::pair<std::vector<TokenId>, int64_t>> words;
  for (const auto& [w, c] : counts) {
    std::vector<TokenId> ids;
    for (unsigned char ch : w) ids.push_back(ch);
    words.emplace_back(ids, c);
  }
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(1, char(b));
  while (tokens.size() < n_ranks) {
    std::map<std::pair<TokenId, TokenId>, int64_t> pc;
    for (const auto& [w, c] : words)
      for (size_t i = 0; i + 1 < w.size(); ++i) pc[{w[i], w[i + 1]}] += c;
    std::pair<TokenId, TokenId> best{};
    int64_t best_count = 0;
    for (const auto& [p, c] : pc) {
      if (c > best_count) best_count = c, best = p;  // map order: smallest pair wins ties
    }
    if (best_count < static_cast<int64_t>(min_freq) || best_count == 0) break;
    std::string merged = tokens[best.first] + tokens[best.second];
    auto it = std::find(tokens.begin(), tokens.end(), merged);
    TokenId id = static_cast<TokenId>(it - tokens.begin());
    if (it == tokens.end()) tokens.push_back(merged);
    for (auto& [w, c] : words) {
      std::vector<TokenId> out;
      for (size_t i = 0; i < w.size();) {
        if (i + 1 < w.size() && w[i] == best.first && w[i + 1] == best.second) {
          out.push_back(id);
          i += 2;
        } else {
          out.push_back(w[i++]);
        }
      }
      w = out;
    }
  }
  return {tokens.begin() + 256, tokens.end()};
}

std::vector<std::string> generated_corpus(uint64_t seed, int docs) {
  static const std::vector<std::string> words = {"the", "cat", "sat", "on", "mat", "and", "then", "ran",
                                                 "away", "über", "naïve", "中文", "数据", "😀", "42", "1999",
                                                 "don't", "it's", "    ", "\n", "\n\n", ",", "."};
  std::mt19937_64 rng(seed);
  std::vector<std::string> out;
  for (int d = 0; d < docs; ++d) {
    std::string s;
    for (int i = 0; i < 200; ++i) s += (rng() % 4 ? " " : "") + words[rng() % words.size()];
    out.push_back(s);
  }
  return out;
}

TEST(TokenizerTrain, StatedVocabularyOnAFixedCorpus) {
  // Piece counts: "low" 1, " low" 4, " lower" 2, " newest" 6, " widest" 3.
  // "es" and "st" both occur 9 times; the smaller pair (e, s) goes first.
  const std::vector<std::string> texts = {
      "low low low low low lower lower newest newest newest newest newest newest widest widest widest"};
  BpeTrainStats stats;
  BpeTrainOptions options;
  options.vocab_size = 256 + 10 + 3;
  Tokenizer tok = train_bpe(texts, options, &stats);
  EXPECT_EQ(merged_tokens(tok), (std::vector<std::string>{"es", "est", "lo", "low", " n", " low", "ew", " new",
                                                           " newest", " w"}));
  EXPECT_EQ(tok.vocab_size(), 269u);
  EXPECT_EQ(tok.special_id("<|endoftext|>"), 266u);
  EXPECT_EQ(tok.special_id("<|im_start|>"), 267u);
  EXPECT_EQ(tok.special_id("<|im_end|>"), 268u);
  EXPECT_EQ(stats.distinct_chunks, 5u);
  EXPECT_EQ(stats.total_chunks, 16u);
  EXPECT_FALSE(stats.stopped_early);
  EXPECT_EQ(tok.encode_ordinary("lowest newest"), (std::vector<TokenId>{259, 257, 264}));
}

TEST(TokenizerTrain, AgreesWithNaiveTrainer) {
  auto texts = generated_corpus(11, 20);
  for (size_t min_freq : {size_t(1), size_t(2)}) {
    BpeTrainOptions options;
    options.vocab_size = 256 + 150;
    options.special_tokens = {};
    options.min_frequency = min_freq;
    EXPECT_EQ(merged_tokens(train_bpe(texts, options)), naive_train(texts, 256 + 150, min_freq));
  }
}

// This corpus (40 documents of 200 words drawn from 23) has 458 distinct
// chunks; with the default min_frequency 2 every pair left after merge 286
// occurs only once, so training stops early at 256 + 286 + 3 = 545 ids, not
// the 600 asked for. The naive trainer agrees merge for merge, so the early
// stop is a property of the corpus, not of the heap/occurrence index. With
// min_frequency 1 the same corpus does give the full 600 - 256 - 3 = 341.
// Either way the merges are identical for 1 or many threads and for the
// input files in reverse order.
TEST(TokenizerTrain, DeterministicAcrossThreadsAndInputOrder) {
  auto texts = generated_corpus(3, 40);
  auto reversed = texts;
  std::reverse(reversed.begin(), reversed.end());
  const int threads = omp_get_max_threads();
  for (size_t min_freq : {size_t(2), size_t(1)}) {
    BpeTrainOptions options;
    options.vocab_size = 600;
    options.min_frequency = min_freq;
    BpeTrainStats one_stats, many_stats;
    omp_set_num_threads(1);
    auto one = merged_tokens(train_bpe(texts, options, &one_stats));
    omp_set_num_threads(std::max(4, threads));
    auto many = merged_tokens(train_bpe(reversed, options, &many_stats));
    omp_set_num_threads(threads);
    EXPECT_EQ(one, many) << "min_frequency " << min_freq;
    EXPECT_EQ(one, naive_train(texts, 600 - 3, min_freq)) << "min_frequency " << min_freq;
    EXPECT_EQ(one_stats.distinct_chunks, 458u);
    EXPECT_EQ(one_stats.merges, many_stats.merges);
    if (min_freq == 2) {
      EXPECT_TRUE(one_stats.stopped_early);
      EXPECT_EQ(one.size(), 286u);
    } else {
      EXPECT_FALSE(one_stats.stopped_early);
      EXPECT_EQ(one.size(), 600u - 256 - 3);
    }
  }
}

// A text over 1 MB is cut into segments that are counted in parallel; the
// chunks, and so the merges, must not depend on the thread count, and must
// be those of the uncut text (the naive trainer pre-tokenizes it whole).
TEST(TokenizerTrain, LargeTextSegmentsAreThreadIndependent) {
  std::string big;
  for (const auto& t : generated_corpus(5, 2000)) big += t + "\nNext document:\n";
  ASSERT_GT(big.size(), size_t(1) << 20);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  BpeTrainStats one_stats, many_stats;
  BpeTrainOptions options;
  options.vocab_size = 400;
  auto one = merged_tokens(train_bpe({big}, options, &one_stats));
  omp_set_num_threads(std::max(4, threads));
  auto many = merged_tokens(train_bpe({big}, options, &many_stats));
  omp_set_num_threads(threads);
  EXPECT_EQ(one, many);
  EXPECT_EQ(one, naive_train({big}, 400 - 3, 2));
  EXPECT_EQ(one_stats.total_chunks, many_stats.total_chunks);
  EXPECT_EQ(one_stats.distinct_chunks, many_stats.distinct_chunks);
}

TEST(TokenizerTrain, SpecialTokensAreCutOutAndRoundTrip) {
  std::vector<std::string> texts;
  for (int i = 0; i < 30; ++i) texts.push_back("<|endoftext|>hello world<|endoftext|>");
  Tokenizer tok = train_bpe(texts, 300, "gpt2");
  for (TokenId id = 256; id < tok.vocab().end_rank(); ++id) {
    EXPECT_EQ(std::string(tok.vocab().bytes(id)).find("<|"), std::string::npos) << tok.vocab().bytes(id);
  }
  auto ids = tok.encode(texts[0], AllowedSpecial::All());
  EXPECT_EQ(ids.front(), tok.special_id("<|endoftext|>"));
  EXPECT_EQ(tok.decode(ids), texts[0]);
}

TEST(TokenizerTrain, StopsEarlyWhenPairsRunOut) {
  BpeTrainStats stats;
  BpeTrainOptions options;
  options.vocab_size = 1000;
  Tokenizer tok = train_bpe({"ab ab ab"}, options, &stats);
  EXPECT_TRUE(stats.stopped_early);
  EXPECT_EQ(merged_tokens(tok), (std::vector<std::string>{"ab", " ab"}));
  EXPECT_EQ(tok.vocab_size(), 256u + 2 + 3);
}

TEST(TokenizerTrain, ArgumentChecks) {
  try {
    train_bpe({"x"}, 100, "cl100k");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[tokenizer] train: vocab_size 100 is below 256"), std::string::npos);
  }
  EXPECT_THROW(train_bpe({"x"}, 300, "([bad"), Error);
  BpeTrainOptions options;
  options.special_tokens = {""};
  EXPECT_THROW(train_bpe({"x"}, options), Error);
}

}  // namespace
}  // namespace ember
