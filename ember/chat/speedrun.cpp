// The speedrun (see speedrun.h).
#include "ember/chat/speedrun.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
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
#include "ember/train/pretrain.h"
#include "ember/util/progress.h"

namespace ember::chat {
namespace fs = std::filesystem;

std::vector<std::string> speedrun_preset_names() { return {"default", "tiny"}; }

nlohmann::json speedrun_preset(const std::string& name) {
  // Sizes are chosen for a 2-core CPU: the default preset's stages take about
  // 7 (pretrain), 3 (SFT), 1.5 (reward model), 3 (PPO), 1.5 (DPO) and 1
  // (evaluations) minutes there. The model is GPT-2 shaped (layernorm, learned
  // positions, GELU, tied embeddings); the curriculum's vocabulary is a few
  // hundred words, so a 1024-token BPE holds nearly every word whole.
  if (name == "default")
    return {
        {"curriculum", "default"},
        {"vocab_size", 1024},
        {"model", {{"n_layer", 4}, {"n_head", 4}, {"n_kv_head", 4}, {"n_embd", 256}, {"block_size", 256},
                   {"vocab_size", 1024}, {"dropout", 0.0}}},
        {"pretrain", {{"steps", 700}, {"batch", 8}, {"lr", 2e-3}, {"eval_every", 350}}},
        {"sft", {{"steps", 200}, {"batch", 16}, {"lr", 1e-3}, {"eval_every", 0}}},
        {"label", {{"samples", 4}, {"max_new_tokens", 32}, {"temperature", 1.0}}},
        {"reward", {{"steps", 200}, {"batch", 8}, {"lr", 5e-4}}},
        // PPO is kept gentle: at lr 5e-5 x 4 epochs it drifted (KL ~2-10 nats) and lost
        // 23 points of held-out accuracy against this reward model (80% pairwise).
        {"ppo", {{"iterations", 30}, {"rollout_batch", 32}, {"max_new_tokens", 32}, {"minibatch", 8}, {"epochs", 2},
                 {"lr", 1e-5}, {"critic_lr", 5e-5}, {"kl_coef", 0.1}}},
        {"dpo", {{"steps", 120}, {"batch", 8}, {"lr", 5e-5}, {"beta", 0.1}}},
        {"eval", {{"prompts", 200}, {"max_new_tokens", 48}}},
        {"plan_s", {{"pretrain", 430}, {"sft", 240}, {"label", 60}, {"reward", 110}, {"ppo", 180}, {"dpo", 90}}},
    };
  if (name == "tiny")
    return {
        {"curriculum", "tiny"},
        {"vocab_size", 512},
        {"model", {{"n_layer", 2}, {"n_head", 2}, {"n_kv_head", 2}, {"n_embd", 64}, {"block_size", 256},
                   {"vocab_size", 512}, {"dropout", 0.0}}},
        {"pretrain", {{"steps", 60}, {"batch", 8}, {"lr", 3e-3}, {"eval_every", 30}}},
        {"sft", {{"steps", 30}, {"batch", 8}, {"lr", 2e-3}, {"eval_every", 0}}},
        {"label", {{"samples", 2}, {"max_new_tokens", 12}, {"temperature", 1.0}}},
        {"reward", {{"steps", 20}, {"batch", 4}, {"lr", 1e-3}}},
        {"ppo", {{"iterations", 3}, {"rollout_batch", 8}, {"max_new_tokens", 12}, {"minibatch", 8}, {"epochs", 2},
                 {"lr", 2e-5}, {"critic_lr", 5e-5}, {"kl_coef", 0.05}}},
        {"dpo", {{"steps", 10}, {"batch", 4}, {"lr", 1e-4}, {"beta", 0.1}}},
        {"eval", {{"prompts", 16}, {"max_new_tokens", 16}}},
        {"plan_s", {{"pretrain", 5}, {"sft", 2}, {"label", 2}, {"reward", 2}, {"ppo", 2}, {"dpo", 1}}},
    };
  std::string known;
  for (const auto& n : speedrun_preset_names()) known += (known.empty() ? "" : ", ") + n;
  fail("speedrun", "unknown preset \"", name, "\" (known: ", known, ")");
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

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// Whether a training stage stopped (SIGINT/SIGTERM) before its last step, so
// the rerun must do it again. A signal during the last step still leaves the
// stage complete (the trainers evaluate before they check for the stop): its
// metrics are kept, marked with kStopAfterStage so that the run records the
// stage as done and then stops instead of swallowing the signal.
constexpr const char* kStopAfterStage = "stop_after_stage";
bool stopped_short(bool interrupted, int64_t step, const nlohmann::json& stage_settings) {
  return interrupted && step < stage_settings["steps"].get<int64_t>();
}
nlohmann::json complete_stage(nlohmann::json metrics, bool interrupted) {
  if (interrupted) metrics[kStopAfterStage] = true;
  return metrics;
}

// One stage of the run: a folder (its name), what it does, and the work,
// which returns the stage's metrics. Its planned duration, for the ETA, is
// the preset's "plan_s" entry.
struct Stage {
  std::string name, what;
  std::function<nlohmann::json()> run;
};

}  // namespace

SpeedrunResult speedrun(const SpeedrunOptions& o) {
  if (o.out_dir.empty()) fail("speedrun", "--out is required (the folder the run and its report go into)");
  if (o.threads > 0) omp_set_num_threads(o.threads);
  const nlohmann::json P = speedrun_preset(o.preset);
  const fs::path out(o.out_dir);
  fs::create_directories(out);
  // A rerun must use the preset and seed the folder was started with.
  const std::string plan_path = (out / "speedrun.json").string();
  const nlohmann::json plan = {{"preset", o.preset}, {"seed", o.seed}, {"settings", P}};
  if (fs::exists(plan_path)) {
    const nlohmann::json before = nlohmann::json::parse(read_text(plan_path));
    if (before.value("preset", "") != o.preset || before.value("seed", uint64_t(0)) != o.seed)
      fail("speedrun", o.out_dir, " holds a run of preset \"", before.value("preset", "?"), "\" seed ",
           before.value("seed", uint64_t(0)), "; continue it with those, or choose another --out");
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

  std::vector<Stage> stages;
  stages.push_back({"curriculum", "generate the built-in world and its data", [&] {
                      const auto files = write_curriculum(dir_data, curriculum_preset(P["curriculum"]), o.seed);
                      return nlohmann::json{{"files", files},
                                            {"pretrain_bytes", fs::file_size(dir_data + "/pretrain.txt")}};
                    }});
  stages.push_back({"tokenizer", "train the BPE tokenizer", [&] {
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
  stages.push_back({"tokens", "tokenize the pretraining text into shards", [&] {
                      data::PrepareOptions po;
                      po.inputs = {dir_data + "/pretrain.txt"};
                      po.out = dir_tokens;
                      po.val_fraction = 0.02;
                      po.overwrite = true;
                      const data::DataMeta m = data::prepare_data(Tokenizer::load(dir_tok), po);
                      return nlohmann::json{{"train_tokens", m.splits.at("train").tokens},
                                            {"val_tokens", m.splits.at("val").tokens}};
                    }});
  stages.push_back({"pretrain", "pretrain the GPT on the world's text", [&] {
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
                      po.resume = train::has_checkpoint(dir_pre);
                      if (po.resume) po.config_json.clear();
                      const train::PretrainResult r = train::pretrain(po);
                      if (stopped_short(r.interrupted, r.step, S)) return nlohmann::json{{"interrupted", true}};
                      // The figures come from the run's metrics.jsonl, not only from this call:
                      // a run resumed at its last step trains nothing here but is complete.
                      nlohmann::json last_train, last_eval;
                      std::vector<double> rates;
                      std::istringstream lines(read_text(dir_pre + "/metrics.jsonl"));
                      for (std::string line; std::getline(lines, line);) {
                        const nlohmann::json rec = nlohmann::json::parse(line, nullptr, false);
                        if (rec.is_discarded()) continue;
                        if (rec.value("kind", "") == "train") {
                          last_train = rec;
                          if (rec.contains("tokens_per_s")) rates.push_back(rec["tokens_per_s"].get<double>());
                        } else if (rec.value("kind", "") == "eval") {
                          last_eval = rec;
                        }
                      }
                      std::sort(rates.begin(), rates.end());
                      nlohmann::json m = {
                          {"steps", r.step},
                          {"train_loss", last_train.value("loss", r.train_loss)},
                          {"val_loss", last_eval.value("val_loss", r.val_loss)},
                          {"val_bpb", last_eval.value("val_bpb", r.val_bpb)},
                          {"tokens_per_s", rates.empty() ? r.tokens_per_s : rates[rates.size() / 2]},
                          {"mfu", last_train.value("mfu", r.mfu)},
                          {"tokens_seen", r.step * S["batch"].get<int64_t>() * P["model"]["block_size"].get<int64_t>()}};
                      m["eval"] = eval_lm(dir_pre);
                      return complete_stage(m, r.interrupted);
                    }});
  stages.push_back({"sft", "supervised fine-tuning on the curriculum's conversations", [&] {
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
                      so.seed = o.seed;
                      so.quiet = o.quiet;
                      const SftResult r = sft(so);
                      if (stopped_short(r.interrupted, r.step, S)) return nlohmann::json{{"interrupted", true}};
                      nlohmann::json m = {{"steps", r.step}, {"train_loss", r.train_loss},
                                          {"val_loss_before", r.val_loss_before}, {"val_loss", r.val_loss}};
                      m["eval"] = eval_lm(dir_sft);
                      return complete_stage(m, r.interrupted);
                    }});

  // The comparisons the reward model and DPO learn from: the curriculum's
  // synthetic ranked lists plus the SFT policy's own samples on the RL prompts,
  // ranked by the oracle (the labeller).
  const std::string comparisons = dir_label + "/preferences.jsonl";
  stages.push_back({"label", "collect comparisons: the labeller ranks the SFT policy's samples", [&] {
                      const nlohmann::json& S = P["label"];
                      LabelOptions lo;
                      lo.policy = dir_sft;
                      lo.prompts = dir_data + "/prompts_rl.jsonl";
                      lo.include = {dir_data + "/preferences_train.jsonl"};
                      lo.out = comparisons;
                      lo.samples = S["samples"];
                      lo.max_new_tokens = S["max_new_tokens"];
                      lo.temperature = S.value("temperature", lo.temperature);
                      lo.seed = o.seed;
                      lo.quiet = o.quiet;
                      return label_policy_samples(lo).to_json();
                    }});
  stages.push_back({"reward", "train the reward model on ranked responses", [&] {
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
                      ro.seed = o.seed;
                      ro.quiet = o.quiet;
                      const RewardResult r = train_reward_model(ro);
                      if (stopped_short(r.interrupted, r.step, S)) return nlohmann::json{{"interrupted", true}};
                      return complete_stage({{"steps", r.step},
                                            {"train_loss", r.train_loss},
                                            {"pairwise_accuracy_before", r.val_before.accuracy},
                                            {"pairwise_accuracy", r.val.accuracy},
                                            {"pairs", r.val.pairs},
                                            {"val_loss", r.val.loss},
                                            {"reward_mean", r.reward_mean},
                                            {"reward_std", r.reward_std}},
                                            r.interrupted);
                    }});
  stages.push_back({"ppo", "RLHF: PPO against the reward model, KL-penalised to the SFT policy", [&] {
                      const nlohmann::json& S = P["ppo"];
                      PpoOptions po;
                      po.policy = dir_sft;
                      po.reward = dir_rm;
                      // RL prompts: the curriculum's (training wordings and their own); the
                      // held-out prompts and wordings stay unseen for the evaluation.
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
                      po.seed = o.seed;
                      po.quiet = o.quiet;
                      const PpoResult r = ppo(po);
                      nlohmann::json m = {{"iterations", r.iterations}, {"reward_first", r.reward_first},
                                          {"reward", r.reward}, {"kl", r.kl}};
                      if (!r.history.empty()) {
                        const nlohmann::json& last = r.history.back();
                        for (const char* k : {"entropy", "clip_fraction", "value_loss", "response_length"})
                          if (last.contains(k)) m[k] = last[k];
                      }
                      m["eval"] = eval_lm(dir_ppo);
                      return m;
                    }});
  stages.push_back({"dpo", "DPO on the same preferences (the RM-free comparison arm)", [&] {
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
                      d.seed = o.seed;
                      d.quiet = o.quiet;
                      const DpoResult r = dpo(d);
                      if (stopped_short(r.interrupted, r.step, S)) return nlohmann::json{{"interrupted", true}};
                      nlohmann::json m = {{"steps", r.step},
                                          {"train_loss", r.train_loss},
                                          {"preference_accuracy_before", r.val_before.accuracy},
                                          {"preference_accuracy", r.val.accuracy},
                                          {"margin", r.val.margin}};
                      m["eval"] = eval_lm(dir_dpo);
                      return complete_stage(m, r.interrupted);
                    }});
  stages.push_back({"chat", "publish the chat model (PPO's policy)", [&] {
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
    const auto t0 = clock::now();
    nlohmann::json metrics = s.run();
    if (metrics.value("interrupted", false)) {
      std::cout << "speedrun: interrupted during " << s.name << "; rerun the same command to continue" << std::endl;
      result.interrupted = true;
      return result;
    }
    const bool stop_now = metrics.value(kStopAfterStage, false);
    metrics.erase(kStopAfterStage);
    const double secs = std::chrono::duration<double>(clock::now() - t0).count();
    const nlohmann::json done = {{"seconds", secs}, {"metrics", metrics}};
    write_file_atomic(marker, done.dump(2) + "\n");
    report["stages"][s.name] = done;
    planned_done += planned(s);
    if (stop_now) {
      std::cout << "speedrun: stopped after " << s.name << " (the stage is complete); rerun the same command to continue"
                << std::endl;
      result.interrupted = true;
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

namespace {

std::string pct(const nlohmann::json& v) { return v.is_number() ? fmt("%.1f%%", 100 * v.get<double>()) : "–"; }
std::string num(const nlohmann::json& v, const char* f = "%.4f") { return v.is_number() ? fmt(f, v.get<double>()) : "–"; }

// report["stages"][stage]["metrics"] followed by `path` (keys), or null.
nlohmann::json dig(const nlohmann::json& report, const std::string& stage, std::initializer_list<const char*> path) {
  const nlohmann::json* j = &report;
  for (const char* k : {"stages", stage.c_str(), "metrics"}) {
    if (!j->is_object() || !j->contains(k)) return nullptr;
    j = &(*j)[k];
  }
  for (const char* k : path) {
    if (!j->is_object() || !j->contains(k)) return nullptr;
    j = &(*j)[k];
  }
  return *j;
}

nlohmann::json oracle(const nlohmann::json& report, const std::string& stage) {
  return dig(report, stage, {"eval", "metrics", "oracle"});
}

}  // namespace

std::string render_report_markdown(const nlohmann::json& report) {
  std::ostringstream md;
  md << "# ember speedrun report card\n\n"
     << "Preset `" << report.value("preset", "?") << "`, seed " << report.value("seed", 0) << "; total time "
     << ProgressBar::format_duration(report.value("total_seconds", 0.0)) << ". Every figure below is in `report.json` "
     << "too. Held-out prompts use phrasings never seen in training; half of their fact questions ask about "
     << "(person, attribute) pairs that supervised fine-tuning never covered, answerable only from pretraining. "
     << "The oracle grader follows the rubric in `ember/chat/curriculum.h`.\n\n";

  // The goals of the recipe (the alignment issue's), each with what this run measured.
  {
    const nlohmann::json pre = oracle(report, "pretrain"), sft = oracle(report, "sft"), ppo = oracle(report, "ppo"),
                         dpo = oracle(report, "dpo");
    const nlohmann::json rm_acc = dig(report, "reward", {"pairwise_accuracy"}), kl = dig(report, "ppo", {"kl"});
    auto get = [](const nlohmann::json& r, const char* k) { return r.is_object() && r.contains(k) ? r[k] : nlohmann::json(); };
    auto mark = [](bool known, bool met) { return std::string(!known ? "–" : met ? "met" : "not met"); };
    const nlohmann::json sft_acc = get(sft, "accuracy"), pre_acc = get(pre, "accuracy");
    const nlohmann::json sft_score = get(sft, "score"), ppo_score = get(ppo, "score");
    const nlohmann::json sft_hal = get(sft, "hallucination"), ppo_hal = get(ppo, "hallucination");
    const bool have_sft = sft_acc.is_number() && pre_acc.is_number();
    const bool have_ppo = ppo_score.is_number() && sft_score.is_number();
    const double gain = have_ppo ? 100 * (ppo_score.get<double>() - sft_score.get<double>()) : 0;
    const double total = report.value("total_seconds", 0.0);
    md << "## Goals\n\n| goal | target | this run | |\n|---|---|---|---|\n";
    const nlohmann::json sft_world = get(sft, "world_accuracy"), pre_world = get(pre, "world_accuracy");
    const bool have_world = sft_world.is_number() && pre_world.is_number();
    md << "| SFT answers held-out world questions exactly (facts, comparisons, unknown people) | ≥ 70% (pretrained: "
       << pct(pre_world) << ") | " << pct(sft_world) << " | "
       << mark(have_world, have_world && sft_world.get<double>() >= 0.7) << " |\n";
    md << "| SFT, all held-out prompts (also arithmetic, sorting, refusals) | far above pretrained (" << pct(pre_acc)
       << ") | " << pct(sft_acc) << " | " << mark(have_sft, have_sft && sft_acc.get<double>() >= 2 * pre_acc.get<double>())
       << " |\n";
    md << "| reward model ranks held-out pairs correctly | ≥ 90% | " << pct(rm_acc) << " | "
       << mark(rm_acc.is_number(), rm_acc.is_number() && rm_acc.get<double>() >= 0.9) << " |\n";
    md << "| PPO raises the oracle score over SFT | +10 points | " << (have_ppo ? fmt("%+.1f points", gain) : "–")
       << " | " << mark(have_ppo, gain >= 10) << " |\n";
    const bool have_hal = sft_hal.is_number() && ppo_hal.is_number();
    md << "| PPO at least halves hallucination about unknown people | ≤ " << (have_hal ? pct(sft_hal.get<double>() / 2) : "–")
       << " (SFT: " << pct(sft_hal) << ") | " << pct(ppo_hal) << " | "
       << mark(have_hal, have_hal && ppo_hal.get<double>() <= sft_hal.get<double>() / 2) << " |\n";
    md << "| PPO's KL to the SFT policy stays bounded | final KL per reply | " << num(kl, "%.3f") << " nats | |\n";
    md << "| DPO beside PPO | oracle score | " << num(get(dpo, "score"), "%.3f") << " (PPO " << num(ppo_score, "%.3f")
       << ", SFT " << num(sft_score, "%.3f") << ") | |\n";
    md << "| the whole run on a 2-core CPU | ≤ 20 min | " << ProgressBar::format_duration(total) << " | "
       << mark(total > 0, total <= 1200) << " |\n\n";
    const nlohmann::json params = dig(report, "pretrain", {"eval", "parameters"});
    const nlohmann::json seen = dig(report, "pretrain", {"tokens_seen"});
    if (params.is_number())
      md << "Model: " << fmt("%.2fM", params.get<double>() / 1e6) << " parameters (" << report["settings"]["model"].dump()
         << "); pretraining saw " << (seen.is_number() ? fmt("%.2fM", seen.get<double>() / 1e6) : "?") << " tokens.\n\n";
  }

  const std::vector<std::pair<std::string, std::string>> lms = {
      {"pretrain", "pretrained"}, {"sft", "SFT"}, {"ppo", "PPO (RLHF)"}, {"dpo", "DPO"}};
  md << "## Held-out evaluation\n\n| metric |";
  std::vector<std::pair<std::string, nlohmann::json>> cols;
  for (const auto& [stage, label] : lms) {
    nlohmann::json r = oracle(report, stage);
    if (r.is_null()) continue;
    cols.push_back({label, r});
    md << " " << label << " |";
  }
  md << "\n|---|";
  for (size_t i = 0; i < cols.size(); ++i) md << "---:|";
  md << "\n";
  auto row = [&](const std::string& name, const std::function<std::string(const nlohmann::json&)>& cell) {
    md << "| " << name << " |";
    for (const auto& [label, r] : cols) md << " " << cell(r) << " |";
    md << "\n";
  };
  row("exact answers, all prompts (oracle accuracy)", [](const nlohmann::json& r) { return pct(r["accuracy"]); });
  row("exact answers, world questions", [](const nlohmann::json& r) { return pct(r.value("world_accuracy", nlohmann::json())); });
  row("rubric score (0-1)", [](const nlohmann::json& r) { return num(r["score"], "%.3f"); });
  row("hallucination about unknown people", [](const nlohmann::json& r) { return pct(r["hallucination"]); });
  for (const char* kind : {"fact", "fact_unseen_pair", "arith", "compare", "list", "unknown", "refuse"})
    row(std::string("&nbsp;&nbsp;") + kind, [kind](const nlohmann::json& r) {
      const nlohmann::json& k = r["by_kind"];
      if (!k.contains(kind)) return std::string("–");
      return pct(k[kind]["accuracy"]) + " of " + std::to_string(k[kind]["n"].get<int64_t>());
    });
  row("mean reply tokens", [](const nlohmann::json& r) { return num(r["mean_reply_tokens"], "%.1f"); });
  md << "\n";

  md << "## Stages\n\n| stage | time | figures |\n|---|---:|---|\n";
  for (const auto& name : report.value("stage_order", std::vector<std::string>{})) {
    if (!report["stages"].contains(name)) continue;
    const nlohmann::json& st = report["stages"][name];
    std::string figs;
    for (const auto& [k, v] : st["metrics"].items()) {
      if (v.is_structured()) continue;
      figs += (figs.empty() ? "" : ", ") + k + " " + (v.is_number_float() ? fmt("%.4g", v.get<double>()) : v.dump());
    }
    md << "| " << name << " | " << ProgressBar::format_duration(st.value("seconds", 0.0)) << " | " << figs << " |\n";
  }
  md << "\n## Curves\n\n";
  for (const auto& [file, title] : std::vector<std::pair<std::string, std::string>>{
           {"pretrain/loss.svg", "pretraining loss"}, {"sft/loss.svg", "SFT loss"},
           {"reward/reward.svg", "reward model"}, {"ppo/reward.svg", "PPO reward"},
           {"ppo/kl.svg", "PPO KL to the SFT policy"}, {"dpo/dpo.svg", "DPO"}})
    md << "### " << title << "\n\n![" << title << "](" << file << ")\n\n";
  return md.str();
}

}  // namespace ember::chat
