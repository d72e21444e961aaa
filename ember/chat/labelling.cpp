// Comparisons of the policy's own samples, ranked by the oracle (see labelling.h).
#include "ember/chat/labelling.h"

#include <omp.h>

#include <algorithm>
#include <map>

#include "ember/chat/curriculum.h"
#include "ember/chat/jsonl.h"
#include "ember/chat/replies.h"
#include "ember/core/error.h"
#include "ember/nn/module_io.h"
#include "ember/train/model_checkpoint.h"
#include "ember/util/progress.h"

namespace ember::chat {

nlohmann::json LabelResult::to_json() const {
  return {{"prompts", prompts},   {"samples", samples},   {"lists", lists},
          {"pairs", pairs},       {"extra_pairs", extra_pairs}, {"included", included}, {"sample_accuracy", sample_accuracy},
          {"sample_score", sample_score}};
}

std::vector<std::string> rank_by_grade(const nlohmann::json& key, const std::string* reference,
                                       const std::vector<std::string>& samples) {
  std::vector<std::string> candidates;
  if (reference) candidates.push_back(*reference);
  candidates.insert(candidates.end(), samples.begin(), samples.end());
  // score -> the first reply with it; std::map orders scores, so walking it
  // backwards is best first.
  std::map<double, std::string> by_score;
  for (const auto& c : candidates) by_score.emplace(grade_response(key, c).score, c);
  std::vector<std::string> ranked;
  for (auto it = by_score.rbegin(); it != by_score.rend(); ++it) ranked.push_back(it->second);
  return ranked;
}

std::vector<std::pair<std::string, std::string>> further_pairs(const nlohmann::json& key, const std::string* reference,
                                                               const std::vector<std::string>& samples,
                                                               const std::vector<std::string>& ranked) {
  std::vector<std::string> distinct;
  if (reference) distinct.push_back(*reference);
  for (const auto& s : samples)
    if (std::find(distinct.begin(), distinct.end(), s) == distinct.end()) distinct.push_back(s);
  std::vector<double> score;
  for (const auto& d : distinct) score.push_back(grade_response(key, d).score);
  auto in_ranked = [&](const std::string& t) { return std::find(ranked.begin(), ranked.end(), t) != ranked.end(); };
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < distinct.size(); ++i)
    for (size_t j = 0; j < distinct.size(); ++j)
      if (score[i] > score[j] && !(in_ranked(distinct[i]) && in_ranked(distinct[j])))
        out.emplace_back(distinct[i], distinct[j]);
  return out;
}

