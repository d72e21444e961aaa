// Reward model: the Bradley-Terry loss and its gradient against a hand
// computation, padding-invariant scores, a short training run on the tiny
// curriculum that lifts held-out pairwise accuracy well above chance, a run
// stopped and resumed that equals an uninterrupted one bit for bit, and clear
// errors for a wrong checkpoint kind, a missing resume checkpoint and a
// malformed preference line; the likelihood feature's weight fit, the
// checkpoint that carries its frozen model, and the score it adds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "chat/preference_test_util.h"
#include "ember/autograd/grad_mode.h"
#include "ember/chat/likelihood_feature.h"
#include "ember/chat/preference_batch.h"
#include "ember/chat/reward.h"
#include "ember/core/error.h"
#include "ember/nn/copy.h"
#include "ember/ops/ops.h"
#include "ember/train/checkpoint.h"

namespace ember::chat {
namespace {
namespace fs = std::filesystem;

double sigmoid_d(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double nls_d(double x) { return std::log1p(std::exp(-x)); }  // -log sigmoid(x) for moderate x

std::string temp_root(const std::string& name) {
  return ::testing::TempDir() + "/ember_" + name + "_" + std::to_string(::getpid());
}

TEST(RewardLoss, BradleyTerryMatchesHandComputation) {
  // Two lists: three ranked responses (3 pairs, each weighing 1/(2*3)) and a
  // chosen/rejected pair the scores get wrong (weighing 1/2).
  const std::vector<double> s = {2.0, 0.5, -0.25, 0.3, 0.8};
  Tensor scores = tensor(s, {5}, DType::f64);
  scores.requires_grad_();
  const RankedPairs pairs = ranked_pairs({3, 2}, DType::f64);
  ASSERT_EQ(pairs.count, 4);
  EXPECT_EQ(pairs.better.to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 1, 3}));
  EXPECT_EQ(pairs.worse.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 2, 4}));
  Tensor loss = bradley_terry_loss(scores, pairs);
  loss.backward();

  const double d01 = 1.5, d02 = 2.25, d12 = 0.75, d34 = -0.5;
  const double want = (nls_d(d01) + nls_d(d02) + nls_d(d12)) / 6.0 + nls_d(d34) / 2.0;
  EXPECT_NEAR(loss.item<double>(), want, 1e-14);
  // d/dd of -log sigmoid(d) is -sigmoid(-d); the better response gets it, the worse its negative.
  const std::vector<double> want_grad = {
      (-sigmoid_d(-d01) - sigmoid_d(-d02)) / 6.0,
      (sigmoid_d(-d01) - sigmoid_d(-d12)) / 6.0,
      (sigmoid_d(-d02) + sigmoid_d(-d12)) / 6.0,
      -sigmoid_d(-d34) / 2.0,
      sigmoid_d(-d34) / 2.0,
  };
  const std::vector<double> g = scores.grad().to_vector<double>();
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(g[i], want_grad[i], 1e-15) << i;
}

TEST(RewardLoss, NegLogSigmoidIsStableWithExactGradientAtZero) {
  Tensor x = tensor({0.0, 100.0, -100.0, 3.0}, {4}, DType::f64);
  x.requires_grad_();
  Tensor y = neg_log_sigmoid(x);
  sum(y).backward();
  const std::vector<double> v = y.to_vector<double>(), g = x.grad().to_vector<double>();
  EXPECT_NEAR(v[0], std::log(2.0), 1e-15);
  // log(1 + e^-100) rounds to log(1) = 0: absolute, not relative, precision far out in the tail.
  EXPECT_GE(v[1], 0.0);
  EXPECT_LE(v[1], 1e-40);
  EXPECT_NEAR(v[2], 100.0, 1e-12);
  EXPECT_NEAR(v[3], nls_d(3.0), 1e-15);
  // d/dx = sigmoid(x) - 1: -1/2 at 0, where relu/abs forms give 0 and a zero-headed model would never move.
  EXPECT_NEAR(g[0], -0.5, 1e-15);
  EXPECT_NEAR(g[1], 0.0, 1e-40);
  EXPECT_NEAR(g[2], -1.0, 1e-15);
  EXPECT_NEAR(g[3], sigmoid_d(3.0) - 1.0, 1e-15);
}

