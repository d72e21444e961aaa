// The speedrun (see speedrun.h).
#include "ember/chat/speedrun.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include "ember/chat/curriculum.h"
#include "ember/chat/dpo.h"
#include "ember/chat/eval.h"
#include "ember/chat/labelling.h"
#include "ember/chat/ppo.h"
#include "ember/chat/reward.h"
#include "ember/chat/sft.h"
#include "ember/core/error.h"
#include "ember/data/prepare.h"
#include "ember/io/atomic_file.h"
#include "ember/models/gpt_config.h"
#include "ember/tokenizer/train.h"
#include "ember/train/checkpoint.h"
#include "ember/train/metrics_log.h"
#include "ember/train/pretrain.h"
#include "ember/util/progress.h"
#include "ember/util/stats.h"

namespace ember::chat {
namespace fs = std::filesystem;

std::vector<std::string> speedrun_preset_names() { return {"default", "tiny"}; }

namespace {
// A curriculum preset with the sizes --set may change (curriculum.cpp has their reasons).
nlohmann::json curriculum_settings(const std::string& name) {
  const CurriculumPreset c = curriculum_preset(name);
  return {{"preset", name},
          {"pretrain_docs", c.pretrain_docs},
          {"preference_train", c.preference_train},
          {"fact_contrasts", c.fact_contrasts},
          {"sft_stranger_percent", c.sft_stranger_percent},
          {"rl_split", c.rl_split}};
}
// The inverse: the curriculum a run's settings describe.
CurriculumPreset curriculum_from_settings(const nlohmann::json& s) {
  CurriculumPreset c = curriculum_preset(s["preset"]);
  c.pretrain_docs = s["pretrain_docs"];
  c.preference_train = s["preference_train"];
  c.fact_contrasts = s["fact_contrasts"];
  c.sft_stranger_percent = s["sft_stranger_percent"];
  c.rl_split = s["rl_split"];
  return c;
}
}  // namespace

LabelOptions label_stage_options(const nlohmann::json& S, const std::string& policy, const std::string& curriculum,
                                 const std::string& out) {
  LabelOptions lo;
  lo.policy = policy;
  lo.prompts = curriculum + "/prompts_rl.jsonl";
  lo.include = {curriculum + "/preferences_train.jsonl"};
  lo.out = out;
  lo.samples = S["samples"];
  lo.max_new_tokens = S["max_new_tokens"];
  lo.temperature = S["temperature"];
  lo.with_reference = S["reference"];
  lo.every_pair = S["every_pair"];
  return lo;
}

bool same_run_settings(nlohmann::json before, nlohmann::json now) {
  // Settings added since, with the value they had before they were settings:
  // a folder written by an older version lacks them.
  struct Added {
    const char *group, *key;
    nlohmann::json value;
  };
  const Added added[] = {{"curriculum", "sft_stranger_percent", 100}, {"curriculum", "rl_split", "rl"},
                         {"label", "reference", true}, {"label", "every_pair", false},
                         {"ppo", "ptx_coef", 0.0}};
  for (nlohmann::json* settings : {&before, &now}) {
    settings->erase("plan_s");
    for (const Added& a : added)
      if (settings->contains(a.group) && !(*settings)[a.group].contains(a.key)) (*settings)[a.group][a.key] = a.value;
  }
  return before == now;
}

nlohmann::json speedrun_preset(const std::string& name) {
  // Sizes are chosen for a 2-core CPU: the default preset's stages take about
  // 5.3 (pretrain), 5.5 (SFT), 0.3 (labelling), 2.4 (reward model), 1 (PPO) and
  // 2.1 (DPO) minutes on a quiet one, evaluations included (plan_s, for the
  // ETA: measured 2026-11-29 and -30, docs/PERFORMANCE.md; the reward model's
  // and DPO's since their shorter runs estimated from those). SFT runs 400 steps:
  // twice the 200 it had raised held-out world answers from 65.6% to 73.4% at
  // seed 1 (docs/ALIGNMENT.md). The model is GPT-2 shaped (layernorm, learned
  // positions, GELU, tied embeddings); the curriculum's vocabulary is a few
  // hundred words, so a 1024-token BPE holds nearly every word whole.
  if (name == "default")
    return {
        {"curriculum", curriculum_settings("default")},
        {"vocab_size", 1024},
        {"model", {{"n_layer", 4}, {"n_head", 4}, {"n_kv_head", 4}, {"n_embd", 256}, {"block_size", 256},
                   {"vocab_size", 1024}, {"dropout", 0.0}}},
        {"pretrain", {{"steps", 700}, {"batch", 8}, {"lr", 2e-3}, {"eval_every", 350}}},
        // checkpoint_every bounds what a hard kill (SIGKILL, a crash) costs a stage: about a
        // minute of its planned time. A checkpoint takes ~0.2 s here (41 MB; PPO's, with the
        // critic, twice that); the reward model's also evaluates the held-out lists (its
        // normalisation statistics, reward.h), ~3 s (1% of the stage) each. SIGINT
        // and SIGTERM write a checkpoint wherever they stop a stage anyway.
        {"sft", {{"steps", 400}, {"batch", 16}, {"lr", 1e-3}, {"eval_every", 0}, {"checkpoint_every", 50}}},
        // reference false: the labelled lists rank the policy's own replies only, so they carry
        // no answer the policy did not sample itself (ember label --no-reference; the
        // curriculum's synthetic lists are still included).
        {"label", {{"samples", 4}, {"max_new_tokens", 32}, {"temperature", 1.0}, {"reference", true}, {"every_pair", false}}},
        // The reward model's 400 steps (600 until session 16) keep the 90% goal on seeds 1-3
        // (90.7/92.0/90.4% against 91.6/92.1/91.0%) and, with DPO's 80 steps (120 before: the
        // same held-out scores at step 80), take about 2 minutes off a run that took 21:51 in
        // the VM's slow hours (docs/ALIGNMENT.md, session 16).
        {"reward", {{"steps", 400}, {"batch", 8}, {"lr", 5e-4}, {"checkpoint_every", 200}}},
        // PPO is kept gentle: at lr 5e-5 x 4 epochs it drifted (KL ~2-10 nats) and lost
        // 23 points of held-out accuracy against this reward model (80% pairwise).
        {"ppo", {{"iterations", 30}, {"rollout_batch", 32}, {"max_new_tokens", 32}, {"minibatch", 8}, {"epochs", 2},
                 {"lr", 1e-5}, {"critic_lr", 5e-5}, {"kl_coef", 0.1}, {"reward_baseline", "mean"}, {"ptx_coef", 0.0},
                 {"checkpoint_every", 10}}},
        // DPO's beta 0.3, not 0.1: against the 400-step SFT model, beta 0.1 invented answers
        // about 61.5% of unknown people at seed 1 (score -11.5 points against SFT); 0.3 keeps
        // it near SFT on seeds 1-3 (docs/ALIGNMENT.md, session 13).
        {"dpo", {{"steps", 80}, {"batch", 8}, {"lr", 5e-5}, {"beta", 0.3}, {"checkpoint_every", 40}}},
        {"eval", {{"prompts", 200}, {"max_new_tokens", 48}}},
        {"plan_s", {{"pretrain", 320}, {"sft", 330}, {"label", 20}, {"reward", 145}, {"ppo", 65}, {"dpo", 125}}},
    };
  if (name == "tiny")
    return {
        {"curriculum", curriculum_settings("tiny")},
        {"vocab_size", 512},
        {"model", {{"n_layer", 2}, {"n_head", 2}, {"n_kv_head", 2}, {"n_embd", 64}, {"block_size", 256},
                   {"vocab_size", 512}, {"dropout", 0.0}}},
        {"pretrain", {{"steps", 60}, {"batch", 8}, {"lr", 3e-3}, {"eval_every", 30}}},
        {"sft", {{"steps", 30}, {"batch", 8}, {"lr", 2e-3}, {"eval_every", 0}, {"checkpoint_every", 10}}},
        {"label", {{"samples", 2}, {"max_new_tokens", 12}, {"temperature", 1.0}, {"reference", true}, {"every_pair", false}}},
        {"reward", {{"steps", 20}, {"batch", 4}, {"lr", 1e-3}, {"checkpoint_every", 10}}},
        {"ppo", {{"iterations", 3}, {"rollout_batch", 8}, {"max_new_tokens", 12}, {"minibatch", 8}, {"epochs", 2},
                 {"lr", 2e-5}, {"critic_lr", 5e-5}, {"kl_coef", 0.05}, {"reward_baseline", "mean"}, {"ptx_coef", 0.0},
                 {"checkpoint_every", 1}}},
        {"dpo", {{"steps", 10}, {"batch", 4}, {"lr", 1e-4}, {"beta", 0.1}, {"checkpoint_every", 5}}},
        {"eval", {{"prompts", 16}, {"max_new_tokens", 16}}},
        {"plan_s", {{"pretrain", 5}, {"sft", 2}, {"label", 2}, {"reward", 2}, {"ppo", 2}, {"dpo", 1}}},
    };
  std::string known;
  for (const auto& n : speedrun_preset_names()) known += (known.empty() ? "" : ", ") + n;
  fail("speedrun", "unknown preset \"", name, "\" (known: ", known, ")");
}

nlohmann::json apply_speedrun_overrides(nlohmann::json P, const std::vector<std::string>& overrides) {
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0)
      fail("speedrun", "--set \"", o, "\": expected stage.key=value, e.g. pretrain.steps=1200");
    const std::string path = o.substr(0, eq), text = o.substr(eq + 1);
    // Walk the dotted path; every part must already exist, so a typo cannot add a setting nobody reads.
    nlohmann::json* at = &P;
    std::string walked;
    for (size_t from = 0; from <= path.size();) {
      const size_t dot = std::min(path.find('.', from), path.size());
      const std::string part = path.substr(from, dot - from);
      if (!at->is_object() || !at->contains(part)) {
        std::string known;
        if (at->is_object())
          for (const auto& [k, v] : at->items()) known += (known.empty() ? "" : ", ") + k;
        fail("speedrun", "--set \"", o, "\": the preset has no setting \"", walked + part, "\"",
             known.empty() ? std::string() : " (known here: " + known + ")");
      }
      at = &(*at)[part];
      walked += part + ".";
      from = dot + 1;
    }
    if (at->is_object()) fail("speedrun", "--set \"", o, "\": \"", path, "\" is a group of settings, not one");
    nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
    if (value.is_discarded()) value = text;  // a bare word: a string
    const bool number_ok = at->is_number() && value.is_number() &&
                           !(at->is_number_integer() && value.is_number_float());
    if (!number_ok && !(at->is_string() && value.is_string()) && !(at->is_boolean() && value.is_boolean()))
      fail("speedrun", "--set \"", o, "\": \"", path, "\" takes ", at->is_number_integer() ? "an integer" : at->type_name(),
           " (the preset has ", at->dump(), ")");
    if (at->is_number_float()) value = value.get<double>();
    // A stage's length changes its planned time, which the progress display's ETA uses.
    const size_t dot = path.find('.');
    const std::string stage = path.substr(0, dot), key = dot == std::string::npos ? "" : path.substr(dot + 1);
    if ((key == "steps" || key == "iterations") && P["plan_s"].contains(stage) && at->get<double>() > 0)
      P["plan_s"][stage] = P["plan_s"][stage].get<double>() * value.get<double>() / at->get<double>();
    *at = value;
  }
  return P;
}

