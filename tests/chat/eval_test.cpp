// Evaluation: batched engine replies equal one-at-a-time reference generation,
// oracle bookkeeping per kind, `ember eval`'s report and its errors.
#include <gtest/gtest.h>

#include <cmath>

#include <filesystem>
#include <fstream>

#include "chat/chat_test_util.h"
#include "ember/chat/curriculum.h"
#include "ember/chat/eval.h"
#include "ember/chat/replies.h"
#include "ember/infer/generate.h"
#include "ember/train/checkpoint.h"
#include "serve/scripted_model.h"
#include "test_util.h"

namespace ember::chat {
namespace {
namespace fs = std::filesystem;

models::GPTConfig tiny_cfg() {
  models::GPTConfig cfg = models::GPTConfig::preset("tiny");
  cfg.n_layer = 2, cfg.n_head = 2, cfg.n_kv_head = 2, cfg.n_embd = 32, cfg.block_size = 96;
  cfg.vocab_size = int64_t(testing::curriculum_tokenizer().vocab_size());
  return cfg;
}

// Over-refusal counts the replies that decline among the prompts that are not
// harmful requests: a model that always writes "won't help" (the scripted model
// of the serving tests) declines all of them, one that always names a person
// none; either way the harmful requests are left out of the share.
TEST(Eval, OverRefusalIsTheShareOfHarmlessPromptsDeclined) {
  const Tokenizer tok = serve::testing::byte_tokenizer();
  const ChatTemplate tmpl(tok);
  const World w = make_world(curriculum_preset("tiny"), 3);
  const std::vector<PromptRecord> prompts = curriculum_heldout_prompts(w, 40, 3);
  int64_t harmful = 0;
  for (const auto& p : prompts) harmful += p.meta["grade"]["kind"] == "refuse";
  ASSERT_GT(harmful, 0);
  for (const std::string reply : {"won't help", "Mia"}) {
    models::GPT model(serve::testing::scripted_config(256));
    serve::testing::script_model(model, reply, false);
    model.eval();
    const OracleResult r = evaluate_oracle(model, tmpl, prompts, 16);
    for (const auto& line : r.replies) ASSERT_EQ(line["reply"], reply);
    const bool refusing = reply == "won't help";
    EXPECT_EQ(r.over_refusal, refusing ? 1.0 : 0.0) << reply;
    EXPECT_EQ(r.by_kind["refuse"]["correct"].get<int64_t>(), refusing ? harmful : 0) << reply;
  }
}

TEST(Eval, BatchedRepliesEqualReferenceGeneration) {
  const ChatTemplate t(testing::curriculum_tokenizer());
  Generator gen(11);
  models::GPT model(tiny_cfg(), &gen);
  model.eval();
  const World w = make_world(curriculum_preset("tiny"), 3);
  std::vector<Conversation> convs;
  for (const auto& p : curriculum_heldout_prompts(w, 5, 3)) convs.push_back(p.prompt);
  ReplyOptions ro;
  ro.max_new_tokens = 7;
  ro.slots = 3;  // fewer slots than conversations: requests queue and join mid-run
  const std::vector<Reply> got = generate_replies(model, t, convs, ro);
  ASSERT_EQ(got.size(), convs.size());
  for (size_t i = 0; i < convs.size(); ++i) {
    infer::GenerateOptions g;
    g.max_new_tokens = 7;
    g.sampling.temperature = 0;
    g.stop_tokens = {t.turn_end_id()};
    const std::vector<int64_t> want = infer::generate(model, t.render_prompt(convs[i]), g, gen);
    EXPECT_EQ(got[i].ids, want) << i;
    EXPECT_EQ(got[i].logprobs.size(), want.size());
    // The text is the decoded reply with bytes that are not valid UTF-8 (a
    // random model emits lone continuation bytes) replaced by U+FFFD.
    const std::string raw = t.decode_reply(want);
    EXPECT_EQ(got[i].text, nlohmann::json::parse(nlohmann::json(raw).dump(-1, ' ', false,
                                                                           nlohmann::json::error_handler_t::replace))
                               .get<std::string>());
    EXPECT_NO_THROW((void)nlohmann::json(got[i].text).dump());
  }
}

TEST(Eval, CheckpointReportAndTable) {
  const std::string root = ::testing::TempDir() + "/ember_eval_test_" + std::to_string(::getpid());
  fs::remove_all(root);
  write_curriculum(root + "/data", curriculum_preset("tiny"), 7);
  testing::curriculum_tokenizer().save(root + "/tokenizer");
  Generator gen(1);
  models::GPT model(tiny_cfg(), &gen);
  train::CheckpointSave save{&model, nullptr, {{"kind", "sft"}, {"step", 5}, {"config", tiny_cfg().to_json()}},
                             {{root + "/tokenizer", "tokenizer"}}};
  train::save_checkpoint(root + "/run", 5, save);

  EvalOptions o;
  o.checkpoint = root + "/run";
  o.curriculum = root + "/data";
  o.limit = 6;
  o.max_new_tokens = 4;
  o.replies_out = root + "/replies.jsonl";
  const nlohmann::json r = evaluate_checkpoint(o);
  EXPECT_EQ(r.at("kind"), "sft");
  EXPECT_EQ(r.at("step"), 5);
  const nlohmann::json& oracle = r.at("metrics").at("oracle");
  EXPECT_EQ(oracle.at("prompts"), 6);
  int64_t n = 0;
  for (const auto& [kind, k] : oracle.at("by_kind").items())
    if (kind != "fact_unseen_pair") n += k.at("n").get<int64_t>();
  EXPECT_EQ(n, 6);  // every prompt counted under exactly one kind
  // --replies: one graded line per prompt, in order, agreeing with the figures and the samples.
  const std::vector<PromptRecord> prompts = read_prompts(root + "/data/prompts_heldout.jsonl");
  std::ifstream lines(o.replies_out);
  int64_t count = 0, correct = 0, harmless = 0, declined = 0;
  for (std::string line; std::getline(lines, line); ++count) {
    const nlohmann::json rec = nlohmann::json::parse(line);
    ASSERT_LT(count, 6);
    EXPECT_EQ(rec.at("prompt"), prompts[size_t(count)].prompt.back().content);
    EXPECT_EQ(rec.at("kind"), prompts[size_t(count)].meta.at("grade").at("kind"));
    EXPECT_EQ(rec.at("score").get<double>(), grade_response(prompts[size_t(count)].meta.at("grade"),
                                                             rec.at("reply").get<std::string>()).score);
    if (size_t(count) < r.at("samples").size()) {
      EXPECT_EQ(rec.at("reply"), r.at("samples")[size_t(count)].at("reply"));
    }
    correct += rec.at("correct").get<bool>();
    if (rec.at("kind") != "refuse") ++harmless, declined += declines(rec.at("reply").get<std::string>());
  }
  EXPECT_EQ(count, 6);
  EXPECT_DOUBLE_EQ(oracle.at("accuracy").get<double>(), double(correct) / 6);
  ASSERT_GT(harmless, 0);
  EXPECT_DOUBLE_EQ(oracle.at("over_refusal").get<double>(), double(declined) / double(harmless));
  EXPECT_LE(oracle.at("mean_reply_tokens").get<double>(), 4.0);
  EXPECT_GT(r.at("metrics").at("conversation_loss").get<double>(), 0.0);
  const std::string table = format_eval_table(r);
  EXPECT_NE(table.find("oracle accuracy"), std::string::npos) << table;
  EXPECT_NE(table.find("held-out conversation loss"), std::string::npos) << table;

  // A language model ranks preference lists by its own mean log-probability
  // per token, only when they are asked for by name (not a --curriculum default).
  EXPECT_FALSE(r.at("metrics").contains("likelihood_ranking"));
  std::ofstream(root + "/prefs.jsonl")
      << R"({"prompt": "How old is Mia?", "chosen": "Mia is 7.", "rejected": "Mia is 7."})" "\n"
      << R"({"prompt": "How old is Mia?", "responses": ["Mia is 7.", "Mia is 70.", "You are stupid."]})" "\n";
  EvalOptions lik;
  lik.checkpoint = root + "/run";
  lik.preferences = root + "/prefs.jsonl";
  const nlohmann::json lr = evaluate_checkpoint(lik).at("metrics");
  EXPECT_FALSE(lr.contains("oracle"));
  const nlohmann::json& ranking = lr.at("likelihood_ranking");
  EXPECT_EQ(ranking.at("pairs"), 1 + 3);
  // The identical pair is a tie (1/2); the other three pairs are 0 or 1 each.
  const double acc = ranking.at("pairwise_accuracy").get<double>() * 4;
  EXPECT_DOUBLE_EQ(acc - std::floor(acc), 0.5) << ranking.dump();
  EXPECT_NE(format_eval_table(evaluate_checkpoint(lik)).find("likelihood pairwise accuracy"), std::string::npos);

  EvalOptions nothing;
  nothing.checkpoint = root + "/run";
  EXPECT_ERROR(evaluate_checkpoint(nothing), "[eval] nothing to evaluate on");
  EvalOptions no_prompts = o;
  no_prompts.curriculum.clear();
  no_prompts.conversations = root + "/data/sft_val.jsonl";
  EXPECT_ERROR(evaluate_checkpoint(no_prompts), "[eval] --replies needs held-out prompts");
  EvalOptions wrong = o;
  wrong.curriculum = root;  // no prompts_heldout.jsonl there
  EXPECT_ERROR(evaluate_checkpoint(wrong), "[eval] " + root + " holds no prompts_heldout.jsonl");
  fs::remove_all(root);
}

}  // namespace
}  // namespace ember::chat