TEST(RewardModel, LengthGroupsCutPaddingAndKeepRowOrder) {
  std::vector<std::vector<int64_t>> rows;
  for (int64_t n : {5, 100, 6, 7, 98}) rows.emplace_back(size_t(n), n);
  std::vector<const std::vector<int64_t>*> ptrs;
  for (const auto& r : rows) ptrs.push_back(&r);
  // One pass pads to 5 * 100 = 500 tokens; {5, 6, 7} + {98, 100} pads to 221; a third
  // group ({5, 6} {7} {98, 100}: 219) saves under 10% and is not taken.
  const auto groups = length_groups(ptrs, 3);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0], (std::vector<size_t>{0, 2, 3}));
  EXPECT_EQ(groups[1], (std::vector<size_t>{4, 1}));
  EXPECT_EQ(length_groups(ptrs, 1).size(), 1u);
  // Values come back in the rows' order: here each row's length, read from its first token.
  const Tensor v = per_row_grouped(ptrs, [&](const std::vector<size_t>& g) {
    std::vector<double> x;
    for (size_t r : g) x.push_back(double(rows[r][0]));
    return tensor(x, {int64_t(x.size())}, DType::f64);
  });
  EXPECT_EQ(v.to_vector<double>(), (std::vector<double>{5, 100, 6, 7, 98}));
}

TEST(RewardModel, RowsEndAtImEndAndPaddingDoesNotChangeScores) {
  const ChatTemplate tmpl(testing::curriculum_tokenizer());
  PreferenceRecord rec;
  rec.prompt = {{Role::user, "How old is Mia?"}};
  rec.responses = {"Mia is 34 years old.", "34.", "What a stupid question. Mia is 34 years old, I think, maybe."};
  const RankedRows rows = render_ranked(tmpl, rec, 128, "test");
  const std::vector<int64_t> prompt = tmpl.render_prompt(rec.prompt);
  ASSERT_EQ(rows.rows.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(rows.rows[i].back(), tmpl.turn_end_id());
    EXPECT_EQ(rows.response_start[i], int64_t(prompt.size()));
    EXPECT_TRUE(std::equal(prompt.begin(), prompt.end(), rows.rows[i].begin()));
    EXPECT_EQ(tmpl.decode_reply({rows.rows[i].data() + prompt.size(), rows.rows[i].size() - prompt.size()}),
              rec.responses[i]);
  }
  EXPECT_NE(rows.rows[0].size(), rows.rows[2].size());

  models::GPTConfig cfg = models::GPTConfig::preset("tiny");
  cfg.n_layer = 2, cfg.n_head = 2, cfg.n_kv_head = 2, cfg.n_embd = 32, cfg.block_size = 64;
  cfg.vocab_size = int64_t(tmpl.tokenizer().vocab_size());
  Generator gen(5);
  models::ValueModel model(cfg, &gen);
  {
    NoGradGuard no_grad;  // a non-zero head, or every score would be 0 regardless of padding
    nn::copy_(model.score->weight, randn(model.score->weight.shape(), DType::f32, Device::cpu(), &gen));
    nn::copy_(model.score->bias, full({1}, 0.25));
  }
  const std::vector<float> batched = score_conversations(model, tmpl, rows.rows);
  ASSERT_EQ(batched.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const float alone = score_conversations(model, tmpl, {rows.rows[i]}).at(0);
    // Not bit-equal: GEMMs of other shapes block and round differently; padding itself adds nothing.
    EXPECT_NEAR(batched[i], alone, 1e-5f * std::max(1.0f, std::abs(alone))) << i;
    EXPECT_NEAR(score_response(model, tmpl, rec.prompt, rec.responses[i]), alone, 1e-6f) << i;
  }
  EXPECT_NE(batched[0], batched[1]);
  // Batches of one row at a time give the same scores as one batch.
  const std::vector<float> one_by_one = score_conversations(model, tmpl, rows.rows, 1);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(one_by_one[i], batched[i], 1e-5f) << i;

  // Too long: the prompt loses tokens from the left; a response that cannot fit is an error.
  const int64_t tight = int64_t(rows.rows[2].size()) - 3;
  const RankedRows cut = render_ranked(tmpl, rec, tight, "test");
  EXPECT_EQ(int64_t(cut.rows[2].size()), tight);
  EXPECT_TRUE(std::equal(cut.rows[2].begin(), cut.rows[2].end(), rows.rows[2].begin() + 3));
  EXPECT_EQ(cut.response_start[2], rows.response_start[2] - 3);
  EXPECT_EQ(cut.prompt_tokens_cut, 3);
  EXPECT_ERROR_HAS(render_ranked(tmpl, rec, 3, "prefs.jsonl record 4"), "prefs.jsonl record 4: response 1 is");
}

