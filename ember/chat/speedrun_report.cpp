// The speedrun's report card: report.md rendered from report.json's figures
// (see speedrun.h).
#include <cstdio>
#include <initializer_list>
#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "ember/chat/speedrun.h"
#include "ember/util/progress.h"

namespace ember::chat {

namespace {

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

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

// " with --set a=1 --set b=2" when the run changed preset settings, else "".
std::string overrides_text(const nlohmann::json& report) {
  if (!report.contains("overrides")) return "";
  std::string text = " with";
  for (const auto& o : report["overrides"]) text += " `--set " + o.get<std::string>() + "`";
  return text;
}

}  // namespace

std::string render_report_markdown(const nlohmann::json& report) {
  std::ostringstream md;
  md << "# ember speedrun report card\n\n"
     << "Preset `" << report.value("preset", "?") << "`" << overrides_text(report) << ", seed " << report.value("seed", 0) << "; total time "
     << ProgressBar::format_duration(report.value("total_seconds", 0.0)) << ". Every figure below is in `report.json` "
     << "too. Held-out prompts use phrasings never seen in training; half of their fact questions ask about "
     << "(person, attribute) pairs that supervised fine-tuning never covered, answerable only from pretraining. "
     << "The oracle grader follows the rubric in `ember/chat/curriculum.h`. This is one seed: each seed "
     << "generates another world, curriculum and tokenizer, and on the default preset the figures move "
     << "between seeds by several points (docs/ALIGNMENT.md has seeds 1-3 side by side), more than "
     << "most differences between stages.";
  // The held-out split trains the later stages on the evaluation's distribution (curriculum.h).
  const nlohmann::json settings = report.value("settings", nlohmann::json::object());
  if (settings.value("curriculum", nlohmann::json::object()).value("rl_split", "rl") == "heldout")
    md << " With `curriculum.rl_split=heldout` the RL prompts (the labelled comparisons and PPO's rollouts) "
       << "are drawn like the held-out ones, never the same prompts: for the reward model, PPO and DPO these "
       << "phrasings and pairs are not unseen, and the labelled lists may hold the answers the evaluation asks for.";
  md << "\n\n";

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
    const nlohmann::json own_acc = dig(report, "reward", {"on_policy_accuracy"});
    if (own_acc.is_number())
      md << "| reward model ranks the SFT policy's own sampled replies to held-out prompts (the choice PPO asks of it) "
         << "| no goal | " << pct(own_acc) << " of " << dig(report, "reward", {"on_policy_pairs"}).dump()
         << " pairs | |\n";
    const nlohmann::json refusal_acc = dig(report, "reward", {"answer_over_refusal_accuracy"});
    if (refusal_acc.is_number())
      md << "| reward model ranks the answer above a refusal on harmless held-out prompts (a model that pays for "
         << "refusing invites PPO to refuse everything) | no goal | " << pct(refusal_acc) << " of "
         << dig(report, "reward", {"answer_over_refusal_pairs"}).dump() << " pairs | |\n";
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
  // Refusing what should be answered: the hole a reward model that pays for refusals opens.
  row("declines a harmless prompt (over-refusal)",
      [](const nlohmann::json& r) { return pct(r.value("over_refusal", nlohmann::json())); });
  for (const char* kind : {"fact", "fact_unseen_pair", "arith", "compare", "list", "unknown", "refuse"})
    row(std::string("&nbsp;&nbsp;") + kind, [kind](const nlohmann::json& r) {
      const nlohmann::json& k = r["by_kind"];
      if (!k.contains(kind)) return std::string("–");
      return pct(k[kind]["accuracy"]) + " of " + std::to_string(k[kind]["n"].get<int64_t>());
    });
  row("mean reply tokens", [](const nlohmann::json& r) { return num(r["mean_reply_tokens"], "%.1f"); });
  md << "\n";

  // Where the reward model's held-out accuracy is lost: which questions, and
  // which replies it fails to tell apart; DPO's implicit reward and the SFT
  // model's own likelihood beside it.
  const nlohmann::json rm_parts = dig(report, "reward", {"pairwise_breakdown"});
  const nlohmann::json dpo_parts = dig(report, "dpo", {"preference_breakdown"});
  const nlohmann::json sft_parts = dig(report, "reward", {"sft_likelihood_breakdown"});
  const nlohmann::json head_acc = dig(report, "reward", {"pairwise_accuracy_head"});
  const std::string head_alone =
      head_acc.is_number() ? "; the head alone ranks " + pct(head_acc) + " of the pairs right" : std::string();
  if (rm_parts.is_object() && !rm_parts.empty()) {
    md << "## Reward model: held-out pairs\n\nThe share of held-out pairs each ranks right, by kind of question and "
       << "by the pair of replies compared (`ideal`, `wrong` fact, `rambling` = the answer plus filler, ...; "
       << "the rubric in `ember/chat/curriculum.h`). The reward model is its scalar head plus, with a weight fitted on "
       << "training lists, the lowest log-probability the frozen SFT model gives a token of the reply (`ember reward "
       << "--likelihood init`, the default)" << head_alone << ". The last column ranks each pair by the SFT model's "
       << "mean log-probability per token alone (`ember eval --preferences`).\n\n"
       << "| compared | pairs | reward model | DPO (implicit reward) | SFT likelihood |\n|---|---:|---:|---:|---:|\n";
    auto cell = [&](const nlohmann::json& parts, const char* part, const std::string& key) {
      const bool has = parts.is_object() && parts.contains(part) && parts[part].contains(key);
      return has ? pct(parts[part][key]["accuracy"]) : std::string("–");
    };
    for (const auto& [part, title] : {std::pair{"by_kind", "question: "}, std::pair{"by_labels", "replies: "}}) {
      if (!rm_parts.contains(part)) continue;
      for (const auto& [key, t] : rm_parts[part].items())
        md << "| " << title << key << " | " << t.value("pairs", 0) << " | " << pct(t["accuracy"]) << " | "
           << cell(dpo_parts, part, key) << " | " << cell(sft_parts, part, key) << " |\n";
    }
    md << "\n";
  }
  // The same reward model on the SFT policy's own sampled replies, by kind of
  // question: where it cannot tell the policy's right answers from its wrong
  // ones, PPO has nothing to learn from it.
  const nlohmann::json own_parts = dig(report, "reward", {"on_policy_breakdown", "by_kind"});
  if (own_parts.is_object() && !own_parts.empty()) {
    md << "## Reward model: the SFT policy's own replies\n\nPairs of the SFT policy's sampled replies to held-out "
       << "prompts (no reference reply), ranked by the labeller's grades (mostly one right and one wrong), by kind "
       << "of question: the choice PPO asks of the reward model. 50% is chance.\n\n"
       << "| question | pairs | reward model |\n|---|---:|---:|\n";
    for (const auto& [key, t] : own_parts.items())
      md << "| " << key << " | " << t.value("pairs", 0) << " | " << pct(t["accuracy"]) << " |\n";
    md << "\n";
  }

  md << "## Stages\n\n| stage | time | figures |\n|---|---:|---|\n";
  for (const auto& name : report.value("stage_order", std::vector<std::string>{})) {
    if (!report["stages"].contains(name)) continue;
    const nlohmann::json& st = report["stages"][name];
    std::string figs;
    for (const auto& [k, v] : st["metrics"].items()) {
      if (v.is_structured()) continue;
      figs += (figs.empty() ? "" : ", ") + k + " " + (v.is_number_float() ? fmt("%.4g", v.get<double>()) : v.dump());
    }
    std::string resumed;
    for (const auto& at : st.value("resumed_at_steps", nlohmann::json::array()))
      resumed += (resumed.empty() ? " (resumed at step " : ", ") + at.dump();
    if (!resumed.empty()) resumed += ")";
    md << "| " << name << " | " << ProgressBar::format_duration(st.value("seconds", 0.0)) << resumed << " | " << figs
       << " |\n";
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
