// DPO: the loss and its gradient against a hand computation on fixed
// log-probabilities, exactly log 2 at step 0 (policy == reference), response
// log-probabilities that cover the reply tokens only, and a short run on the
// tiny curriculum that raises held-out preference accuracy and margin, and a
// run stopped and resumed that equals an uninterrupted one bit for bit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "chat/preference_test_util.h"
#include "ember/chat/dpo.h"
#include "ember/chat/preference_batch.h"
#include "ember/core/error.h"
#include "ember/ops/ops.h"
#include "ember/train/checkpoint.h"
#include "ember/train/model_checkpoint.h"

namespace ember::chat {
namespace {
namespace fs = std::filesystem;

double sigmoid_d(double x) { return 1.0 / (1.0 + std::exp(-x)); }

TEST(DpoLoss, MatchesHandComputation) {
  // A ranked list of three (pairs 0>1, 0>2, 1>2, weight 1/6 each) and a chosen/rejected pair (weight 1/2).
  const std::vector<double> pi = {-5.0, -7.5, -6.0, -3.0, -4.0};
  const std::vector<double> ref = {-6.0, -7.0, -5.0, -2.5, -4.5};
  const double beta = 0.1;
  Tensor p = tensor(pi, {5}, DType::f64), r = tensor(ref, {5}, DType::f64);
  p.requires_grad_();
  r.requires_grad_();
  const RankedPairs pairs = ranked_pairs({3, 2}, DType::f64);
  Tensor loss = dpo_loss(p, r, pairs, beta);
  loss.backward();

  // implicit rewards beta * (pi - ref): 0.1, -0.05, -0.1, -0.05, 0.05
  const double r0 = 0.1, r1 = -0.05, r2 = -0.1, r3 = -0.05, r4 = 0.05;
  const std::vector<double> rw = dpo_implicit_rewards(p, r, beta).to_vector<double>();
  const std::vector<double> want_rw = {r0, r1, r2, r3, r4};
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(rw[i], want_rw[i], 1e-15) << i;
  const double m01 = r0 - r1, m02 = r0 - r2, m12 = r1 - r2, m34 = r3 - r4;
  auto nls = [](double m) { return std::log1p(std::exp(-m)); };
  EXPECT_NEAR(loss.item<double>(), (nls(m01) + nls(m02) + nls(m12)) / 6.0 + nls(m34) / 2.0, 1e-15);
  // d loss / d pi_w = -beta * w * sigmoid(-m), d loss / d pi_l = +beta * w * sigmoid(-m).
  const std::vector<double> want = {
      -beta * (sigmoid_d(-m01) + sigmoid_d(-m02)) / 6.0,
      beta * (sigmoid_d(-m01) - sigmoid_d(-m12)) / 6.0,
      beta * (sigmoid_d(-m02) + sigmoid_d(-m12)) / 6.0,
      -beta * sigmoid_d(-m34) / 2.0,
      beta * sigmoid_d(-m34) / 2.0,
  };
  const std::vector<double> g = p.grad().to_vector<double>();
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(g[i], want[i], 1e-16) << i;
  // The reference is a constant.
  EXPECT_FALSE(r.grad().defined());

  // Policy == reference: every margin is 0 and the loss is log 2 whatever the log-probs.
  EXPECT_NEAR(dpo_loss(r, r, pairs, beta).item<double>(), std::log(2.0), 1e-15);
}

TEST(DpoLoss, ResponseLogProbsCoverReplyTokensOnly) {
  const ChatTemplate tmpl(testing::curriculum_tokenizer());
  PreferenceRecord rec;
  rec.prompt = {{Role::user, "What pet does Mia have?"}};
  rec.responses = {"Mia has a cat.", "A dog."};
  const RankedRows rows = render_ranked(tmpl, rec, 64, "test");
  std::vector<const std::vector<int64_t>*> ptrs{&rows.rows[0], &rows.rows[1]};
  const PaddedRows pad = pad_right(ptrs, tmpl.turn_end_id());
  const int64_t V = int64_t(tmpl.tokenizer().vocab_size());
  Generator gen(9);
  Tensor logits = randn({2, pad.width - 1, V}, DType::f64, Device::cpu(), &gen);
  const std::vector<double> got = response_logps(logits, ptrs, rows.response_start).to_vector<double>();
  const Tensor lsm = log_softmax(logits, -1);
  const std::vector<double> l = lsm.to_vector<double>();
  for (size_t b = 0; b < 2; ++b) {
    double want = 0;
    for (size_t t = size_t(rows.response_start[b]); t < rows.rows[b].size(); ++t)
      want += l[(b * size_t(pad.width - 1) + t - 1) * size_t(V) + size_t(rows.rows[b][t])];
    EXPECT_NEAR(got[b], want, 1e-9) << b;
  }
}

TEST(Dpo, ShortRunStartsAtLog2AndRaisesPreferenceAccuracy) {
  const testing::TinySetup s =
      testing::make_tiny_setup(::testing::TempDir() + "/ember_dpo_test_" + std::to_string(::getpid()), "sft");
  DpoOptions o;
  o.init = s.root + "/pre";
  o.data = s.data + "/preferences_train.jsonl";
  o.val_data = s.data + "/preferences_val.jsonl";
  o.prompts = s.data + "/prompts_heldout.jsonl";
  o.eval_prompts = 2;
  o.max_new_tokens = 4;
  o.out_dir = s.root + "/dpo";
  o.steps = 30;
  o.batch_size = 8;
  o.lr = 2e-3;
  o.beta = 0.1;
  o.eval_every = 0;
  o.quiet = true;
  o.threads = 1;  // 2 shared cores: OpenMP threads that spin while descheduled cost far more than they give
  const DpoResult r = dpo(o);
  EXPECT_EQ(r.step, 30);
  // Step 0: policy == reference, so every margin is 0.
  EXPECT_NEAR(r.val_before.loss, std::log(2.0), 1e-12);
  EXPECT_EQ(r.val_before.accuracy, 0.5);
  EXPECT_EQ(r.val_before.margin, 0.0);
  std::ifstream metrics(o.out_dir + "/metrics.jsonl");
  std::string line;
  double first_train_loss = -1;
  while (std::getline(metrics, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.at("kind") == "train") {
      first_train_loss = j.at("loss").get<double>();
      break;
    }
  }
  EXPECT_NEAR(first_train_loss, std::log(2.0), 1e-6);

  EXPECT_GT(r.val.accuracy, 0.7) << r.val_before.accuracy << " -> " << r.val.accuracy;
  EXPECT_GT(r.val.margin, 0.0);
  EXPECT_GT(r.val.chosen_reward, r.val.rejected_reward);
  EXPECT_LT(r.val.loss, r.val_before.loss);
  EXPECT_EQ(r.oracle_before.prompts, 2);
  EXPECT_EQ(r.oracle.prompts, 2);
  // The implicit reward's accuracy broken down as the reward model's: every pair once per part.
  for (const auto* part : {&r.val.breakdown.by_kind, &r.val.breakdown.by_labels}) {
    int64_t pairs = 0;
    for (const auto& [key, t] : *part) pairs += t.pairs;
    EXPECT_EQ(pairs, r.val.pairs);
  }
  EXPECT_EQ(r.val_before.breakdown.by_labels.at("ideal>rude").correct,
            0.5 * double(r.val_before.breakdown.by_labels.at("ideal>rude").pairs));  // all margins 0 at step 0
  std::cout << "dpo: held-out preference accuracy " << r.val_before.accuracy << " -> " << r.val.accuracy
            << ", margin " << r.val_before.margin << " -> " << r.val.margin << ", val loss " << r.val_before.loss
            << " -> " << r.val.loss << " over " << r.val.pairs << " pairs\n";

  // A GPT checkpoint of kind "dpo" that later stages open as a policy.
  const train::ModelCheckpoint ck = train::open_model_checkpoint(r.checkpoint, {"dpo"}, "test");
  EXPECT_EQ(ck.kind, "dpo");
  EXPECT_TRUE(fs::exists(r.checkpoint + "/tokenizer/tokenizer.json"));
  EXPECT_TRUE(fs::exists(o.out_dir + "/dpo.svg"));

  // A reward checkpoint is not a policy.
  {
    models::GPT m(s.cfg);
    const train::CheckpointSave rm{
        &m, nullptr, {{"kind", "reward"}, {"step", 0}, {"config", s.cfg.to_json()}}, {{s.root + "/tokenizer", "tokenizer"}}};
    train::save_checkpoint(s.root + "/rm", 0, rm);
  }
  o.init = s.root + "/rm";
  o.out_dir = s.root + "/dpo2";
  EXPECT_ERROR_HAS(dpo(o), "is a \"reward\" checkpoint");
  o.init = s.root + "/pre";
  o.beta = 0;
  EXPECT_ERROR_HAS(dpo(o), "--beta must be positive");
  fs::remove_all(s.root);
}

TEST(Dpo, StoppedAndResumedRunMatchesUninterrupted) {
  const testing::TinySetup s =
      testing::make_tiny_setup(::testing::TempDir() + "/ember_dpo_resume_" + std::to_string(::getpid()), "sft");
  // The stop at step 4 falls inside the second epoch, and the resumed run's
  // reference cache starts empty.
  DpoOptions o = testing::small_resume_run<DpoOptions>(s);
  o.lr = 2e-3;
  o.eval_every = 4;
  const auto [first, full, second] = testing::expect_resume_matches(o, s.root, 4, dpo);
  EXPECT_EQ(second.val.loss, full.val.loss);
  const nlohmann::json tj = train::read_trainer_json(first.checkpoint);
  EXPECT_EQ(tj.at("kind"), "dpo");
  EXPECT_EQ(tj.at("data").at("epoch"), 2);
  EXPECT_EQ(tj.at("data").at("cursor"), 6);
  EXPECT_EQ(tj.at("options").at("lr"), 2e-3);

  o.resume = true;
  o.out_dir = s.root + "/nothing_here";
  EXPECT_ERROR_HAS(dpo(o), s.root + "/nothing_here has no checkpoint");
  o.out_dir = s.root + "/pre";
  EXPECT_ERROR_HAS(dpo(o), "is not a resumable dpo checkpoint");
  fs::remove_all(s.root);
}

}  // namespace
}  // namespace ember::chat