// A short run on the tiny curriculum from the setup's pre/ checkpoint into rm/.
RewardOptions tiny_run(const testing::TinySetup& s, int64_t steps) {
  RewardOptions o;
  o.init = s.root + "/pre";
  o.data = s.data + "/preferences_train.jsonl";
  o.val_data = s.data + "/preferences_val.jsonl";
  o.out_dir = s.root + "/rm";
  o.steps = steps;
  o.batch_size = 8;
  o.lr = 3e-3;
  o.eval_every = 0;
  o.quiet = true;
  o.threads = 1;  // 2 shared cores: OpenMP threads that spin while descheduled cost far more than they give
  return o;
}

TEST(RewardModel, ShortTrainingLiftsHeldOutPairwiseAccuracy) {
  const testing::TinySetup s = testing::make_tiny_setup(temp_root("reward_test"));
  RewardOptions o = tiny_run(s, 80);
  o.likelihood = "none";  // the head alone (the feature has its own test below)
  const RewardResult r = train_reward_model(o);
  EXPECT_EQ(r.step, 80);
  // The zero head scores every response 0: all pairs tie, loss log 2, accuracy exactly 1/2.
  EXPECT_EQ(r.val_before.accuracy, 0.5);
  EXPECT_NEAR(r.val_before.loss, std::log(2.0), 1e-12);
  EXPECT_GT(r.val_before.pairs, r.val_before.lists);
  EXPECT_GT(r.val.accuracy, 0.7) << r.val_before.accuracy << " -> " << r.val.accuracy;
  EXPECT_LT(r.val.loss, r.val_before.loss);
  std::cout << "reward: held-out pairwise accuracy " << r.val_before.accuracy << " -> " << r.val.accuracy << " over "
            << r.val.pairs << " pairs, val loss " << r.val_before.loss << " -> " << r.val.loss << ", reward mean "
            << r.reward_mean << " std " << r.reward_std << "\n";

  const nlohmann::json tj = train::read_trainer_json(r.checkpoint);
  EXPECT_EQ(tj.at("kind"), "reward");
  EXPECT_EQ(tj.at("reward_mean").get<double>(), r.reward_mean);
  EXPECT_EQ(tj.at("reward_std").get<double>(), r.reward_std);
  EXPECT_EQ(r.reward_mean, r.val.chosen_mean);
  EXPECT_EQ(r.reward_std, r.val.all_std);
  EXPECT_GT(r.val.all_std, r.val.chosen_std);  // good and bad responses spread wider than the good alone
  EXPECT_TRUE(fs::exists(r.checkpoint + "/tokenizer/tokenizer.json"));
  EXPECT_FALSE(tj.contains("likelihood_weight"));
  EXPECT_FALSE(fs::exists(r.checkpoint + "/likelihood"));
  EXPECT_TRUE(fs::exists(o.out_dir + "/metrics.jsonl"));
  EXPECT_TRUE(fs::exists(o.out_dir + "/reward.svg"));

  // The checkpoint reloads (head included) to the same held-out accuracy.
  const RewardModelCheckpoint rm = load_reward_model(o.out_dir, "test");
  EXPECT_EQ(rm.reward_mean, r.reward_mean);
  const ChatTemplate tmpl(testing::curriculum_tokenizer());
  const std::vector<PreferenceRecord> val = read_preferences(o.val_data);
  EXPECT_EQ(pairwise_accuracy(*rm.model, tmpl, val, s.cfg.block_size, 8), r.val.accuracy);

  // The curriculum's lists carry their kind of question and reply labels, so
  // the accuracy breaks down; each part counts every pair once and the
  // pair-weighted mean of its accuracies is the overall one.
  const nlohmann::json b = r.val.breakdown.to_json();
  for (const char* part : {"by_kind", "by_labels"}) {
    ASSERT_TRUE(b.contains(part)) << b.dump();
    int64_t pairs = 0;
    double right = 0;
    for (const auto& [key, t] : b[part].items()) {
      pairs += t["pairs"].get<int64_t>();
      right += t["accuracy"].get<double>() * t["pairs"].get<double>();
    }
    EXPECT_EQ(pairs, r.val.pairs) << part;
    EXPECT_NEAR(right / double(pairs), r.val.accuracy, 1e-12) << part;
  }
  EXPECT_TRUE(b["by_kind"].contains("fact")) << b.dump();
  EXPECT_TRUE(b["by_labels"].contains("ideal>rude")) << b.dump();
  // Ranks that evaluated different lists add their tallies up key by key.
  PairBreakdown half = r.val.breakdown;
  std::vector<double> flat = half.flat();
  for (double& v : flat) v *= 2;
  half.set_flat(flat);
  EXPECT_EQ(half.by_kind.at("fact").pairs, 2 * r.val.breakdown.by_kind.at("fact").pairs);
  EXPECT_EQ(half.to_json()["by_kind"]["fact"]["accuracy"], b["by_kind"]["fact"]["accuracy"]);
  // metrics.jsonl's last evaluation holds it too.
  std::ifstream metrics(o.out_dir + "/metrics.jsonl");
  nlohmann::json last_eval;
  for (std::string line; std::getline(metrics, line);)
    if (auto j = nlohmann::json::parse(line); j["kind"] == "eval") last_eval = j;
  EXPECT_EQ(last_eval["val_breakdown"], b);

  // A reward checkpoint is not a policy: neither --init here nor a GPT where a reward model is wanted.
  o.init = r.checkpoint;
  o.out_dir = s.root + "/rm2";
  EXPECT_ERROR_HAS(train_reward_model(o), "is a \"reward\" checkpoint");
  EXPECT_ERROR_HAS(load_reward_model(s.root + "/pre", "ppo"), "is a \"pretrain\" checkpoint");
  fs::remove_all(s.root);
}

