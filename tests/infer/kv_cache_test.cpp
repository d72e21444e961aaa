// KV-cache inference (infer/gpt_runner) against the training forward: the
// logits of prefill, chunked prefill and token-by-token decode equal those of a
// full forward pass over the whole sequence, for GPT-2 style and modern
// (RMSNorm, RoPE, SwiGLU, GQA, untied, no bias) configurations.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ember/autograd/grad_mode.h"
#include "ember/backend/cpu/packed_weights.h"
#include "ember/core/error.h"
#include "ember/infer/gpt_runner.h"
#include "ember/ops/ops.h"
#include "models/gpt_test_configs.h"

namespace ember::infer {
namespace {

models::GPTConfig gpt2_style() {
  models::GPTConfig c;
  c.n_layer = 2, c.n_head = 4, c.n_kv_head = 4, c.n_embd = 64, c.vocab_size = 97, c.block_size = 48;
  return c;
}

models::GPTConfig modern() {
  models::GPTConfig c = models::test_configs::with_modern_features(gpt2_style());
  c.n_kv_head = 2;
  return c;
}

// Logits [T, vocab] of a full forward over `ids`.
std::vector<float> full_logits(models::GPT& model, const std::vector<int64_t>& ids) {
  NoGradGuard no_grad;
  Tensor l = model.forward(tensor_i64(ids, {1, int64_t(ids.size())}));
  return contiguous(l).to_vector<float>();
}

std::vector<int64_t> random_ids(int64_t n, int64_t vocab, uint64_t seed) {
  Generator g(seed);
  return randint(0, vocab, {n}, Device::cpu(), &g).to_vector<int64_t>();
}

// Max |a - b| between row `ra` of a and row `rb` of b.
float row_diff(const std::vector<float>& a, int64_t ra, const std::vector<float>& b, int64_t rb, int64_t V) {
  float d = 0;
  for (int64_t i = 0; i < V; ++i) d = std::max(d, std::fabs(a[size_t(ra * V + i)] - b[size_t(rb * V + i)]));
  return d;
}

// Tolerance: float32 with different summation orders (GEMV vs oneDNN, flash vs
// plain softmax); logits are O(1) for these random models.
constexpr float kTol = 2e-4f;

// With `prepack`, the float weights are packed for the GEMM first
// (RunnerWeights::prepack, as serving loads them): chunks of more than 8 rows
// then multiply by the packed weights (oneDNN's blocked layout on AVX-512,
// ember's panels on AVX2).
void check_config(const models::GPTConfig& cfg, uint64_t seed, bool prepack = false) {
  Generator gen(seed);
  models::GPT model(cfg, &gen);
  model.eval();
  std::shared_ptr<RunnerWeights> weights = runner_weights(model);
  if (prepack) {
    if (cpu::frozen_weight_layout() == cpu::WeightLayout::none) GTEST_SKIP() << "no layout to pack weights in";
    EXPECT_EQ(weights->prepack(), 4 * cfg.n_layer + 1);  // every block's four and the head
  }
  GPTRunner runner(weights);
  const int64_t V = cfg.vocab_size, T = 40;
  const std::vector<int64_t> ids = random_ids(T, V, seed + 1);
  const std::vector<float> ref = full_logits(model, ids);

  // Whole prompt at once (the oneDNN path: more than 8 rows; attention as
  // GEMMs: 16 or more new tokens).
  KVCache c1 = runner.new_cache();
  std::vector<float> all = runner.forward(ids, c1);
  for (int64_t t = 0; t < T; ++t) EXPECT_LT(row_diff(all, t, ref, t, V), kTol) << "prefill row " << t;
  EXPECT_EQ(c1.length(), T);

  // Prefill 3 (GEMV path), a chunk of 5 (row-at-a-time attention), a chunk
  // of 17 behind them (GEMM attention over a cache that already holds 8
  // positions), then one token at a time.
  KVCache c2 = runner.new_cache();
  std::vector<int64_t> head(ids.begin(), ids.begin() + 3), chunk(ids.begin() + 3, ids.begin() + 8),
      big(ids.begin() + 8, ids.begin() + 25);
  std::vector<float> l = runner.forward(head, c2);
  for (int64_t t = 0; t < 3; ++t) EXPECT_LT(row_diff(l, t, ref, t, V), kTol) << "row " << t;
  l = runner.forward(chunk, c2);
  for (int64_t t = 0; t < 5; ++t) EXPECT_LT(row_diff(l, t, ref, 3 + t, V), kTol) << "chunk row " << t;
  l = runner.forward(big, c2);
  for (int64_t t = 0; t < 17; ++t) EXPECT_LT(row_diff(l, t, ref, 8 + t, V), kTol) << "big chunk row " << t;
  for (int64_t t = 25; t < T; ++t) {
    std::vector<float> step;
    int64_t tok = ids[size_t(t)];
    runner.forward({SeqChunk{&tok, 1, &c2}}, step);
    EXPECT_LT(row_diff(step, 0, ref, t, V), kTol) << "decode position " << t;
  }
}

TEST(KVCache, Gpt2StyleDecodeMatchesFullForward) { check_config(gpt2_style(), 11); }
TEST(KVCache, ModernRopeGqaDecodeMatchesFullForward) { check_config(modern(), 12); }
TEST(KVCache, PrepackedWeightsMatchFullForward) {
  check_config(gpt2_style(), 13, /*prepack=*/true);
  check_config(modern(), 14, /*prepack=*/true);
}

// Prompts longer than the attention kernel's 64-query blocks: a 150-token
// prefill, and a 90-token chunk behind a cache of 37 positions (a causal
// offset that is not a multiple of the kernel's 16-row groups), against the
// full forward, for both configurations (the second with GQA).
TEST(KVCache, LongPromptsSpanSeveralAttentionBlocks) {
  for (models::GPTConfig cfg : {gpt2_style(), modern()}) {
    cfg.block_size = 160;
    Generator gen(21);
    models::GPT model(cfg, &gen);
    model.eval();
    GPTRunner runner(model);
    const int64_t V = cfg.vocab_size;
    const std::vector<int64_t> ids = random_ids(150, V, 22);
    const std::vector<float> ref = full_logits(model, ids);
    KVCache c1 = runner.new_cache();
    const std::vector<float> all = runner.forward(ids, c1);
    for (int64_t t = 0; t < 150; ++t) EXPECT_LT(row_diff(all, t, ref, t, V), kTol) << "prefill row " << t;
    KVCache c2 = runner.new_cache();
    runner.forward(std::vector<int64_t>(ids.begin(), ids.begin() + 37), c2);
    const std::vector<float> l = runner.forward(std::vector<int64_t>(ids.begin() + 37, ids.begin() + 127), c2);
    for (int64_t t = 0; t < 90; ++t) EXPECT_LT(row_diff(l, t, ref, 37 + t, V), kTol) << "chunk row " << t;
  }
}

TEST(KVCache, BatchedSequencesAtDifferentPositionsMatchAlone) {
  models::GPTConfig cfg = modern();
  Generator gen(3);
  models::GPT model(cfg, &gen);
  GPTRunner runner(model);
  const int64_t V = cfg.vocab_size;
  const std::vector<int64_t> a = random_ids(7, V, 1), b = random_ids(2, V, 2), c = random_ids(12, V, 3);
  // Caches at different lengths, then one batched step of 1, 3 and 1 new
  // tokens, and again with b's chunk long enough (20) for GEMM attention.
  KVCache ca = runner.new_cache(), cb = runner.new_cache(), cc = runner.new_cache();
  runner.forward(std::vector<int64_t>(a.begin(), a.end() - 1), ca);
  runner.forward(std::vector<int64_t>(b.begin(), b.end() - 1), cb);
  runner.forward(std::vector<int64_t>(c.begin(), c.end() - 1), cc);
  std::vector<int64_t> b_new = {b.back(), 5, 6};
  std::vector<float> logits;
  runner.forward({SeqChunk{&a.back(), 1, &ca}, SeqChunk{b_new.data(), 3, &cb}, SeqChunk{&c.back(), 1, &cc}}, logits);
  ASSERT_EQ(logits.size(), size_t(3 * V));
  std::vector<int64_t> b_full = {b[0], b[1], 5, 6};
  auto ra = full_logits(model, a), rb = full_logits(model, b_full), rc = full_logits(model, c);
  EXPECT_LT(row_diff(logits, 0, ra, 6, V), kTol);
  EXPECT_LT(row_diff(logits, 1, rb, 3, V), kTol);
  EXPECT_LT(row_diff(logits, 2, rc, 11, V), kTol);
  EXPECT_EQ(ca.length(), 7);
  EXPECT_EQ(cb.length(), 4);
  EXPECT_EQ(cc.length(), 12);

  const std::vector<int64_t> b_more = random_ids(20, V, 4);
  const int64_t a_next = 9, c_next = 10;
  runner.forward({SeqChunk{&a_next, 1, &ca}, SeqChunk{b_more.data(), 20, &cb}, SeqChunk{&c_next, 1, &cc}}, logits);
  std::vector<int64_t> a2 = a, b2 = b_full, c2 = c;
  a2.push_back(a_next), c2.push_back(c_next);
  b2.insert(b2.end(), b_more.begin(), b_more.end());
  ra = full_logits(model, a2), rb = full_logits(model, b2), rc = full_logits(model, c2);
  EXPECT_LT(row_diff(logits, 0, ra, 7, V), kTol);
  EXPECT_LT(row_diff(logits, 1, rb, 23, V), kTol);
  EXPECT_LT(row_diff(logits, 2, rc, 12, V), kTol);
}

// A prefill that asks only for each chunk's last logits runs the last layer's
// attention output and MLP on those rows alone; the caches must still hold
// every position's keys and values, so the decode steps after it (and the
// logits themselves) match the full forward.
TEST(KVCache, LastLogitsOnlyPrefillStillFillsTheCaches) {
  for (const models::GPTConfig& cfg : {gpt2_style(), modern()}) {
    Generator gen(31);
    models::GPT model(cfg, &gen);
    model.eval();
    GPTRunner runner(model);
    const int64_t V = cfg.vocab_size;
    const std::vector<int64_t> a = random_ids(33, V, 32), b = random_ids(20, V, 33), c = random_ids(12, V, 34);
    const std::vector<float> ra = full_logits(model, a), rb = full_logits(model, b), rc = full_logits(model, c);
    // c's cache already holds 5 positions; its chunk is one token, first in
    // the batch (a row that stays where it is), then a long and a shorter one.
    KVCache ca = runner.new_cache(), cb = runner.new_cache(), cc = runner.new_cache();
    runner.forward(std::vector<int64_t>(c.begin(), c.begin() + 5), cc);
    std::vector<float> logits;
    runner.forward({SeqChunk{&c[5], 1, &cc}, SeqChunk{a.data(), 30, &ca}, SeqChunk{b.data(), 17, &cb}}, logits);
    ASSERT_EQ(logits.size(), size_t(3 * V));
    EXPECT_LT(row_diff(logits, 0, rc, 5, V), kTol);
    EXPECT_LT(row_diff(logits, 1, ra, 29, V), kTol);
    EXPECT_LT(row_diff(logits, 2, rb, 16, V), kTol);
    EXPECT_EQ(cc.length(), 6);
    EXPECT_EQ(ca.length(), 30);
    EXPECT_EQ(cb.length(), 17);
    for (int64_t t = 0; t < 3; ++t) {
      runner.forward({SeqChunk{&c[size_t(6 + t)], 1, &cc}, SeqChunk{&a[size_t(30 + t)], 1, &ca},
                      SeqChunk{&b[size_t(17 + t)], 1, &cb}},
                     logits);
      EXPECT_LT(row_diff(logits, 0, rc, 6 + t, V), kTol) << "c, decode step " << t;
      EXPECT_LT(row_diff(logits, 1, ra, 30 + t, V), kTol) << "a, decode step " << t;
      EXPECT_LT(row_diff(logits, 2, rb, 17 + t, V), kTol) << "b, decode step " << t;
    }
  }
}

TEST(KVCache, ErrorsLeaveTheCacheUnchanged) {
  models::GPTConfig cfg = gpt2_style();
  models::GPT model(cfg);
  GPTRunner runner(model);
  KVCache cache = runner.new_cache(4);
  runner.forward(std::vector<int64_t>{1, 2, 3}, cache);
  EXPECT_THROW(runner.forward(std::vector<int64_t>{1, 2}, cache), Error);  // overflow
  EXPECT_THROW(runner.forward(std::vector<int64_t>{97}, cache), Error);    // id out of range
  EXPECT_EQ(cache.length(), 3);
  KVCache other(1, 4, 8, 16);
  EXPECT_THROW(runner.forward(std::vector<int64_t>{1}, other), Error);  // wrong layer count
  EXPECT_THROW(KVCache::for_config(cfg, cfg.block_size + 1), Error);
}

}  // namespace
}  // namespace ember::infer