LabelResult label_policy_samples(const LabelOptions& o) {
  const char* op = "label";
  if (o.out.empty()) fail(op, "--out is required (the preferences file to write)");
  if (o.prompts.empty()) fail(op, "--prompts is required (prompts with grading keys, e.g. a curriculum's prompts_rl.jsonl)");
  if (o.samples < 1) fail(op, "--samples must be at least 1, got ", o.samples);
  if (!(o.temperature > 0)) fail(op, "--temperature must be positive (the labeller compares samples), got ", o.temperature);
  if (o.max_new_tokens < 1) fail(op, "--max-new-tokens must be at least 1, got ", o.max_new_tokens);
  if (o.threads > 0) omp_set_num_threads(o.threads);

  const train::ModelCheckpoint ckpt =
      train::open_model_checkpoint(o.policy, {"sft", "dpo", "ppo", "pretrain"}, op, "--policy");
  const Tokenizer tok = train::load_checkpoint_tokenizer(ckpt);
  const ChatTemplate tmpl(tok);
  models::GPT policy(ckpt.config);
  nn::load_module(policy, ckpt.model_path);
  policy.eval();

  std::vector<PromptRecord> prompts = read_prompts(o.prompts);
  if (o.limit > 0 && int64_t(prompts.size()) > o.limit) prompts.resize(size_t(o.limit));
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (!prompts[i].meta.contains("grade"))
      fail(op, o.prompts, ": prompt ", i + 1, " has no \"grade\" key; the labeller needs one per prompt (use a curriculum's "
               "prompts_rl.jsonl)");
    if (prompts[i].meta.contains("reference") && !prompts[i].meta["reference"].is_string())
      fail(op, o.prompts, ": prompt ", i + 1, ": \"reference\" must be a string");
  }

  std::vector<nlohmann::json> records;
  LabelResult res;
  for (const auto& path : o.include)
    for (const auto& r : read_preferences(path)) records.push_back(preference_to_json(r)), ++res.included;

  // Prompts go through the engine in chunks (for the progress bar); request
  // i of the whole run has seed seed + i in every chunk size.
  const size_t per_chunk = 64;
  const size_t k = size_t(o.samples);
  std::unique_ptr<ProgressBar> bar;
  if (!o.quiet) bar = std::make_unique<ProgressBar>("label", int64_t(prompts.size()), "prompts");
  double score_sum = 0;
  int64_t correct = 0;
  for (size_t from = 0; from < prompts.size(); from += per_chunk) {
    const size_t to = std::min(prompts.size(), from + per_chunk);
    std::vector<Conversation> convs;
    for (size_t i = from; i < to; ++i)
      for (size_t s = 0; s < k; ++s) convs.push_back(prompts[i].prompt);
    ReplyOptions ro;
    ro.max_new_tokens = o.max_new_tokens;
    ro.sampling.temperature = o.temperature;
    ro.seed = o.seed + from * k;
    const std::vector<Reply> replies = generate_replies(policy, tmpl, convs, ro);
    for (size_t i = from; i < to; ++i) {
      const nlohmann::json& key = prompts[i].meta["grade"];
      std::vector<std::string> samples;
      for (size_t s = 0; s < k; ++s) {
        const std::string& text = replies[(i - from) * k + s].text;
        const Grade g = grade_response(key, text);
        score_sum += g.score;
        correct += g.correct;
        samples.push_back(text);
      }
      const bool has_reference = o.with_reference && prompts[i].meta.contains("reference");
      const std::string reference = prompts[i].meta.value("reference", "");
      const std::vector<std::string> ranked = rank_by_grade(key, has_reference ? &reference : nullptr, samples);
      if (ranked.size() < 2) continue;
      auto label_of = [&](const std::string& r) -> std::string {
        if (has_reference && r == reference) return "reference";
        return grade_response(key, r).correct ? "sample_correct" : "sample_wrong";
      };
      PreferenceRecord rec;
      rec.prompt = prompts[i].prompt;
      rec.responses = ranked;
      rec.kind = key.value("kind", "");
      for (const auto& r : ranked) rec.labels.push_back(label_of(r));
      records.push_back(preference_to_json(rec));
      ++res.lists;
      res.pairs += int64_t(ranked.size() * (ranked.size() - 1) / 2);
      if (!o.every_pair) continue;
      for (const auto& [better, worse] : further_pairs(key, has_reference ? &reference : nullptr, samples, ranked)) {
        rec.responses = {better, worse};
        rec.labels = {label_of(better), label_of(worse)};
        records.push_back(preference_to_json(rec));
        ++res.extra_pairs;
        ++res.pairs;
      }
    }
    res.samples += int64_t((to - from) * k);
    if (bar)
      bar->update(int64_t(to), {{"correct", std::to_string(int(100.0 * double(correct) / double(res.samples))) + "%"},
                                {"lists", std::to_string(res.lists)}});
  }
  if (bar) bar->finish();
  res.prompts = int64_t(prompts.size());
  if (res.samples > 0) {
    res.sample_accuracy = double(correct) / double(res.samples);
    res.sample_score = score_sum / double(res.samples);
  }
  if (records.empty() && !o.allow_empty)
    fail(op, "no comparison to write: every prompt's replies scored alike and no --include file holds a record");
  write_jsonl(o.out, records);
  return res;
}

}  // namespace ember::chat