TEST(RewardLikelihood, FitTakesTheSmallestWeightOfTheBestAccuracyAndZeroWhenTheFeatureDoesNotHelp) {
  // Two lists of three, best first. The head orders list 0 right and list 1
  // wrong twice; the feature is flat on list 0 and ranks list 1 right.
  const std::vector<int64_t> sizes{3, 3};
  const std::vector<double> head{3, 2, 1, 0.0, 0.2, 0.1};
  const std::vector<double> helps{-1, -1, -1, -0.5, -3, -6};
  EXPECT_DOUBLE_EQ(lists_pairwise_accuracy(head, sizes), 4.0 / 6.0);
  // List 1 comes right once 0 - 0.5 w > 0.2 - 3 w, i.e. w > 0.08; the grid's
  // steps are 15% apart, so the first weight past 0.08 is below 0.08 * 1.15.
  const double w = fit_likelihood_weight(head, helps, sizes);
  EXPECT_GT(w, 0.08);
  EXPECT_LT(w, 0.08 * 1.15);
  std::vector<double> mixed(head.size());
  for (size_t i = 0; i < head.size(); ++i) mixed[i] = head[i] + w * helps[i];
  EXPECT_EQ(lists_pairwise_accuracy(mixed, sizes), 1.0);
  // A feature that ranks list 1 backwards only loses pairs: weight 0.
  EXPECT_EQ(fit_likelihood_weight(head, {-1, -1, -1, -6, -3, -0.5}, sizes), 0.0);
  // A zero head (step 0) ranks by the feature alone at any weight: the smallest, 0.001.
  EXPECT_DOUBLE_EQ(fit_likelihood_weight(std::vector<double>(6, 0.0), helps, sizes), 1e-3);
  // A tie counts one half.
  EXPECT_DOUBLE_EQ(lists_pairwise_accuracy({1, 1}, {2}), 0.5);
  EXPECT_ERROR_HAS(fit_likelihood_weight(head, {1, 2}, sizes), "6 head scores but 2 feature values");
}

TEST(RewardLikelihood, RunsFromBeforeTheFeatureResumeWithTheHeadAlone) {
  RewardOptions o;
  EXPECT_EQ(o.likelihood, "init");  // new runs: the feature
  o.update_from_json({{"seed", 5}});  // a checkpoint's options without "likelihood"
  EXPECT_EQ(o.likelihood, "none");
  o.update_from_json({{"likelihood", "init"}, {"likelihood_fit_lists", 40}});
  EXPECT_EQ(o.likelihood, "init");
  EXPECT_EQ(o.likelihood_fit_lists, 40);
  EXPECT_EQ(o.to_json()["likelihood"], "init");
}

