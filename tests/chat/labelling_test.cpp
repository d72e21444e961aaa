// The labeller: ranking replies by the oracle's grade (by hand), and
// `ember label`'s file: included records first, every list best first with
// strictly falling grades, the reference on top, the same file for the same
// seed, and one-line errors for unusable input. Also where the labelled (RL)
// prompts come from: their wordings, and the held-out-like split.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "chat/chat_test_util.h"
#include "ember/chat/curriculum.h"
#include "ember/chat/labelling.h"
#include "ember/models/gpt.h"
#include "ember/train/checkpoint.h"
#include "test_util.h"

namespace ember::chat {
namespace {
namespace fs = std::filesystem;

std::string file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(Labelling, RanksOneReplyPerGradeBestFirst) {
  const nlohmann::json key = {{"kind", "fact"}, {"answer", "34"}, {"format", "one_word"}};
  const std::string reference = "34";
  const std::vector<std::string> samples = {"Mia is 34 years old.",  // 0.5: ignores the format
                                            "34",                     // 1.0: ties the reference
                                            "35",                     // 0: wrong
                                            "What a stupid question. 34", "36"};  // 0 again
  EXPECT_EQ(rank_by_grade(key, &reference, samples),
            (std::vector<std::string>{"34", "Mia is 34 years old.", "35"}));
  // Without a reference the best sample leads.
  EXPECT_EQ(rank_by_grade(key, nullptr, {"35", "Mia is 34 years old."}),
            (std::vector<std::string>{"Mia is 34 years old.", "35"}));
  // Replies that all score alike compare nothing.
  EXPECT_EQ(rank_by_grade(key, &reference, {"34", "34."}).size(), 1u);
}

TEST(Labelling, FurtherPairsHoldEveryDifferentlyGradedPairTheListLacks) {
  const nlohmann::json key = {{"kind", "fact"}, {"answer", "34"}, {"format", "one_word"}};
  const std::string reference = "34";
  const std::vector<std::string> samples = {"Mia is 34 years old.", "34", "35", "What a stupid question. 34", "36"};
  const std::vector<std::string> ranked = rank_by_grade(key, &reference, samples);
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(further_pairs(key, &reference, samples, ranked),
            (Pairs{{"34", "What a stupid question. 34"},
                   {"34", "36"},
                   {"Mia is 34 years old.", "What a stupid question. 34"},
                   {"Mia is 34 years old.", "36"}}));
  // A right sample that ties the reference is set against the wrong one: the
  // policy's own right and wrong replies.
  const std::vector<std::string> two = {"34!", "35"};
  EXPECT_EQ(further_pairs(key, &reference, two, rank_by_grade(key, &reference, two)), (Pairs{{"34!", "35"}}));
  // Nothing the ranked list already holds, and nothing among equal grades.
  EXPECT_TRUE(further_pairs(key, nullptr, {"35", "34"}, rank_by_grade(key, nullptr, {"35", "34"})).empty());
  EXPECT_TRUE(further_pairs(key, nullptr, {"35", "36"}, rank_by_grade(key, nullptr, {"35", "36"})).empty());
}

TEST(Labelling, WritesRankedListsAfterIncludedRecords) {
  const std::string root = ::testing::TempDir() + "/ember_label_test_" + std::to_string(::getpid());
  fs::remove_all(root);
  write_curriculum(root + "/data", curriculum_preset("tiny"), 7);
  testing::curriculum_tokenizer().save(root + "/tokenizer");
  models::GPTConfig cfg = models::GPTConfig::preset("tiny");
  cfg.n_layer = 1, cfg.n_head = 2, cfg.n_kv_head = 2, cfg.n_embd = 32, cfg.block_size = 96;
  cfg.vocab_size = int64_t(testing::curriculum_tokenizer().vocab_size());
  Generator gen(3);
  models::GPT model(cfg, &gen);
  train::CheckpointSave save{&model, nullptr, {{"kind", "sft"}, {"step", 1}, {"config", cfg.to_json()}},
                             {{root + "/tokenizer", "tokenizer"}}};
  train::save_checkpoint(root + "/sft", 1, save);

  LabelOptions o;
  o.policy = root + "/sft";
  o.prompts = root + "/data/prompts_rl.jsonl";
  o.include = {root + "/data/preferences_train.jsonl"};
  o.out = root + "/a.jsonl";
  o.samples = 3;
  o.max_new_tokens = 6;
  o.limit = 12;
  o.quiet = true;
  const LabelResult r = label_policy_samples(o);
  EXPECT_EQ(r.prompts, 12);
  EXPECT_EQ(r.samples, 36);
  EXPECT_EQ(r.included, int64_t(curriculum_preset("tiny").preference_train));
  // A random model's replies are gibberish that scores 0, so every prompt
  // ranks its reference above them.
  EXPECT_EQ(r.lists, 12);
  EXPECT_LT(r.sample_accuracy, 0.2);

  const std::vector<PreferenceRecord> got = read_preferences(o.out);
  const std::vector<PreferenceRecord> included = read_preferences(o.include[0]);
  ASSERT_EQ(got.size(), included.size() + 12);
  for (size_t i = 0; i < included.size(); ++i) EXPECT_EQ(got[i].responses, included[i].responses) << i;
  const std::vector<PromptRecord> prompts = read_prompts(o.prompts);
  for (size_t i = 0; i < 12; ++i) {
    const PreferenceRecord& rec = got[included.size() + i];
    EXPECT_EQ(rec.prompt.back().content, prompts[i].prompt.back().content);
    EXPECT_EQ(rec.responses.front(), prompts[i].meta.at("reference").get<std::string>());
    EXPECT_EQ(rec.kind, prompts[i].meta.at("grade").at("kind").get<std::string>());
    ASSERT_EQ(rec.labels.size(), rec.responses.size());
    EXPECT_EQ(rec.labels.front(), "reference");
    EXPECT_EQ(rec.labels.back(), "sample_wrong");  // gibberish
    double last = 2;
    for (const auto& reply : rec.responses) {
      const double s = grade_response(prompts[i].meta.at("grade"), reply).score;
      EXPECT_LT(s, last) << reply;
      last = s;
    }
  }
  // Same options, same records.
  LabelOptions again = o;
  again.out = root + "/b.jsonl";
  label_policy_samples(again);
  const std::vector<PreferenceRecord> twice = read_preferences(again.out);
  ASSERT_EQ(twice.size(), got.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(twice[i].responses, got[i].responses) << i;

  // Every pair: each list is followed by the reference against each further
  // distinct wrong sample, two replies a record, the samples drawn as before.
  LabelOptions every = o;
  every.out = root + "/every.jsonl";
  every.every_pair = true;
  const LabelResult e = label_policy_samples(every);
  EXPECT_EQ(e.lists, 12);
  EXPECT_GT(e.extra_pairs, 0);
  EXPECT_EQ(e.pairs, r.pairs + e.extra_pairs);
  const std::vector<PreferenceRecord> all = read_preferences(every.out);
  ASSERT_EQ(all.size(), got.size() + size_t(e.extra_pairs));
  size_t at = included.size();
  for (size_t k = 0; k < 12; ++k) {  // prompt k: its list as before, then its further pairs
    const std::vector<std::string>& list = got[included.size() + k].responses;
    ASSERT_LT(at, all.size());
    const PreferenceRecord& head = all[at++];
    EXPECT_EQ(head.responses, list) << k;
    std::set<std::string> worse(list.begin() + 1, list.end());
    const bool last = k + 1 == 12;
    while (at < all.size() && (last || all[at].responses != got[included.size() + k + 1].responses)) {
      const PreferenceRecord& pair = all[at++];
      EXPECT_EQ(pair.prompt, head.prompt) << k;
      ASSERT_EQ(pair.responses.size(), 2u) << k;
      EXPECT_EQ(pair.responses[0], list.front()) << k;  // the reference against
      EXPECT_TRUE(worse.insert(pair.responses[1]).second) << k << ": " << pair.responses[1];  // a wrong reply no record held
      EXPECT_EQ(pair.labels, (std::vector<std::string>{"reference", "sample_wrong"}));
    }
  }
  EXPECT_EQ(at, all.size());

  // Without the reference, a random model's gibberish all scores 0: nothing to
  // compare, no list, and no record names a reference.
  LabelOptions own = o;
  own.include.clear();
  own.out = root + "/own.jsonl";
  own.with_reference = false;
  EXPECT_ERROR(label_policy_samples(own), "[label] no comparison to write");
  own.allow_empty = true;
  const LabelResult o_r = label_policy_samples(own);
  EXPECT_EQ(o_r.samples, 36);
  EXPECT_EQ(o_r.lists, 0);
  EXPECT_EQ(fs::file_size(own.out), 0u);

  LabelOptions bad = o;
  bad.samples = 0;
  EXPECT_ERROR(label_policy_samples(bad), "[label] --samples must be at least 1, got 0");
  bad = o;
  bad.prompts = root + "/data/sft_val.jsonl";  // conversations, not graded prompts
  EXPECT_THROW(label_policy_samples(bad), Error);
  bad = o;
  std::ofstream(root + "/ungraded.jsonl") << "{\"prompt\": \"Hi\"}\n";
  bad.prompts = root + "/ungraded.jsonl";
  EXPECT_ERROR(label_policy_samples(bad), "[label] " + root + "/ungraded.jsonl: prompt 1 has no \"grade\" key");
  bad = o;
  bad.policy = root + "/data";
  EXPECT_THROW(label_policy_samples(bad), Error);
  fs::remove_all(root);
}

// A prompt's wording: its names (people, strangers, pets) and numbers
// replaced by placeholders, its opener dropped.
std::string wording(const World& w, std::string text) {
  auto replace = [&](const std::string& from, const std::string& to) {
    for (size_t p = text.find(from); p != std::string::npos; p = text.find(from, p + to.size()))
      text.replace(p, from.size(), to);
  };
  for (const auto& p : w.people) replace(p.name, "{N}"), replace(p.pet, "{P}");
  for (const auto& u : w.unknown_names) replace(u, "{N}");
  text = std::regex_replace(text, std::regex("[0-9]+"), "{X}");
  for (const char* opener : {"Quick question: ", "Hi! ", "Hello. ", "Question: ", "I have a question. ",
                             "Can you help me? ", "Please answer this. "})
    if (text.rfind(opener, 0) == 0) text = text.substr(std::string(opener).size());
  return text;
}

TEST(Curriculum, RlPromptsUseTheirOwnOrTrainingWordingsNeverHeldOutOnes) {
  const World w = make_world(curriculum_preset("default"), 2);
  std::set<std::string> train, heldout, rl_only;
  for (const auto& c : curriculum_conversations(w, 4000, 2, 0)) train.insert(wording(w, c[c.size() - 2].content));
  for (const auto& p : curriculum_heldout_prompts(w, 1000, 2)) heldout.insert(wording(w, p.prompt.back().content));
  for (const auto& p : curriculum_rl_prompts(w, 1000, 2)) {
    const std::string form = wording(w, p.prompt.back().content);
    EXPECT_EQ(heldout.count(form), 0u) << form;  // never a held-out wording
    if (!train.count(form)) rl_only.insert(form);
    const auto& key = p.meta.at("grade");
    EXPECT_TRUE(key.value("seen_pair", true)) << key.dump();  // no held-out (person, attribute) pair
    const Grade g = grade_response(key, p.meta.at("reference").get<std::string>());
    EXPECT_EQ(g.score, 1.0) << key.dump();
  }
  // Wordings of their own, for every kind of question (5 attributes, follow-ups,
  // "one word", sums, comparisons, lists, harmful requests).
  EXPECT_GE(rl_only.size(), 25u);
  for (const char* example : {"Which animal does {N} look after?", "Solve {X} plus {X}.",
                              "Arrange these names alphabetically: {N}, {N}, {N}."})
    EXPECT_EQ(rl_only.count(example), 1u) << example;
}

// rl_split "heldout": RL prompts drawn as the evaluation's are (its wordings,
// unseen pairs), each once, none an evaluation prompt; the curriculum's other
// files stay those of the default split, and an unknown split writes nothing.
TEST(Curriculum, RlPromptsLikeTheHeldOutOnesNeverRepeatAnEvaluationPrompt) {
  const CurriculumPreset preset = curriculum_preset("default");
  const World w = make_world(preset, 2);
  const auto evaluation = curriculum_heldout_prompts(w, preset.heldout_prompts, 2);
  std::set<std::string> eval_texts, heldout_forms;
  for (const auto& p : evaluation) eval_texts.insert(conversation_to_json(p.prompt).dump());
  for (const auto& p : curriculum_heldout_prompts(w, 3000, 7)) heldout_forms.insert(wording(w, p.prompt.back().content));
  const auto rl = curriculum_rl_prompts_like_heldout(w, 1000, 2, evaluation);
  ASSERT_EQ(rl.size(), 1000u);
  std::set<std::string> seen;
  int unseen_pairs = 0;
  for (const auto& p : rl) {
    const std::string text = conversation_to_json(p.prompt).dump();
    EXPECT_TRUE(seen.insert(text).second) << text;  // each prompt once
    EXPECT_EQ(eval_texts.count(text), 0u) << text;  // never one the evaluation asks
    EXPECT_EQ(heldout_forms.count(wording(w, p.prompt.back().content)), 1u) << text;
    const auto& key = p.meta.at("grade");
    unseen_pairs += !key.value("seen_pair", true);
    EXPECT_EQ(grade_response(key, p.meta.at("reference").get<std::string>()).score, 1.0) << key.dump();
  }
  EXPECT_GT(unseen_pairs, 50);  // the held-out (person, attribute) pairs, as in the evaluation (99 here)

  const std::string root = ::testing::TempDir() + "/ember_rl_split_" + std::to_string(::getpid());
  CurriculumPreset tiny = curriculum_preset("tiny"), like_heldout = tiny, bad = tiny;
  like_heldout.rl_split = "heldout";
  bad.rl_split = "eval";
  const auto files = write_curriculum(root + "/rl", tiny, 3);
  write_curriculum(root + "/heldout", like_heldout, 3);
  for (const auto& f : files) {
    if (f == "prompts_rl.jsonl") continue;
    EXPECT_EQ(file_text(root + "/rl/" + f), file_text(root + "/heldout/" + f)) << f;
  }
  const auto tiny_world = make_world(tiny, 3);
  const auto expected = curriculum_rl_prompts_like_heldout(
      tiny_world, tiny.rl_prompts, 3, curriculum_heldout_prompts(tiny_world, tiny.heldout_prompts, 3));
  const auto written = read_prompts(root + "/heldout/prompts_rl.jsonl");
  ASSERT_EQ(written.size(), size_t(tiny.rl_prompts));
  ASSERT_EQ(written.size(), expected.size());
  for (size_t k = 0; k < written.size(); ++k) EXPECT_EQ(written[k].prompt, expected[k].prompt) << k;
  EXPECT_ERROR(write_curriculum(root + "/bad", bad, 3), "[curriculum] rl_split must be \"rl\" or \"heldout\", got \"eval\"");
  EXPECT_FALSE(fs::exists(root + "/bad"));
  fs::remove_all(root);
}

}  // namespace
}  // namespace ember::chat
