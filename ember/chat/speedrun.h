// The speedrun: the whole ChatGPT recipe from nothing to a chat model in one
// call, behind `ember speedrun` and the README's main job.
//
//   curriculum -> tokenizer -> token data -> pretrain -> SFT -> comparisons
//   (the labeller ranks SFT's samples on the RL prompts) -> reward model
//   -> PPO (RLHF) and DPO (the RM-free comparison arm) -> evaluation of every
//   stage -> report.md + report.json -> the chat model in <out>/chat
//
// Every stage writes into its own folder under <out> and, when it finishes,
// <out>/<stage>/stage.json (its metrics and time, written atomically). A rerun
// skips the stages that have stage.json, so an interrupted speedrun continues
// from the last finished stage; an unfinished training stage (pretrain, sft,
// reward, ppo, dpo) resumes mid-stage from its run folder's latest checkpoint
// (SIGINT/SIGTERM stop a trainer with one; the preset's checkpoint_every bounds
// what a hard kill loses) and its figures equal an uninterrupted run's, which
// the stage's record notes ("resumed_at_steps"). Deleting a stage's folder
// redoes it from the start. A preset fixes every size and hyper-parameter, so
// the same preset and seed give the same report numbers on the same machine.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ember/chat/labelling.h"

namespace ember::chat {

struct SpeedrunOptions {
  std::string preset = "default";  // "default" (the 20-minute run on 2 cores) or "tiny" (tests, about a minute)
  std::string out_dir;
  uint64_t seed = 1;
  int threads = 0;       // 0: all cores
  bool quiet = false;    // stage banners only (tests)
  // "stage.key=value" changes one of the preset's settings (e.g. "pretrain.steps=1200"),
  // for experiments; recorded in speedrun.json and report.json, and a rerun of the
  // folder must give the same ones.
  std::vector<std::string> overrides;
};

struct SpeedrunResult {
  nlohmann::json report;      // what report.json holds
  std::string report_md;      // path of report.md
  std::string chat_checkpoint;  // <out>/chat: the final chat model (PPO's actor)
  bool interrupted = false;   // stopped by SIGINT/SIGTERM; rerun to continue
  int signal = 0;             // the signal that stopped it
};

// Whether a folder's recorded settings (speedrun.json) and this run's shape the
// same run: plan_s (the ETA's estimates) may differ, and a setting added since
// the folder was written counts with the value it had before it was a setting.
bool same_run_settings(nlohmann::json before, nlohmann::json now);

std::vector<std::string> speedrun_preset_names();
// The preset's sizes and hyper-parameters, as recorded in report.json.
nlohmann::json speedrun_preset(const std::string& name);
// `preset` with each "stage.key=value" of `overrides` applied: the key must
// exist and the value have its type (a number for a number); a stage's planned
// time (plan_s) scales with a changed step or iteration count.
nlohmann::json apply_speedrun_overrides(nlohmann::json preset, const std::vector<std::string>& overrides);

SpeedrunResult speedrun(const SpeedrunOptions& options);

// The label stage's options from the preset's "label" settings: the SFT policy
// samples replies to the curriculum's RL prompts, the synthetic lists of
// preferences_train.jsonl come first, the reference replies join the lists
// unless "reference" is false. Seed and quiet are the caller's.
LabelOptions label_stage_options(const nlohmann::json& label_settings, const std::string& policy,
                                 const std::string& curriculum_dir, const std::string& out);

// Writes report.md from report.json's content (figures per stage, timings,
// pictures linked from the stage folders); in speedrun_report.cpp.
std::string render_report_markdown(const nlohmann::json& report);

}  // namespace ember::chat