TEST(RewardLikelihood, CheckpointCarriesTheFrozenModelAndScoresAddTheLowestTokenLogProb) {
  const testing::TinySetup s = testing::make_tiny_setup(temp_root("reward_likelihood"));
  RewardOptions o = tiny_run(s, 20);
  o.likelihood_fit_lists = 12;
  const RewardResult r = train_reward_model(o);
  // The figures are the combined reward's; the head's own accuracy is kept beside them.
  const nlohmann::json tj = train::read_trainer_json(r.checkpoint);
  EXPECT_EQ(tj.at("likelihood_weight").get<double>(), r.val.likelihood_weight);
  EXPECT_EQ(tj.at("val_accuracy_head").get<double>(), r.val.head_accuracy);
  EXPECT_EQ(tj.at("val_accuracy").get<double>(), r.val.accuracy);
  EXPECT_EQ(tj.at("likelihood_model"), "likelihood/model.safetensors");
  // At step 0 the head is zero: the reward ranks by the feature alone (a
  // weight of 0.001 head spreads, or 0 when the feature loses pairs).
  EXPECT_TRUE(r.val_before.likelihood_weight == 1e-3 || r.val_before.likelihood_weight == 0.0)
      << r.val_before.likelihood_weight;
  // The frozen model is the init's, byte for byte.
  auto bytes = [](const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  const train::ModelCheckpoint init = train::open_model_checkpoint(o.init, {}, "test");
  EXPECT_EQ(bytes(r.checkpoint + "/likelihood/model.safetensors"), bytes(init.model_path));

  // Reloaded, it evaluates to the same figures. (On this tiny data the
  // fitted weight depends on float rounding and can be 0: then no frozen model runs.)
  RewardModelCheckpoint rm = load_reward_model(o.out_dir, "test");
  EXPECT_EQ(rm.likelihood.weight, r.val.likelihood_weight);
  EXPECT_EQ(rm.likelihood.active(), r.val.likelihood_weight != 0);
  const ChatTemplate tmpl(testing::curriculum_tokenizer());
  const std::vector<PreferenceRecord> val = read_preferences(o.val_data);
  const RewardEval ev = evaluate_reward_model(*rm.model, tmpl, val, s.cfg.block_size, o.batch_size, &rm.likelihood);
  EXPECT_EQ(ev.accuracy, r.val.accuracy);
  EXPECT_EQ(ev.head_accuracy, r.val.head_accuracy);

  // score_replies = the head's score + weight * the lowest token log-probability,
  // the latter computed here from the frozen model's full logits.
  // Whatever was fitted, a checkpoint whose weight is 2 loads its frozen model and adds it.
  nlohmann::json weighted = tj;
  weighted["likelihood_weight"] = 2.0;
  std::ofstream(r.checkpoint + "/trainer.json") << weighted.dump();
  rm = load_reward_model(r.checkpoint, "test");
  ASSERT_TRUE(rm.likelihood.active());
  EXPECT_EQ(rm.likelihood.weight, 2.0);
  const RankedRows list = render_ranked(tmpl, val.at(0), s.cfg.block_size, "test");
  const std::vector<double> got = score_replies(rm, tmpl, list.rows, list.response_start);
  const std::vector<float> head = score_conversations(*rm.model, tmpl, list.rows);
  auto lowest_by_hand = [&](const std::vector<int64_t>& row, size_t start) {
    NoGradGuard no_grad;
    const Tensor logits = rm.likelihood.model->forward(tensor_i64(row, {1, int64_t(row.size())}));
    const std::vector<float> logp = contiguous(log_softmax(logits, -1)).to_vector<float>();
    const size_t V = size_t(logits.shape(2));
    double lowest = 0;
    for (size_t t = start; t < row.size(); ++t) lowest = std::min(lowest, double(logp[(t - 1) * V + size_t(row[t])]));
    return lowest;
  };
  for (size_t i = 0; i < list.rows.size(); ++i)
    EXPECT_NEAR(got[i], head[i] + 2.0 * lowest_by_hand(list.rows[i], size_t(list.response_start[i])), 1e-4) << i;
  // A row longer than the context keeps its last block_size tokens (as the
  // head reads it), and its reply start moves with it.
  std::vector<int64_t> longer = list.rows[0];
  const std::vector<int64_t> prompt(longer.begin(), longer.begin() + list.response_start[0]);
  while (longer.size() <= size_t(s.cfg.block_size)) longer.insert(longer.begin(), prompt.begin(), prompt.end());
  const size_t reply_tokens = list.rows[0].size() - size_t(list.response_start[0]);
  const std::vector<int64_t> tail(longer.end() - s.cfg.block_size, longer.end());
  const double got_long =
      score_replies(rm, tmpl, {longer}, {int64_t(longer.size() - reply_tokens)}).at(0);
  EXPECT_NEAR(got_long, score_conversations(*rm.model, tmpl, {tail}).at(0) +
                            2.0 * lowest_by_hand(tail, tail.size() - reply_tokens), 1e-4);

  // A checkpoint that lost its frozen model says which file is missing.
  fs::remove(r.checkpoint + "/likelihood/model.safetensors");
  EXPECT_ERROR_HAS(load_reward_model(r.checkpoint, "ppo"), "likelihood/model.safetensors: missing");
  o.likelihood = "sometimes";
  EXPECT_ERROR_HAS(train_reward_model(o), "--likelihood must be 'init' or 'none'");
  fs::remove_all(s.root);
}

TEST(RewardModel, StoppedAndResumedRunMatchesUninterrupted) {
  const testing::TinySetup s = testing::make_tiny_setup(temp_root("reward_resume"));
  RewardOptions o = testing::small_resume_run<RewardOptions>(s);
  o.lr = 3e-3;
  o.eval_every = 3;
  const auto [first, full, second] = testing::expect_resume_matches(o, s.root, 5, train_reward_model);
  EXPECT_EQ(second.reward_mean, full.reward_mean);
  EXPECT_EQ(second.reward_std, full.reward_std);

  // The stop's checkpoint is a complete reward model: statistics computed at
  // save time from its own weights (step 5 is no evaluation step).
  const nlohmann::json tj = train::read_trainer_json(first.checkpoint);
  EXPECT_EQ(tj.at("step"), 5);
  EXPECT_EQ(tj.at("reward_stats"), "val");
  EXPECT_EQ(tj.at("data").at("epoch"), 2);   // 5 x 4 = 20 lists: two epochs begun...
  EXPECT_EQ(tj.at("data").at("cursor"), 10);  // ...the second one used up
  const RewardModelCheckpoint rm = load_reward_model(first.checkpoint, "test");
  const ChatTemplate tmpl(testing::curriculum_tokenizer());
  // The default: the head plus the likelihood feature (its fitted weight may be 0 on this tiny data).
  EXPECT_EQ(rm.likelihood.weight, tj.at("likelihood_weight").get<double>());
  const RewardEval ev =
      evaluate_reward_model(*rm.model, tmpl, read_preferences(o.val_data), s.cfg.block_size, 4, &rm.likelihood);
  EXPECT_EQ(rm.reward_mean, ev.chosen_mean);
  EXPECT_EQ(rm.reward_std, ev.all_std);
  EXPECT_EQ(rm.reward_mean, first.reward_mean);
  EXPECT_NE(rm.reward_mean, full.reward_mean);

  // --resume needs a reward checkpoint in --out: one line naming the folder.
  o.resume = true;
  o.out_dir = s.root + "/nothing_here";
  EXPECT_ERROR_HAS(train_reward_model(o), s.root + "/nothing_here has no checkpoint");
  EXPECT_FALSE(fs::exists(o.out_dir));
  o.out_dir = s.root + "/pre";
  EXPECT_ERROR_HAS(train_reward_model(o), "is not a resumable reward checkpoint");
  fs::remove_all(s.root);
}

TEST(RewardModel, MalformedPreferenceLineNamesFileAndLine) {
  const testing::TinySetup s = testing::make_tiny_setup(temp_root("reward_bad"), "sft");
  const std::string bad = s.root + "/bad.jsonl";
  {
    std::ofstream f(bad);
    f << R"({"prompt": "How old is Mia?", "chosen": "34.", "rejected": "No idea."})" << "\n";
    f << R"({"prompt": "How old is Mia?", "chosen": "34."})" << "\n";
  }
  RewardOptions o;
  o.init = s.init;
  o.data = bad;
  o.out_dir = s.root + "/rm";
  o.steps = 1;
  o.quiet = true;
  EXPECT_ERROR_HAS(train_reward_model(o), "bad.jsonl:2");
  fs::remove_all(s.root);
}

}  // namespace
}  // namespace ember::chat
