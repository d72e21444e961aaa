// The continuous-batching engine: batched generation equals generating each
// request alone (and the slow reference generate()), seeded sampling
// reproduces, slots and queue bound the work, cancel frees a slot, finish
// reasons (stop token, max_tokens, context) and submit-time errors; with a
// vocabulary padded past the tokenizer's, no padded id is ever sampled.
#include <gtest/gtest.h>

#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <vector>

#include "ember/autograd/grad_mode.h"
#include "ember/core/error.h"
#include "ember/infer/engine.h"
#include "ember/infer/generate.h"
#include "ember/ops/ops.h"
#include "test_util.h"

namespace ember::infer {
namespace {

models::GPTConfig config(bool modern) {
  models::GPTConfig c;
  c.n_layer = 2, c.n_head = 4, c.n_kv_head = modern ? 2 : 4, c.n_embd = 64, c.vocab_size = 97, c.block_size = 48;
  if (modern) {
    c.norm = models::NormKind::rmsnorm;
    c.position = models::PositionKind::rope;
    c.mlp = models::MlpKind::swiglu;
    c.bias = false;
  }
  return c;
}

struct Collected {
  std::map<int64_t, std::vector<int64_t>> tokens;
  std::map<int64_t, FinishReason> finish;
  std::map<int64_t, std::vector<float>> logprobs;
};

Request make_request(std::vector<int64_t> prompt, int64_t max_tokens, Collected& out, double temperature = 0.0,
                     uint64_t seed = 0) {
  Request r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = temperature;
  r.seed = seed;
  r.on_event = [&out](const TokenEvent& e) {
    if (e.token >= 0) out.tokens[e.request_id].push_back(e.token), out.logprobs[e.request_id].push_back(e.logprob);
    if (e.finish != FinishReason::none) out.finish[e.request_id] = e.finish;
  };
  return r;
}

std::vector<std::vector<int64_t>> prompts() {
  return {{3}, {5, 6, 7, 8, 9}, {10, 20, 30, 40, 50, 60, 70, 80, 90, 1, 2}, {4, 4}};
}

void batched_equals_alone(bool modern, double temperature) {
  Generator gen(21);
  models::GPT model(config(modern), &gen);
  const auto ps = prompts();
  Collected together;
  {
    Engine engine(model, {/*max_slots=*/3});
    for (size_t i = 0; i < ps.size(); ++i) engine.submit(make_request(ps[i], 12, together, temperature, 100 + i));
    engine.run_until_idle();
  }
  for (size_t i = 0; i < ps.size(); ++i) {
    Collected alone;
    Engine engine(model, {1});
    const int64_t id = engine.submit(make_request(ps[i], 12, alone, temperature, 100 + i));
    engine.run_until_idle();
    EXPECT_EQ(together.tokens[int64_t(i) + 1], alone.tokens[id]) << "request " << i;
    ASSERT_EQ(together.tokens[int64_t(i) + 1].size(), 12u);
    EXPECT_EQ(together.finish[int64_t(i) + 1], FinishReason::length);
    if (temperature == 0.0) {  // and the slow full-forward reference agrees
      GenerateOptions g;
      g.max_new_tokens = 12;
      g.sampling.temperature = 0.0;
      Generator unused(1);
      EXPECT_EQ(generate(model, ps[i], g, unused), alone.tokens[id]) << "request " << i;
    }
  }
}

TEST(Engine, BatchedGreedyEqualsAloneGpt2Style) { batched_equals_alone(false, 0.0); }
TEST(Engine, BatchedGreedyEqualsAloneModern) { batched_equals_alone(true, 0.0); }
TEST(Engine, BatchedSampledEqualsAloneSameSeeds) { batched_equals_alone(true, 1.0); }

TEST(Engine, SeededSamplingReproducesAndSeedsDiffer) {
  Generator gen(5);
  models::GPT model(config(false), &gen);
  auto run = [&](uint64_t seed) {
    Collected c;
    Engine engine(model, {2});
    const int64_t id = engine.submit(make_request({1, 2, 3}, 20, c, 1.0, seed));
    engine.run_until_idle();
    return c.tokens[id];
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

TEST(Engine, LogprobsAreThoseOfTheFullForward) {
  Generator gen(6);
  models::GPT model(config(true), &gen);
  Collected c;
  Engine engine(model, {1});
  const int64_t id = engine.submit(make_request({1, 2, 3}, 4, c, 1.0, 9));
  engine.run_until_idle();
  std::vector<int64_t> seq = {1, 2, 3};
  for (size_t i = 0; i < 4; ++i) {
    NoGradGuard ng;
    Tensor lp = log_softmax(model.forward(tensor_i64(seq, {1, int64_t(seq.size())})), -1);
    const std::vector<float> row = contiguous(select(select(lp, 0, 0), 0, int64_t(seq.size()) - 1)).to_vector<float>();
    EXPECT_NEAR(c.logprobs[id][i], row[size_t(c.tokens[id][i])], 1e-4) << "token " << i;
    EXPECT_LE(c.logprobs[id][i], 0.0f);
    seq.push_back(c.tokens[id][i]);
  }
}

TEST(Engine, MoreRequestsThanSlotsAllComplete) {
  Generator gen(7);
  models::GPT model(config(false), &gen);
  Collected c;
  Engine engine(model, {/*max_slots=*/2, /*max_queue=*/8});
  for (int i = 0; i < 7; ++i) engine.submit(make_request({int64_t(i + 1), 2}, 3 + i % 3, c));
  int64_t steps = 0;
  bool more = true;
  while (more) {
    more = engine.step();
    ++steps;
    EXPECT_LE(engine.active(), 2);
  }
  EXPECT_EQ(engine.active(), 0);
  EXPECT_EQ(engine.queued(), 0);
  ASSERT_EQ(c.finish.size(), 7u);
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(c.finish[i + 1], FinishReason::length);
    EXPECT_EQ(int64_t(c.tokens[i + 1].size()), 3 + i % 3);
  }
  EXPECT_GE(steps, 14);  // 28 tokens through 2 slots, one per slot per step
}

TEST(Engine, CancelFreesASlotAndDropsQueuedRequests) {
  Generator gen(8);
  models::GPT model(config(false), &gen);
  Collected c;
  Engine engine(model, {/*max_slots=*/1, /*max_queue=*/4});
  const int64_t a = engine.submit(make_request({1}, 30, c));
  const int64_t b = engine.submit(make_request({2}, 2, c));
  const int64_t q = engine.submit(make_request({3}, 2, c));
  engine.step();
  EXPECT_EQ(engine.active(), 1);
  EXPECT_EQ(engine.queued(), 2);
  EXPECT_TRUE(engine.cancel(a));
  EXPECT_TRUE(engine.cancel(q));
  EXPECT_FALSE(engine.cancel(a));  // already cancelled
  EXPECT_FALSE(engine.cancel(999));
  engine.step();  // a leaves, q is dropped, b joins and gets its first token
  EXPECT_EQ(c.finish[a], FinishReason::cancelled);
  EXPECT_EQ(c.finish[q], FinishReason::cancelled);
  EXPECT_EQ(c.tokens[a].size(), 1u);
  EXPECT_EQ(c.tokens[b].size(), 1u);
  EXPECT_EQ(engine.queued(), 0);
  engine.run_until_idle();
  EXPECT_EQ(c.finish[b], FinishReason::length);
  EXPECT_EQ(c.tokens.count(q), 0u);
}

TEST(Engine, StopTokenAndContextEndFinishes) {
  Generator gen(9);
  models::GPT model(config(false), &gen);
  Collected probe;
  {
    Engine engine(model, {1});
    engine.submit(make_request({1, 2}, 5, probe));
    engine.run_until_idle();
  }
  const int64_t third = probe.tokens[1][2];
  Collected c;
  Engine engine(model, {2, 4, /*max_seq_len=*/10});
  Request r = make_request({1, 2}, 5, c);
  r.stop_tokens = {third};
  const int64_t s = engine.submit(std::move(r));
  const int64_t l = engine.submit(make_request({1, 2, 3, 4, 5, 6}, 100, c));
  engine.run_until_idle();
  EXPECT_EQ(c.finish[s], FinishReason::stop);
  EXPECT_EQ(c.tokens[s].back(), third);
  EXPECT_LE(c.tokens[s].size(), 3u);
  EXPECT_EQ(c.finish[l], FinishReason::length);
  // 6 prompt tokens and 4 fed-back ones fill the 10 positions; the 5th token is
  // sampled from the last position and never needs one.
  EXPECT_EQ(c.tokens[l].size(), 5u);
}

TEST(Engine, SubmitErrors) {
  models::GPT model(config(false));
  Collected c;
  Engine engine(model, {/*max_slots=*/1, /*max_queue=*/1, /*max_seq_len=*/8});
  EXPECT_THROW(engine.submit(make_request({}, 4, c)), Error);
  EXPECT_THROW(engine.submit(make_request(std::vector<int64_t>(8, 1), 4, c)), Error);  // no room left
  EXPECT_THROW(engine.submit(make_request({97}, 4, c)), Error);
  EXPECT_THROW(engine.submit(make_request({1}, 0, c)), Error);
  Request bad = make_request({1}, 4, c);
  bad.sampling.min_p = 2;
  EXPECT_THROW(engine.submit(std::move(bad)), Error);
  engine.submit(make_request({1}, 4, c));  // a free slot
  engine.submit(make_request({1}, 4, c));  // the queue
  try {
    engine.submit(make_request({1}, 4, c));
    FAIL() << "no capacity error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("engine at capacity"), std::string::npos) << e.what();
  }
}

// A model whose logits are the same at every position and largest at padded
// ids (>= the tokenizer's 90 of 97): ln_f's weight is 0, so the final hidden
// state is its bias e_0, and logit j is lm_head[j, 0].
TEST(Engine, PaddedVocabularyIsNeverSampled) {
  const int64_t V = 97, N = 90, best = 40;
  Generator gen(3);
  models::GPT model(config(false), &gen);
  TensorMap state = model.state_dict();
  const int64_t C = model.config().n_embd;
  std::vector<double> head(size_t(V * C), 0.0), lnw(size_t(C), 0.0), lnb(size_t(C), 0.0);
  std::vector<double> logit(static_cast<size_t>(V));
  for (int64_t j = 0; j < V; ++j) {
    logit[size_t(j)] = j >= N ? 20.0 - 0.1 * double(j - N) : j == best ? 5.0 : 0.01 * double(j);
    head[size_t(j * C)] = logit[size_t(j)];
  }
  lnb[0] = 1.0;
  state["lm_head.weight"] = tensor(head, {V, C});
  state["transformer.wte.weight"] = state["lm_head.weight"];  // tied
  state["transformer.ln_f.weight"] = tensor(lnw, {C});
  state["transformer.ln_f.bias"] = tensor(lnb, {C});
  model.load_state_dict(state);

  {  // Unmasked, the padded id 90 wins: the case the option exists for.
    Collected c;
    Engine engine(model, {1});
    engine.submit(make_request({1, 2}, 3, c));
    engine.run_until_idle();
    EXPECT_EQ(c.tokens[1], (std::vector<int64_t>{N, N, N}));
  }
  EngineOptions masked{/*max_slots=*/4};
  masked.sample_vocab = N;
  Collected greedy, sampled;
  Engine engine(model, masked);
  engine.submit(make_request({1, 2}, 5, greedy));
  engine.run_until_idle();
  EXPECT_EQ(greedy.tokens[1], std::vector<int64_t>(5, best));
  // The logprob is normalised over the ids that may be chosen.
  double z = 0;
  for (int64_t j = 0; j < N; ++j) z += std::exp(logit[size_t(j)] - 5.0);
  EXPECT_NEAR(greedy.logprobs[1][0], -std::log(z), 1e-4);
  for (uint64_t seed = 0; seed < 16; ++seed) engine.submit(make_request({3}, 8, sampled, 2.0, seed));
  engine.run_until_idle();
  int64_t n = 0;
  for (const auto& [id, toks] : sampled.tokens)
    for (int64_t t : toks) {
      EXPECT_LT(t, N) << "request " << id;
      ++n;
    }
  EXPECT_EQ(n, 16 * 8);
  masked.sample_vocab = V + 1;
  EXPECT_ERROR((Engine{model, masked}), "[Engine] sample_vocab must be in [1, vocab_size 97] (0: vocab_size), got 98");
}

TEST(Engine, BackgroundThreadServesSubmissions) {
  Generator gen(10);
  models::GPT model(config(false), &gen);
  Engine engine(model, {2});
  std::mutex m;
  std::condition_variable cv;
  int done = 0;
  engine.start();
  for (int i = 0; i < 3; ++i) {
    Request r;
    r.prompt = {int64_t(i + 1)};
    r.max_tokens = 4;
    r.on_event = [&](const TokenEvent& e) {
      if (e.finish == FinishReason::none) return;
      std::lock_guard<std::mutex> lock(m);
      ++done;
      cv.notify_all();
    };
    engine.submit(std::move(r));
  }
  std::unique_lock<std::mutex> lock(m);
  EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return done == 3; }));
  lock.unlock();
  engine.stop();
}

}  // namespace
}  // namespace ember::infer
