// PPO loop (chat/ppo.h) on a tiny model: with a known reward function the mean
// reward rises while the KL to the reference stays bounded; the same seed gives
// the same run; resuming reproduces the uninterrupted run, also after SIGTERM
// stopped it (after the iteration, with a checkpoint); a reward checkpoint
// is read (score normalised with its reward_mean / reward_std, the critic
// starts as the reward model on that scale); the reference and group baselines; PPO-ptx; wrong kinds
// and a foreign tokenizer are clear errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "chat/chat_test_util.h"
#include "ember/chat/curriculum.h"
#include "ember/chat/ppo.h"
#include "ember/core/error.h"
#include "ember/models/value_model.h"
#include "ember/tokenizer/train.h"
#include "ember/train/checkpoint.h"
#include "test_util.h"

namespace ember::chat {
namespace {
namespace fs = std::filesystem;

models::GPTConfig tiny_config(int64_t vocab) {
  models::GPTConfig cfg = models::GPTConfig::preset("tiny");
  cfg.n_layer = 2, cfg.n_head = 2, cfg.n_kv_head = 2, cfg.n_embd = 64, cfg.block_size = 96;
  cfg.vocab_size = vocab;
  return cfg;
}

// Shared fixture files: curriculum prompts, a tiny "sft" policy, a reward model
// with a hand-set head (constant 0.75), its tokenizer.
class PpoTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = ::testing::TempDir() + "/ember_ppo_test_" + std::to_string(::getpid());
    fs::remove_all(root_);
    write_curriculum(root_ + "/data", curriculum_preset("tiny"), 7);
    const Tokenizer& tok = testing::curriculum_tokenizer();
    tok.save(root_ + "/tokenizer");
    const models::GPTConfig cfg = tiny_config(int64_t(tok.vocab_size()));
    Generator gen(1);
    models::GPT policy(cfg, &gen);
    train::CheckpointSave sft{&policy, nullptr, {{"kind", "sft"}, {"step", 0}, {"config", cfg.to_json()}},
                              {{root_ + "/tokenizer", "tokenizer"}}};
    train::save_checkpoint(root_ + "/sft", 0, sft);
    models::ValueModel rm(cfg, &gen);
    rm.score->bias.data<float>()[0] = 0.75f;  // every reply scores 0.75
    train::CheckpointSave r{&rm,
                            nullptr,
                            {{"kind", "reward"}, {"step", 0}, {"config", cfg.to_json()}, {"reward_mean", 0.25},
                             {"reward_std", 0.5}},
                            {{root_ + "/tokenizer", "tokenizer"}}};
    train::save_checkpoint(root_ + "/rm", 0, r);
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static PpoOptions base(const std::string& out) {
    PpoOptions o;
    o.policy = root_ + "/sft";
    o.prompts = root_ + "/data/prompts_heldout.jsonl";
    o.out_dir = root_ + "/" + out;
    o.rollout_batch = 16;
    o.minibatch = 8;
    o.ppo_epochs = 2;
    o.max_new_tokens = 8;
    o.lr = 3e-3;
    o.critic_lr = 3e-3;
    o.kl_coef = 0.02;
    o.threads = 1;
    o.quiet = true;
    // The share of reply tokens whose id is a multiple of 8: ~1/8 for the
    // near-uniform initial policy, 1 for a policy that learned the rule.
    o.reward_fn = [](const PromptRecord&, const std::string&, const std::vector<int64_t>& ids) {
      if (ids.empty()) return 0.0;
      double hits = 0;
      for (int64_t t : ids) hits += t % 8 == 0;
      return hits / double(ids.size());
    };
    return o;
  }
  static std::string root_;
};
std::string PpoTest::root_;

double mean_field(const std::vector<nlohmann::json>& h, size_t from, size_t to, const char* key) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += h[i].at(key).get<double>();
  return s / double(to - from);
}