namespace {

using clock = std::chrono::steady_clock;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("speedrun", "cannot read ", path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// How a trainer call ended: the step it reached of the stage's `total`, and
// whether a signal stopped it. Stopped before the last step (stopped_short),
// the stage is unfinished: its checkpoint is where the rerun resumes. A signal
// during the last step still leaves the stage complete (the trainers evaluate
// before they check for the stop): its metrics are kept, marked with
// kStopAfterStage (complete_stage) so that the run records the stage as done
// and then stops instead of swallowing the signal. A stage whose checkpoint
// already held its last step calls no trainer: TrainerEnd{}.
struct TrainerEnd {
  int64_t step = 0, total = 0;
  bool interrupted = false;
  int signal = 0;
  bool stopped_short() const { return interrupted && step < total; }
};
constexpr const char* kStopAfterStage = "stop_after_stage";
nlohmann::json stopped(const TrainerEnd& e) { return {{"interrupted", true}, {"signal", e.signal}}; }
nlohmann::json complete_stage(nlohmann::json metrics, const TrainerEnd& e) {
  if (e.interrupted) metrics[kStopAfterStage] = e.signal;
  return metrics;
}

// The step of `run_dir`'s latest checkpoint (how far a training stage got),
// 0 when it has none.
int64_t checkpoint_step(const std::string& run_dir) {
  if (!train::has_checkpoint(run_dir)) return 0;
  return train::read_trainer_json(train::resolve_checkpoint(run_dir)).value("step", int64_t(0));
}

// A training stage's metrics.jsonl, which the trainers cut back to the
// checkpoint they resume from. The stages' figures come from it rather than
// from the trainer's result, which covers only the steps of its own call: a
// stage resumed mid-way, or whose checkpoint already held the last step,
// reports what an uninterrupted run does.
struct RunLog {
  nlohmann::json first_eval;                // the evaluation at step 0, before training
  nlohmann::json last_eval;                 // the last evaluation
  nlohmann::json first_train, last_train;   // the first and last records of kind `train_kind`
  std::vector<double> rates;                // every train record's tokens_per_s
};
RunLog read_run_log(const std::string& run_dir, const std::string& train_kind = "train") {
  RunLog log;
  std::istringstream lines(read_text(run_dir + "/metrics.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json rec = nlohmann::json::parse(line, nullptr, false);
    if (rec.is_discarded()) continue;
    const std::string kind = rec.value("kind", "");
    if (kind == train_kind) {
      if (log.first_train.is_null()) log.first_train = rec;
      log.last_train = rec;
      if (rec.contains("tokens_per_s")) log.rates.push_back(rec["tokens_per_s"].get<double>());
    } else if (kind == "eval") {
      if (rec.value("step", int64_t(-1)) == 0) log.first_eval = rec;
      log.last_eval = rec;
    }
  }
  return log;
}
// rec[key], or null when it has none.
nlohmann::json field(const nlohmann::json& rec, const char* key) {
  return rec.is_object() && rec.contains(key) ? rec[key] : nlohmann::json();
}
// A fine-tuning stage's first figures: its steps and last training loss.
nlohmann::json trained(const RunLog& log) {
  return {{"steps", field(log.last_train, "step")}, {"train_loss", field(log.last_train, "loss")}};
}

// Runs a training stage's trainer, `train(o)` (sft, train_reward_model, ppo,
// dpo), with the run's seed and quietness and the preset's checkpoint_every
// (stage settings S), resuming from
// the run folder's checkpoint at step `at` when there is one, unless that
// checkpoint holds the stage's last step (`total`) already: then no trainer
// runs (their --resume refuses that), `redraw` draws the stage's curves from
// its metrics.jsonl (a hard kill may have come between the last checkpoint and
// the trainer's pictures) and TrainerEnd{} comes back.
template <typename O, typename F>
TrainerEnd run_trainer(O& o, const SpeedrunOptions& run, const nlohmann::json& S, int64_t at, int64_t total,
                       F&& train, const std::function<void(const std::vector<nlohmann::json>&)>& redraw) {
  o.seed = run.seed;
  o.quiet = run.quiet;
  o.checkpoint_every = S.value("checkpoint_every", o.checkpoint_every);
  o.resume = at > 0;
  if (at >= total) {
    redraw(train::MetricsLog::read(o.out_dir + "/metrics.jsonl"));
    return {};
  }
  const auto r = train(o);
  if constexpr (requires { r.step; })
    return {r.step, total, r.interrupted, r.signal};
  else
    return {r.iterations, total, r.interrupted, r.signal};  // PPO counts iterations
}

// One stage of the run: a folder (its name), what it does, and the work,
// which returns the stage's metrics. A training stage names its trainer's run
// folder (`run_dir`, where its checkpoints go) and how many steps it trains
// (`total`); its work is given the step of that folder's latest checkpoint, to
// resume from (0: none). Its planned duration, for the ETA, is the preset's
// "plan_s" entry.
struct Stage {
  std::string name, what;
  std::function<nlohmann::json(int64_t resume_at)> run;
  std::string run_dir = {};
  int64_t total = 0;
};

}  // namespace

SpeedrunResult speedrun(const SpeedrunOptions& o) {
  if (o.out_dir.empty()) fail("speedrun", "--out is required (the folder the run and its report go into)");
  if (o.threads > 0) omp_set_num_threads(o.threads);
  const nlohmann::json P = apply_speedrun_overrides(speedrun_preset(o.preset), o.overrides);
  // The curriculum the settings describe, checked before they are recorded: a
  // value out of range must not become the folder's settings.
  const CurriculumPreset curriculum = curriculum_from_settings(P["curriculum"]);
  check_curriculum_preset(curriculum);
  const fs::path out(o.out_dir);
  fs::create_directories(out);
  // A rerun must use the preset and seed the folder was started with.
  const std::string plan_path = (out / "speedrun.json").string();
  nlohmann::json plan = {{"preset", o.preset}, {"seed", o.seed}, {"settings", P}};
  if (!o.overrides.empty()) plan["overrides"] = o.overrides;
  if (fs::exists(plan_path)) {
    const nlohmann::json before = nlohmann::json::parse(read_text(plan_path));
    if (before.value("preset", "") != o.preset || before.value("seed", uint64_t(0)) != o.seed)
      fail("speedrun", o.out_dir, " holds a run of preset \"", before.value("preset", "?"), "\" seed ",
           before.value("seed", uint64_t(0)), "; continue it with those, or choose another --out");
    if (before.contains("settings") && !same_run_settings(before["settings"], P))
      fail("speedrun", o.out_dir, " was started with other settings (its speedrun.json: another --set, or another "
           "version's preset); continue it with the same ones, or choose another --out");
  } else {
    write_file_atomic(plan_path, plan.dump(2) + "\n");
  }
  const std::string dir_data = (out / "curriculum").string(), dir_tok = (out / "tokenizer").string(),
                    dir_tokens = (out / "tokens").string(), dir_pre = (out / "pretrain").string(),
                    dir_sft = (out / "sft").string(), dir_label = (out / "label").string(),
                    dir_rm = (out / "reward").string(),
                    dir_ppo = (out / "ppo").string(), dir_dpo = (out / "dpo").string(),
                    dir_chat = (out / "chat").string();
  const nlohmann::json& E = P["eval"];
  // Oracle and conversation loss of a language-model checkpoint.
  auto eval_lm = [&](const std::string& ckpt) {
    EvalOptions eo;
    eo.checkpoint = ckpt;
    eo.curriculum = dir_data;
    eo.limit = E["prompts"].get<int64_t>();
    eo.max_new_tokens = E["max_new_tokens"].get<int64_t>();
    return evaluate_checkpoint(eo);
  };
  // A language-model stage's metrics once its trainer is done: `m` and the evaluation of its checkpoint.
  auto evaluated = [&](nlohmann::json m, const std::string& ckpt, const TrainerEnd& end) {
    m["eval"] = eval_lm(ckpt);
    return complete_stage(m, end);
  };

  std::vector<Stage> stages;
  stages.push_back({"curriculum", "generate the built-in world and its data", [&](int64_t) {
                      const auto files = write_curriculum(dir_data, curriculum, o.seed);
                      return nlohmann::json{{"files", files},
                                            {"pretrain_bytes", fs::file_size(dir_data + "/pretrain.txt")}};
                    }});
  stages.push_back({"tokenizer", "train the BPE tokenizer", [&](int64_t) {
                      // Pretraining text plus the chat data's words, so replies tokenize as compactly.
                      std::string chat_text;
                      for (const auto& c : read_conversations(dir_data + "/sft_train.jsonl"))
                        for (const auto& m : c) chat_text += m.content + "\n";
                      BpeTrainOptions bo;
                      bo.vocab_size = P["vocab_size"].get<size_t>();
                      const Tokenizer tok = train_bpe({read_text(dir_data + "/pretrain.txt"), chat_text}, bo);
                      tok.save(dir_tok);
                      return nlohmann::json{{"vocab_size", tok.vocab_size()}};
                    }});
  stages.push_back({"tokens", "tokenize the pretraining text into shards", [&](int64_t) {
                      data::PrepareOptions po;
                      po.inputs = {dir_data + "/pretrain.txt"};
                      po.out = dir_tokens;
                      po.val_fraction = 0.02;
                      po.overwrite = true;
                      const data::DataMeta m = data::prepare_data(Tokenizer::load(dir_tok), po);
                      return nlohmann::json{{"train_tokens", m.splits.at("train").tokens},
                                            {"val_tokens", m.splits.at("val").tokens}};
                    }});
  stages.push_back({"pretrain", "pretrain the GPT on the world's text", [&](int64_t at) {
                      const nlohmann::json& S = P["pretrain"];
                      const std::string cfg_path = (out / "model_config.json").string();
                      write_file_atomic(cfg_path, P["model"].dump(2) + "\n");
                      train::PretrainOptions po;
                      po.config_json = cfg_path;
                      po.data_dir = dir_tokens;
                      po.tokenizer_dir = dir_tok;
                      po.out_dir = dir_pre;
                      po.steps = S["steps"];
                      po.batch_size = S["batch"];
                      po.lr = S["lr"];
                      po.eval_every = S["eval_every"];
                      po.checkpoint_every = 100;
                      po.sample_tokens = 0;
                      po.seed = o.seed;
                      po.quiet = o.quiet;
                      // Pretraining itself accepts a resume at its last step (it trains nothing then).
                      po.resume = at > 0;
                      if (po.resume) po.config_json.clear();
                      const train::PretrainResult r = train::pretrain(po);
                      const TrainerEnd end{r.step, po.steps, r.interrupted, r.signal};
                      if (end.stopped_short()) return stopped(end);
                      const RunLog log = read_run_log(dir_pre);
                      const nlohmann::json &last_train = log.last_train, &last_eval = log.last_eval;
                      nlohmann::json m = {
                          {"steps", r.step},
                          {"train_loss", last_train.value("loss", r.train_loss)},
                          {"val_loss", last_eval.value("val_loss", r.val_loss)},
                          {"val_bpb", last_eval.value("val_bpb", r.val_bpb)},
                          {"tokens_per_s", log.rates.empty() ? r.tokens_per_s : median(log.rates)},
                          {"mfu", last_train.value("mfu", r.mfu)},
                          {"tokens_seen", r.step * S["batch"].get<int64_t>() * P["model"]["block_size"].get<int64_t>()}};
                      return evaluated(m, dir_pre, end);
                    }, dir_pre, P["pretrain"]["steps"].get<int64_t>()});
  stages.push_back({"sft", "supervised fine-tuning on the curriculum's conversations", [&](int64_t at) {
                      const nlohmann::json& S = P["sft"];
                      SftOptions so;
                      so.init = dir_pre;
                      so.data = dir_data + "/sft_train.jsonl";
                      so.val_data = dir_data + "/sft_val.jsonl";
                      so.out_dir = dir_sft;
                      so.steps = S["steps"];
                      so.batch_size = S["batch"];
                      so.lr = S["lr"];
                      so.eval_every = S["eval_every"];
                      const TrainerEnd end = run_trainer(so, o, S, at, so.steps, sft, [&](const auto& records) { plot_sft_curves(so.out_dir, records); });
                      if (end.stopped_short()) return stopped(end);
                      const RunLog log = read_run_log(dir_sft);
                      nlohmann::json m = trained(log);
                      m["val_loss_before"] = field(log.first_eval, "val_loss");
                      m["val_loss"] = field(log.last_eval, "val_loss");
                      return evaluated(m, dir_sft, end);
                    }, dir_sft, P["sft"]["steps"].get<int64_t>()});

  // The comparisons the reward model and DPO learn from: the curriculum's
  // synthetic ranked lists plus the SFT policy's own samples on the RL prompts,
  // ranked by the oracle (the labeller).
  const std::string comparisons = dir_label + "/preferences.jsonl";
  stages.push_back({"label", "collect comparisons: the labeller ranks the SFT policy's samples", [&](int64_t) {
                      LabelOptions lo = label_stage_options(P["label"], dir_sft, dir_data, comparisons);
                      lo.seed = o.seed;
                      lo.quiet = o.quiet;
                      return label_policy_samples(lo).to_json();
                    }});
  stages.push_back({"reward", "train the reward model on ranked responses", [&](int64_t at) {
                      const nlohmann::json& S = P["reward"];
                      RewardOptions ro;
                      ro.init = dir_sft;
                      ro.data = comparisons;
                      ro.val_data = dir_data + "/preferences_val.jsonl";
                      ro.out_dir = dir_rm;
                      ro.steps = S["steps"];
                      ro.batch_size = S["batch"];
                      ro.lr = S["lr"];
                      ro.eval_every = 0;
                      const TrainerEnd end = run_trainer(ro, o, S, at, ro.steps, train_reward_model,
                                                     [&](const auto& records) { plot_reward_curves(ro.out_dir, records); });
                      if (end.stopped_short()) return stopped(end);
                      const RunLog log = read_run_log(dir_rm);
                      // PPO's normalisation, as the final checkpoint stores it (reward.h).
                      const nlohmann::json tj = train::read_trainer_json(train::resolve_checkpoint(dir_rm));
                      nlohmann::json m = trained(log);
                      m.update({{"pairwise_accuracy_before", field(log.first_eval, "val_accuracy")},
                                {"pairwise_accuracy", field(log.last_eval, "val_accuracy")},
                                {"pairs", field(log.last_eval, "val_pairs")},
                                {"val_loss", field(log.last_eval, "val_loss")},
                                {"reward_mean", field(tj, "reward_mean")},
                                {"reward_std", field(tj, "reward_std")}});
                      // With the likelihood feature (reward.h) the accuracy is the combined
                      // reward's; the head's alone and the fitted weight stand beside it.
                      if (log.last_eval.contains("val_accuracy_head")) {
                        m["pairwise_accuracy_head"] = log.last_eval["val_accuracy_head"];
                        m["likelihood_weight"] = log.last_eval["likelihood_weight"];
                      }
                      if (log.last_eval.contains("val_breakdown")) m["pairwise_breakdown"] = log.last_eval["val_breakdown"];
                      // The same held-out pairs ranked by the SFT model's own mean log-probability
                      // (ember eval --preferences): what the reward model's initialisation knows.
                      EvalOptions lik;
                      lik.checkpoint = dir_sft;
                      lik.preferences = ro.val_data;
                      const nlohmann::json ranking = evaluate_checkpoint(lik)["metrics"]["likelihood_ranking"];
                      m["sft_likelihood_accuracy"] = ranking["pairwise_accuracy"];
                      if (ranking.contains("pairwise_breakdown")) m["sft_likelihood_breakdown"] = ranking["pairwise_breakdown"];
                      // The choice PPO asks of it: the SFT policy's own replies to the held-out
                      // prompts (sampled as the label stage samples, no reference reply), ranked
                      // by the labeller; the list accuracy above is on the curriculum's candidates.
                      LabelOptions own =
                          label_stage_options(P["label"], dir_sft, dir_data, dir_rm + "/heldout_policy_lists.jsonl");
                      own.prompts = dir_data + "/prompts_heldout.jsonl";
                      own.include.clear();
                      own.samples *= 2;  // more pairs than the label stage: a steadier figure
                      own.seed = o.seed;
                      own.with_reference = false;
                      own.every_pair = false;  // one figure, whatever the label stage writes
                      own.allow_empty = true;  // a tiny model's replies may all score alike
                      own.quiet = true;
                      if (label_policy_samples(own).lists > 0) {
                        EvalOptions on_policy;
                        on_policy.checkpoint = dir_rm;
                        on_policy.preferences = own.out;
                        const nlohmann::json r = evaluate_checkpoint(on_policy)["metrics"];
                        m["on_policy_accuracy"] = r["pairwise_accuracy"];
                        m["on_policy_pairs"] = r["pairs"];
                        if (r.contains("pairwise_breakdown")) m["on_policy_breakdown"] = r["pairwise_breakdown"];
                      }
                      // The hole PPO finds first in a reward model that has seen refusals only as
                      // the answer to harmful requests: paying for a refusal of anything. Each
                      // harmless held-out prompt's reference reply against the refusal.
                      const std::vector<PreferenceRecord> refusal_pairs =
                          answer_over_refusal_pairs(read_prompts(dir_data + "/prompts_heldout.jsonl"));
                      if (!refusal_pairs.empty()) {
                        std::vector<nlohmann::json> rows;
                        for (const PreferenceRecord& r : refusal_pairs) rows.push_back(preference_to_json(r));
                        EvalOptions refusal;
                        refusal.checkpoint = dir_rm;
                        refusal.preferences = dir_rm + "/heldout_answer_or_refusal.jsonl";
                        write_jsonl(refusal.preferences, rows);
                        const nlohmann::json r = evaluate_checkpoint(refusal)["metrics"];
                        m["answer_over_refusal_accuracy"] = r["pairwise_accuracy"];
                        m["answer_over_refusal_pairs"] = r["pairs"];
                      }
                      return complete_stage(m, end);
                    }, dir_rm, P["reward"]["steps"].get<int64_t>()});
  stages.push_back({"ppo", "RLHF: PPO against the reward model, KL-penalised to the SFT policy", [&](int64_t at) {
                      const nlohmann::json& S = P["ppo"];
                      PpoOptions po;
                      po.policy = dir_sft;
                      po.reward = dir_rm;
                      // RL prompts: the curriculum's (training wordings and their own, the
                      // held-out prompts and wordings unseen; or, with curriculum.rl_split
                      // "heldout", the evaluation's distribution without its prompts).
                      po.prompts = dir_data + "/prompts_rl.jsonl";
                      po.out_dir = dir_ppo;
                      po.iterations = S["iterations"];
                      po.rollout_batch = S["rollout_batch"];
                      po.max_new_tokens = S["max_new_tokens"];
                      // What the preset leaves out keeps PpoOptions' default.
                      po.minibatch = S.value("minibatch", po.minibatch);
                      po.ppo_epochs = S.value("epochs", po.ppo_epochs);
                      po.lr = S.value("lr", po.lr);
                      po.critic_lr = S.value("critic_lr", po.critic_lr);
                      po.kl_coef = S.value("kl_coef", po.kl_coef);
                      po.reward_baseline = S.value("reward_baseline", po.reward_baseline);
                      // PPO-ptx: the SFT demonstrations' loss mixed into the actor's.
                      po.ptx_coef = S.value("ptx_coef", po.ptx_coef);
                      if (po.ptx_coef > 0) po.ptx_data = dir_data + "/sft_train.jsonl";
                      const TrainerEnd end = run_trainer(po, o, S, at, po.iterations, ppo,
                                                     [&](const auto& records) { plot_ppo_curves(po.out_dir, records); });
                      if (end.stopped_short()) return stopped(end);
                      // One "rollout" record per iteration.
                      const RunLog log = read_run_log(dir_ppo, "rollout");
                      nlohmann::json m = {{"iterations", field(log.last_train, "step")},
                                          {"reward_first", field(log.first_train, "reward")},
                                          {"reward", field(log.last_train, "reward")},
                                          {"kl", field(log.last_train, "kl")}};
                      for (const char* k : {"entropy", "clip_fraction", "value_loss", "response_length"})
                        if (log.last_train.contains(k)) m[k] = log.last_train[k];
                      return evaluated(m, dir_ppo, end);
                    }, dir_ppo, P["ppo"]["iterations"].get<int64_t>()});
  stages.push_back({"dpo", "DPO on the same preferences (the RM-free comparison arm)", [&](int64_t at) {
                      const nlohmann::json& S = P["dpo"];
                      DpoOptions d;
                      d.init = dir_sft;
                      d.data = comparisons;
                      d.val_data = dir_data + "/preferences_val.jsonl";
                      d.out_dir = dir_dpo;
                      d.steps = S["steps"];
                      d.batch_size = S["batch"];
                      d.lr = S["lr"];
                      d.beta = S["beta"];
                      d.eval_every = 0;
                      const TrainerEnd end = run_trainer(d, o, S, at, d.steps, dpo,
                                                     [&](const auto& records) { plot_dpo_curves(d.out_dir, records, d.beta); });
                      if (end.stopped_short()) return stopped(end);
                      const RunLog log = read_run_log(dir_dpo);
                      nlohmann::json m = trained(log);
                      m["preference_accuracy_before"] = field(log.first_eval, "val_accuracy");
                      m["preference_accuracy"] = field(log.last_eval, "val_accuracy");
                      m["margin"] = field(log.last_eval, "val_margin");
                      if (log.last_eval.contains("val_breakdown")) m["preference_breakdown"] = log.last_eval["val_breakdown"];
                      return evaluated(m, dir_dpo, end);
                    }, dir_dpo, P["dpo"]["steps"].get<int64_t>()});
  stages.push_back({"chat", "publish the chat model (PPO's policy)", [&](int64_t) {
                      // A standalone copy of the final policy checkpoint, so <out>/chat is what
                      // `ember serve` and `ember chat` are pointed at. (The stage counts as done
                      // only once its stage.json is written after the copy.)
                      const std::string src = train::resolve_checkpoint(dir_ppo);
                      const auto over = fs::copy_options::overwrite_existing;
                      for (const char* f : {"model.safetensors", "trainer.json"})
                        fs::copy_file(fs::path(src) / f, fs::path(dir_chat) / f, over);
                      fs::copy(fs::path(src) / "tokenizer", fs::path(dir_chat) / "tokenizer",
                               over | fs::copy_options::recursive);
                      return nlohmann::json{{"from", src}};
                    }});

  // The preset's estimates for the ETA; the quick stages (curriculum, tokenizer, ...) count a second.
  auto planned = [&](const Stage& s) { return P["plan_s"].value(s.name, 1.0); };
  double planned_total = 0;
  for (const auto& s : stages) planned_total += planned(s);
  nlohmann::json report = {{"preset", o.preset}, {"seed", o.seed}, {"settings", P}, {"stages", nlohmann::json::object()}};
  if (!o.overrides.empty()) report["overrides"] = o.overrides;
  report["stage_order"] = nlohmann::json::array();
  for (const auto& s : stages) report["stage_order"].push_back(s.name);
  const auto t_start = clock::now();
  double planned_done = 0;
  SpeedrunResult result;
  for (size_t i = 0; i < stages.size(); ++i) {
    const Stage& s = stages[i];
    const fs::path sdir = out / s.name;
    const std::string marker = (sdir / "stage.json").string();
    if (fs::exists(marker)) {
      const nlohmann::json done = nlohmann::json::parse(read_text(marker));
      report["stages"][s.name] = done;
      planned_done += planned(s);
      std::cout << "[" << i + 1 << "/" << stages.size() << "] " << s.name << ": done before ("
                << ProgressBar::format_duration(done.value("seconds", 0.0)) << "), skipped" << std::endl;
      continue;
    }
    const double elapsed = std::chrono::duration<double>(clock::now() - t_start).count();
    std::cout << "\n[" << i + 1 << "/" << stages.size() << "] " << s.name << ": " << s.what << "  (planned "
              << ProgressBar::format_duration(planned(s)) << ", elapsed " << ProgressBar::format_duration(elapsed)
              << ", ETA " << ProgressBar::format_duration(planned_total - planned_done) << ")" << std::endl;
    fs::create_directories(sdir);
    // An earlier attempt that a signal stopped left interrupted.json (its time,
    // the steps the stage resumed at so far); a training stage continues from
    // its run folder's latest checkpoint, whether a signal wrote it or the
    // periodic checkpoints did before a hard kill.
    const std::string attempt_path = (sdir / "interrupted.json").string();
    const nlohmann::json before =
        fs::exists(attempt_path) ? nlohmann::json::parse(read_text(attempt_path)) : nlohmann::json::object();
    nlohmann::json resumed_at = before.value("resumed_at_steps", nlohmann::json::array());
    const int64_t at = s.run_dir.empty() ? 0 : checkpoint_step(s.run_dir);
    if (at > 0) {
      if (at < s.total)
        std::cout << "speedrun: " << s.name << " resumes at step " << at << " of " << s.total << " from "
                  << train::resolve_checkpoint(s.run_dir) << std::endl;
      else
        std::cout << "speedrun: " << s.name << " finished training before (checkpoint at step " << at << " of "
                  << s.total << "); only what follows it runs again" << std::endl;
      resumed_at.push_back(at);
    }
    const auto t0 = clock::now();
    nlohmann::json metrics = s.run(at);
    const double secs = before.value("seconds", 0.0) + std::chrono::duration<double>(clock::now() - t0).count();
    if (metrics.value("interrupted", false)) {
      const int64_t reached = s.run_dir.empty() ? 0 : checkpoint_step(s.run_dir);
      write_file_atomic(attempt_path,
                        nlohmann::json{{"seconds", secs}, {"resumed_at_steps", resumed_at}, {"step", reached}}.dump(2) +
                            "\n");
      std::cout << "speedrun: interrupted during " << s.name << " (checkpoint at step " << reached << " of " << s.total
                << "); rerun the same command to continue from there" << std::endl;
      result.interrupted = true;
      result.signal = metrics.value("signal", 0);
      return result;
    }
    const int stop_signal = metrics.value(kStopAfterStage, -1);
    metrics.erase(kStopAfterStage);
    // The figures are the same however many attempts the stage took; the
    // record says where it resumed and counts the time of every attempt a
    // signal stopped (a hard kill leaves no record of its time).
    nlohmann::json done = {{"seconds", secs}, {"metrics", metrics}};
    if (!resumed_at.empty()) done["resumed_at_steps"] = resumed_at;
    write_file_atomic(marker, done.dump(2) + "\n");
    fs::remove(attempt_path);
    report["stages"][s.name] = done;
    planned_done += planned(s);
    if (stop_signal >= 0) {
      std::cout << "speedrun: stopped after " << s.name << " (the stage is complete); rerun the same command to continue"
                << std::endl;
      result.interrupted = true;
      result.signal = stop_signal;
      return result;
    }
  }
  double total = 0;
  for (const auto& [name, st] : report["stages"].items()) total += st.value("seconds", 0.0);
  report["total_seconds"] = total;
  write_file_atomic((out / "report.json").string(), report.dump(2) + "\n");
  result.report_md = (out / "report.md").string();
  write_file_atomic(result.report_md, render_report_markdown(report));
  result.report = report;
  result.chat_checkpoint = dir_chat;
  return result;
}

}  // namespace ember::chat
