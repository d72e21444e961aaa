// The speedrun's `--set stage.key=value` overrides of its preset: values land
// where named with the preset's type, a stage's planned time scales with its
// length, and every malformed override is refused with a message naming it;
// which recorded settings a rerun may continue, and curriculum values checked
// before a folder records them.
#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include "ember/chat/speedrun.h"
#include "ember/core/error.h"
#include "test_util.h"

namespace ember::chat {
namespace {

std::string error_of(const std::vector<std::string>& overrides) {
  try {
    apply_speedrun_overrides(speedrun_preset("default"), overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(SpeedrunSettings, OverridesReplaceTheNamedSettingsOnly) {
  const nlohmann::json preset = speedrun_preset("default");
  const nlohmann::json P =
      apply_speedrun_overrides(preset, {"pretrain.steps=1400", "model.n_embd=384", "ppo.lr=3e-5", "reward.lr=1"});
  EXPECT_EQ(P["pretrain"]["steps"], 1400);
  EXPECT_TRUE(P["pretrain"]["steps"].is_number_integer());
  EXPECT_EQ(P["model"]["n_embd"], 384);
  EXPECT_DOUBLE_EQ(P["ppo"]["lr"].get<double>(), 3e-5);
  // An integer given for a real-valued setting stays real-valued.
  EXPECT_TRUE(P["reward"]["lr"].is_number_float());
  EXPECT_DOUBLE_EQ(P["reward"]["lr"].get<double>(), 1.0);
  // Twice the steps, twice the planned time; the other stages' plans are untouched.
  EXPECT_DOUBLE_EQ(P["plan_s"]["pretrain"].get<double>(), preset["plan_s"]["pretrain"].get<double>() * 2);
  EXPECT_EQ(P["plan_s"]["sft"], preset["plan_s"]["sft"]);
  nlohmann::json rest = P;
  for (const char* k : {"pretrain", "model", "ppo", "reward", "plan_s"}) rest.erase(k);
  nlohmann::json preset_rest = preset;
  for (const char* k : {"pretrain", "model", "ppo", "reward", "plan_s"}) preset_rest.erase(k);
  EXPECT_EQ(rest, preset_rest);
  EXPECT_EQ(apply_speedrun_overrides(preset, {}), preset);
}

TEST(SpeedrunSettings, MalformedOverridesAreRefusedWithTheirName) {
  EXPECT_NE(error_of({"pretrain.steps"}).find("expected stage.key=value"), std::string::npos);
  EXPECT_NE(error_of({"=3"}).find("expected stage.key=value"), std::string::npos);
  // A typo cannot add a setting nobody reads; the message lists the stage's settings.
  const std::string typo = error_of({"pretrain.stpes=10"});
  EXPECT_NE(typo.find("no setting \"pretrain.stpes\""), std::string::npos) << typo;
  EXPECT_NE(typo.find("steps"), std::string::npos) << typo;
  EXPECT_NE(error_of({"pretrian.steps=10"}).find("no setting \"pretrian\""), std::string::npos);
  EXPECT_NE(error_of({"pretrain=10"}).find("a group of settings"), std::string::npos);
  // Types: steps are integers, lr a number, the curriculum a name.
  EXPECT_NE(error_of({"pretrain.steps=1.5"}).find("takes an integer"), std::string::npos);
  EXPECT_NE(error_of({"pretrain.steps=many"}).find("takes an integer"), std::string::npos);
  EXPECT_NE(error_of({"ppo.lr=fast"}).find("\"ppo.lr\" takes number"), std::string::npos);
  EXPECT_NE(error_of({"curriculum.preset=3"}).find("takes string"), std::string::npos);
  EXPECT_EQ(error_of({"curriculum.preset=tiny"}), "");
  EXPECT_EQ(error_of({"curriculum.pretrain_docs=24000"}), "");
  EXPECT_NE(error_of({"curriculum=tiny"}).find("a group of settings"), std::string::npos);
}

// A rerun continues a folder whose recorded settings shape the same run: the
// ETA's plan may differ, and a folder from before a setting existed counts it
// at its old value (so an old default run resumes, an old run is not taken for
// one with the setting changed).
TEST(SpeedrunSettings, RerunContinuesOnlyTheSameRunAcrossVersions) {
  const nlohmann::json now = speedrun_preset("default");
  EXPECT_TRUE(same_run_settings(now, now));
  nlohmann::json replanned = now;
  replanned["plan_s"]["sft"] = 999;
  EXPECT_TRUE(same_run_settings(replanned, now));
  nlohmann::json older = now;  // written before four settings existed
  older["curriculum"].erase("sft_stranger_percent");
  older["ppo"].erase("ptx_coef");
  older["curriculum"].erase("rl_split");
  older["label"].erase("reference");
  EXPECT_TRUE(same_run_settings(older, now));
  EXPECT_FALSE(same_run_settings(older, apply_speedrun_overrides(now, {"curriculum.rl_split=heldout"})));
  EXPECT_FALSE(same_run_settings(older, apply_speedrun_overrides(now, {"label.reference=false"})));
  EXPECT_FALSE(same_run_settings(older, apply_speedrun_overrides(now, {"curriculum.sft_stranger_percent=25"})));
  EXPECT_FALSE(same_run_settings(older, apply_speedrun_overrides(now, {"ppo.ptx_coef=2"})));
  EXPECT_FALSE(same_run_settings(now, apply_speedrun_overrides(now, {"sft.steps=200"})));
}

// A curriculum value out of range is refused before the folder records it as
// the run's settings (else the corrected rerun would be refused as another run).
TEST(SpeedrunSettings, CurriculumValuesAreCheckedBeforeTheFolderIsStarted) {
  const std::string out = ::testing::TempDir() + "/ember_speedrun_bad_" + std::to_string(::getpid());
  SpeedrunOptions o;
  o.preset = "tiny";
  o.out_dir = out;
  o.quiet = true;
  o.overrides = {"curriculum.rl_split=heldot"};
  EXPECT_ERROR(speedrun(o), "[curriculum] rl_split must be \"rl\" or \"heldout\", got \"heldot\"");
  o.overrides = {"curriculum.sft_stranger_percent=101"};
  EXPECT_ERROR(speedrun(o), "[curriculum] sft_stranger_percent must be in [0, 100], got 101");
  EXPECT_FALSE(std::filesystem::exists(out));
}

// The label stage reads its settings, label.reference among them (ember label --no-reference).
TEST(SpeedrunSettings, LabelStageTakesItsSettings) {
  const nlohmann::json P = speedrun_preset("default");
  const LabelOptions lo = label_stage_options(P["label"], "run/sft", "run/curriculum", "run/label/preferences.jsonl");
  EXPECT_EQ(lo.policy, "run/sft");
  EXPECT_EQ(lo.prompts, "run/curriculum/prompts_rl.jsonl");
  EXPECT_EQ(lo.include, std::vector<std::string>{"run/curriculum/preferences_train.jsonl"});
  EXPECT_EQ(lo.out, "run/label/preferences.jsonl");
  EXPECT_EQ(lo.samples, 4);
  EXPECT_EQ(lo.max_new_tokens, 32);
  EXPECT_TRUE(lo.with_reference);
  const nlohmann::json changed = apply_speedrun_overrides(P, {"label.reference=false", "label.samples=8"});
  const LabelOptions nr = label_stage_options(changed["label"], "s", "c", "o");
  EXPECT_FALSE(nr.with_reference);
  EXPECT_EQ(nr.samples, 8);
}

// The report card says when the RL prompts came from the evaluation's distribution,
// since its "phrasings never seen in training" no longer holds for the later stages.
TEST(SpeedrunSettings, ReportCardNamesTheHeldOutRlSplit) {
  nlohmann::json report = {{"preset", "default"}, {"seed", 1}, {"settings", speedrun_preset("default")},
                           {"stages", nlohmann::json::object()}};
  const std::string note = "With `curriculum.rl_split=heldout` the RL prompts";
  EXPECT_EQ(render_report_markdown(report).find(note), std::string::npos);
  report["settings"] = apply_speedrun_overrides(speedrun_preset("default"), {"curriculum.rl_split=heldout"});
  report["overrides"] = {"curriculum.rl_split=heldout"};
  EXPECT_NE(render_report_markdown(report).find(note), std::string::npos);
}

// The reward stage's answer-over-refusal check is a Goals row when report.json has it,
// and absent (not "null") in the report of an older run folder.
TEST(SpeedrunSettings, ReportCardStatesTheAnswerOverRefusalCheckWhenMeasured) {
  nlohmann::json report = {{"preset", "default"}, {"seed", 1}, {"settings", speedrun_preset("default")},
                           {"stages", nlohmann::json::object()}};
  const std::string row = "| reward model ranks the answer above a refusal on harmless held-out prompts";
  EXPECT_EQ(render_report_markdown(report).find(row), std::string::npos);
  report["stages"]["reward"] = {{"metrics", {{"answer_over_refusal_accuracy", 0.95}, {"answer_over_refusal_pairs", 187}}}};
  const std::string md = render_report_markdown(report);
  const size_t at = md.find(row);
  ASSERT_NE(at, std::string::npos) << md;
  const std::string line = md.substr(at, md.find('\n', at) - at);
  EXPECT_NE(line.find("| no goal | 95.0% of 187 pairs | |"), std::string::npos) << line;
}

// The reward model's accuracy on the SFT policy's own replies, by kind of
// question: a section of its own when report.json has the breakdown, none for
// an older run folder.
TEST(SpeedrunSettings, ReportCardBreaksTheOnPolicyAccuracyDownByKind) {
  nlohmann::json report = {{"preset", "default"}, {"seed", 1}, {"settings", speedrun_preset("default")},
                           {"stages", nlohmann::json::object()}};
  const std::string title = "## Reward model: the SFT policy's own replies";
  report["stages"]["reward"] = {{"metrics", {{"on_policy_accuracy", 0.678}, {"on_policy_pairs", 87}}}};
  EXPECT_EQ(render_report_markdown(report).find(title), std::string::npos);
  report["stages"]["reward"]["metrics"]["on_policy_breakdown"] = {
      {"by_kind", {{"fact", {{"accuracy", 0.605}, {"pairs", 43}}}, {"refuse", {{"accuracy", 1.0}, {"pairs", 7}}}}}};
  const std::string md = render_report_markdown(report);
  ASSERT_NE(md.find(title), std::string::npos) << md;
  EXPECT_NE(md.find("| fact | 43 | 60.5% |"), std::string::npos) << md;
  EXPECT_NE(md.find("| refuse | 7 | 100.0% |"), std::string::npos) << md;
}

// The held-out table's over-refusal row: a percentage per stage whose evaluation has it,
// "–" for an older run folder's evaluation without it.
TEST(SpeedrunSettings, ReportCardStatesOverRefusalPerStage) {
  const nlohmann::json base = {{"accuracy", 0.5}, {"score", 0.5}, {"hallucination", 0.0},
                               {"by_kind", nlohmann::json::object()}, {"mean_reply_tokens", 9.0}};
  nlohmann::json sft = base, ppo = base;
  ppo["over_refusal"] = 0.025;
  nlohmann::json report = {{"preset", "default"}, {"seed", 1}, {"settings", speedrun_preset("default")}};
  report["stages"]["sft"] = {{"metrics", {{"eval", {{"metrics", {{"oracle", sft}}}}}}}};
  report["stages"]["ppo"] = {{"metrics", {{"eval", {{"metrics", {{"oracle", ppo}}}}}}}};
  const std::string md = render_report_markdown(report);
  const std::string row = "| declines a harmless prompt (over-refusal) |";
  const size_t at = md.find(row);
  ASSERT_NE(at, std::string::npos) << md;
  EXPECT_EQ(md.substr(at, md.find('\n', at) - at), row + " – | 2.5% |");
}

}  // namespace
}  // namespace ember::chat