TEST_F(PpoTest, KnownRewardRisesWithBoundedKl) {
  PpoOptions o = base("rise");
  o.iterations = 30;
  o.eval_prompts_file = root_ + "/data/prompts_heldout.jsonl";
  o.eval_count = 4;
  o.eval_max_new_tokens = 4;
  const PpoResult r = ppo(o);
  ASSERT_EQ(r.history.size(), 30u);
  const double first = mean_field(r.history, 0, 5, "reward"), last = mean_field(r.history, 25, 30, "reward");
  const double kl_last = mean_field(r.history, 25, 30, "kl");
  std::cout << "[ppo] kl_coef 0.02: reward " << first << " -> " << last << ", KL per reply " << kl_last << std::endl;
  EXPECT_LT(first, 0.25);
  EXPECT_GT(last, 0.5);
  EXPECT_GT(last, 3 * first);
  for (const auto& h : r.history) {
    // A reply of 8 tokens cannot drift further than 8 * ln(384) ~ 48 nats from a
    // near-uniform reference; all mass on the 48 rewarded ids costs 8 * ln(8) ~ 17.
    EXPECT_LT(h.at("kl").get<double>(), 25.0) << h.dump();
    // The engine (KV cache) and the training forward agree on the sampled tokens' log-probs.
    EXPECT_LT(h.at("logprob_gap").get<double>(), 1e-3) << h.dump();
  }

  // A strong penalty binds: at kl_coef 0.3 the KL-regularised optimum puts each
  // token on the rewarded ids with probability ~0.2 (KL ~0.2 nats per reply);
  // after 20 iterations the sampled estimate sits near 0.8 (seed 1337).
  PpoOptions s = base("rise_strong_kl");
  s.iterations = 20;
  s.kl_coef = 0.3;
  const PpoResult rs = ppo(s);
  const double kl_strong = mean_field(rs.history, 15, 20, "kl");
  std::cout << "[ppo] kl_coef 0.3: reward " << mean_field(rs.history, 0, 5, "reward") << " -> "
            << mean_field(rs.history, 15, 20, "reward") << ", KL per reply " << kl_strong << std::endl;
  for (const auto& h : rs.history) EXPECT_LT(h.at("kl").get<double>(), 2.0) << h.dump();
  EXPECT_LT(kl_strong, 0.2 * kl_last);
  // The first minibatch of the first epoch sees ratio 1; over the iteration it moves, but stays near.
  EXPECT_NEAR(r.history[0].at("ratio").get<double>(), 1.0, 0.2);
  EXPECT_EQ(r.oracle_before.prompts, 4);
  EXPECT_EQ(r.oracle.prompts, 4);
  const nlohmann::json tj = train::read_trainer_json(r.checkpoint);
  EXPECT_EQ(tj.at("kind"), "ppo");
  EXPECT_EQ(tj.at("step"), 30);
  for (const char* f : {"model.safetensors", "optimizer.safetensors", "critic/model.safetensors",
                        "critic/optimizer.safetensors", "tokenizer/tokenizer.json"})
    EXPECT_TRUE(fs::exists(r.checkpoint + "/" + f)) << f;
  EXPECT_TRUE(fs::exists(o.out_dir + "/reward.svg"));
  EXPECT_TRUE(fs::exists(o.out_dir + "/kl.svg"));
  EXPECT_TRUE(fs::exists(o.out_dir + "/metrics.jsonl"));
}

// A "rollout" record without its timings.
nlohmann::json strip(nlohmann::json j) {
  for (const char* k : {"generate_s", "experience_s", "train_s", "time_s"}) j.erase(k);
  return j;
}

// ppo(o) fails with an error whose message contains `part`.
void expect_ppo_error(const PpoOptions& o, const std::string& part) {
  try {
    ppo(o);
    FAIL() << "expected an error containing " << part;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST_F(PpoTest, SameSeedSameRunAndResumeMatches) {
  PpoOptions o = base("det_a");
  o.iterations = 3;
  o.kl_target = 0.5;  // the adaptive coefficient is part of the resumed state
  o.kl_horizon = 100;
  const PpoResult a = ppo(o);
  o.out_dir = root_ + "/det_b";
  o.iterations = 2;
  const PpoResult b = ppo(o);
  ASSERT_EQ(b.history.size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(strip(a.history[i]), strip(b.history[i])) << i;
  o.iterations = 3;
  o.resume = true;
  const PpoResult c = ppo(o);
  ASSERT_EQ(c.history.size(), 1u);
  EXPECT_EQ(c.iterations, 3);
  EXPECT_EQ(strip(a.history[2]), strip(c.history[0]));
  // Another seed, another run.
  o = base("det_c");
  o.iterations = 1;
  o.seed = 99;
  EXPECT_NE(strip(ppo(o).history[0]), strip(a.history[0]));
}

TEST_F(PpoTest, SignalStopsAfterTheIterationWithACheckpointAndResumeMatches) {
  PpoOptions o = base("signal_full");
  o.iterations = 3;
  const PpoResult full = ppo(o);
  // SIGTERM arrives while iteration 2 scores its first reply: the iteration
  // finishes, its checkpoint is written and the run stops.
  o.out_dir = root_ + "/signal_stopped";
  const RewardFn reward = o.reward_fn;
  int64_t calls = 0;
  o.reward_fn = [&](const PromptRecord& p, const std::string& reply, const std::vector<int64_t>& ids) {
    if (++calls == o.rollout_batch + 1) std::raise(SIGTERM);
    return reward(p, reply, ids);
  };
  const PpoResult stopped = ppo(o);
  EXPECT_TRUE(stopped.interrupted);
  EXPECT_EQ(stopped.signal, SIGTERM);
  EXPECT_EQ(stopped.iterations, 2);
  ASSERT_EQ(stopped.history.size(), 2u);
  EXPECT_EQ(train::read_trainer_json(stopped.checkpoint).at("step"), 2);
  o.reward_fn = reward;
  o.resume = true;
  const PpoResult resumed = ppo(o);
  EXPECT_FALSE(resumed.interrupted);
  EXPECT_EQ(resumed.signal, 0);
  ASSERT_EQ(resumed.history.size(), 1u);
  EXPECT_EQ(strip(full.history[2]), strip(resumed.history[0]));
}

// PPO-ptx: the demonstrations' loss joins the actor's. On the untrained tiny
// policy, whose loss on the demonstrations starts near ln(vocab), it falls
// within a few iterations; its rows follow the optimizer step, so a resumed run
// matches the uninterrupted one. Asking for it without data is an error.
TEST_F(PpoTest, PtxTrainsTheActorOnTheDemonstrationsAndResumes) {
  PpoOptions o = base("ptx_a");
  o.iterations = 4;
  o.ptx_data = root_ + "/data/sft_train.jsonl";
  o.ptx_coef = 1.0;
  o.ptx_rows = 2;
  const PpoResult a = ppo(o);
  ASSERT_EQ(a.history.size(), 4u);
  for (const auto& h : a.history) {
    ASSERT_TRUE(h.contains("ptx_loss")) << h.dump();
    EXPECT_TRUE(std::isfinite(h.at("ptx_loss").get<double>()));
  }
  const double first = a.history[0].at("ptx_loss").get<double>(), last = a.history[3].at("ptx_loss").get<double>();
  std::cout << "[ppo] ptx loss " << first << " -> " << last << std::endl;
  EXPECT_GT(first, 3.0);
  EXPECT_LT(last, 0.9 * first);
  EXPECT_EQ(train::read_trainer_json(a.checkpoint).at("options").at("ptx_coef"), 1.0);

  o.out_dir = root_ + "/ptx_b";
  o.iterations = 2;
  ASSERT_EQ(ppo(o).history.size(), 2u);
  o.iterations = 4;
  o.resume = true;
  const PpoResult resumed = ppo(o);
  ASSERT_EQ(resumed.history.size(), 2u);
  EXPECT_EQ(strip(a.history[3]), strip(resumed.history[1]));

  // Each optimizer step reads the next rows. With one step per iteration and
  // no learning (lr 0), the iterations' losses differ only by their rows: a
  // step index stuck at 0 would log one loss three times.
  PpoOptions one = o;
  one.out_dir = root_ + "/ptx_one";
  one.resume = false;
  one.iterations = 3;
  one.ppo_epochs = 1;
  one.minibatch = one.rollout_batch;
  one.lr = one.critic_lr = 0;
  one.ptx_rows = 1;
  std::vector<double> losses;
  for (const auto& h : ppo(one).history) losses.push_back(h.at("ptx_loss").get<double>());
  ASSERT_EQ(losses.size(), 3u);
  EXPECT_NE(losses[0], losses[1]);
  EXPECT_NE(losses[1], losses[2]);

  PpoOptions off = base("ptx_off");
  off.iterations = 1;
  EXPECT_FALSE(ppo(off).history[0].contains("ptx_loss"));
  off.ptx_coef = 0.5;
  expect_ppo_error(off, "needs --ptx-data");
  off.ptx_coef = -1;
  off.ptx_data = o.ptx_data;
  expect_ppo_error(off, "--ptx-coef must be >= 0");
  off.ptx_coef = 1;
  off.ptx_rows = 0;
  expect_ppo_error(off, "--ptx-rows must be positive");
}

TEST_F(PpoTest, RewardCheckpointIsNormalisedAndSeedsTheCritic) {
  PpoOptions o = base("with_rm");
  o.reward_fn = nullptr;
  o.reward = root_ + "/rm";
  o.iterations = 1;
  const PpoResult r = ppo(o);
  ASSERT_EQ(r.history.size(), 1u);
  const nlohmann::json& h = r.history[0];
  EXPECT_DOUBLE_EQ(h.at("reward").get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(h.at("score").get<double>(), 1.0);  // (0.75 - 0.25) / 0.5
  // The critic is the reward model at first, its head mapped to the scores'
  // scale: (0.75 - 0.25) / 0.5 at every position, the score it learns to predict.
  EXPECT_NEAR(h.at("value_mean").get<double>(), 1.0, 1e-6);
  o.out_dir = root_ + "/rm_sft_critic";
  o.critic_init = "sft";
  EXPECT_NEAR(ppo(o).history[0].at("value_mean").get<double>(), 0.0, 1e-6);  // zero head
}

TEST_F(PpoTest, ReferenceBaselineMeasuresEachRewardFromThePromptsIdealReply) {
  PpoOptions o = base("baseline_rm");
  o.reward_fn = nullptr;
  o.reward = root_ + "/rm";
  o.iterations = 1;
  o.reward_baseline = "reference";
  // The reference replies score 0.75 like every rollout: (0.75 - 0.75) / 0.5,
  // and the critic starts there too (its head measured from the mean baseline).
  const nlohmann::json h = ppo(o).history[0];
  EXPECT_DOUBLE_EQ(h.at("score").get<double>(), 0.0);
  EXPECT_NEAR(h.at("value_mean").get<double>(), 0.0, 1e-6);
  // A programmatic reward scores the reference's ids (with <|im_end|>) too:
  // a reply's length minus its reference's, per prompt.
  PpoOptions f = base("baseline_fn");
  f.iterations = 1;
  f.reward_baseline = "reference";
  f.reward_fn = [](const PromptRecord&, const std::string&, const std::vector<int64_t>& ids) {
    return double(ids.size());
  };
  PpoOptions m = f;
  m.out_dir = root_ + "/baseline_fn_mean";
  m.reward_baseline = "mean";
  const nlohmann::json with_ref = ppo(f).history[0], with_mean = ppo(m).history[0];
  EXPECT_EQ(with_ref.at("reward"), with_mean.at("reward"));  // the same rollouts
  EXPECT_LT(with_ref.at("score").get<double>(), with_mean.at("score").get<double>() - 1.0);
  // Prompts without a reference reply cannot be measured from one.
  std::ofstream(root_ + "/no_reference.jsonl") << "{\"prompt\": \"How old is Mia?\"}\n";
  f.prompts = root_ + "/no_reference.jsonl";
  EXPECT_ERROR(ppo(f), "[ppo] " + root_ + "/no_reference.jsonl: prompt 1: --reward-baseline reference needs a \"reference\"");
  f.reward_baseline = "median";
  EXPECT_ERROR(ppo(f), "[ppo] --reward-baseline must be 'mean', 'reference' or 'group', got 'median'");
}

TEST_F(PpoTest, GroupBaselineScoresEachReplyAgainstTheOtherRepliesToItsPrompt) {
  // Reward: the reply's length. Sampled in groups of 4 replies per prompt and
  // measured from the mean of the other three (leave-one-out), the scores of a
  // group sum to zero: r_i - (S - r_i) / 3 over i gives S - S.
  PpoOptions o = base("group");
  o.iterations = 2;
  o.group_size = 4;
  o.reward_baseline = "group";
  o.reward_fn = [](const PromptRecord&, const std::string&, const std::vector<int64_t>& ids) {
    return double(ids.size());
  };
  const PpoResult r = ppo(o);
  ASSERT_EQ(r.history.size(), 2u);
  for (const auto& h : r.history) {
    EXPECT_NEAR(h.at("score").get<double>(), 0.0, 1e-12) << h.dump();
    EXPECT_GT(h.at("reward").get<double>(), 0.0);
    // The near-uniform tiny policy never samples one reply twice.
    EXPECT_DOUBLE_EQ(h.at("varied_groups").get<double>(), 1.0);
  }
  // The mean baseline on the same groups scores the raw lengths (reward_std 1).
  PpoOptions m = o;
  m.out_dir = root_ + "/group_mean";
  m.reward_baseline = "mean";
  const nlohmann::json first = ppo(m).history[0];
  m.group_size = 1;
  m.out_dir = root_ + "/group_size_one";
  EXPECT_FALSE(ppo(m).history[0].contains("varied_groups"));  // no groups, nothing to log
  EXPECT_EQ(first.at("reward"), r.history[0].at("reward"));  // the same rollouts
  EXPECT_DOUBLE_EQ(first.at("score").get<double>(), first.at("reward").get<double>());

  PpoOptions bad = o;
  bad.group_size = 3;  // 16 replies do not split into groups of 3
  EXPECT_ERROR(ppo(bad), "[ppo] --group-size must be positive and divide --rollout-batch (16), got 3");
  bad.group_size = 1;
  EXPECT_ERROR(ppo(bad), "[ppo] --reward-baseline group compares the replies to one prompt: it needs --group-size 2");
}

TEST_F(PpoTest, OracleRewardGradesEachReplyWithTheCurriculumsRubric) {
  PpoOptions o = base("oracle");
  o.reward_fn = nullptr;
  o.reward = "oracle";
  o.iterations = 1;
  const PpoResult r = ppo(o);
  ASSERT_EQ(r.history.size(), 1u);
  // The untrained tiny policy's replies are noise: the grader gives them 0.
  EXPECT_DOUBLE_EQ(r.history[0].at("reward").get<double>(), 0.0);
  EXPECT_EQ(train::read_trainer_json(r.checkpoint).at("options").at("reward"), "oracle");
  // Each prompt's reference reply is an ideal answer, which the grader scores 1:
  // measured from it, every noise reply scores 0 - 1.
  PpoOptions ref = o;
  ref.out_dir = root_ + "/oracle_reference";
  ref.reward_baseline = "reference";
  EXPECT_DOUBLE_EQ(ppo(ref).history[0].at("score").get<double>(), -1.0);
  // Prompts without grading keys cannot be graded.
  std::ofstream(root_ + "/ungraded.jsonl") << "{\"prompt\": \"How old is Mia?\"}\n";
  o.prompts = root_ + "/ungraded.jsonl";
  EXPECT_ERROR(ppo(o), "[ppo] " + root_ + "/ungraded.jsonl: prompt 1: --reward oracle needs a grading key");
}

TEST_F(PpoTest, WrongKindsAndForeignTokenizerAreClearErrors) {
  PpoOptions o = base("err");
  o.iterations = 1;
  o.reward_fn = nullptr;
  o.reward = root_ + "/sft";  // an SFT checkpoint where a reward model belongs
  expect_ppo_error(o, "\"sft\" checkpoint");
  o.reward = root_ + "/rm";
  o.policy = root_ + "/rm";  // a reward model as the policy
  expect_ppo_error(o, "\"reward\" checkpoint");

  // A reward model trained with another tokenizer.
  BpeTrainOptions bo;
  bo.vocab_size = 300;
  const Tokenizer other = train_bpe({std::string("a different corpus entirely, with other merges and words ") +
                                     "repeated repeated repeated so that pairs merge merge merge"},
                                    bo);
  other.save(root_ + "/tok_other");
  const models::GPTConfig cfg = tiny_config(int64_t(other.vocab_size()));
  models::ValueModel rm(cfg);
  train::CheckpointSave s{&rm, nullptr, {{"kind", "reward"}, {"step", 0}, {"config", cfg.to_json()}},
                          {{root_ + "/tok_other", "tokenizer"}}};
  train::save_checkpoint(root_ + "/rm_other", 0, s);
  o.policy = root_ + "/sft";
  o.reward = root_ + "/rm_other";
  expect_ppo_error(o, "tokenizer");

  o = base("err2");
  o.critic_init = "value";
  expect_ppo_error(o, "--critic-init");
}

}  // namespace
}  // namespace ember::chat
