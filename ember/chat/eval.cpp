// Evaluation of chat checkpoints (see eval.h).
#include "ember/chat/eval.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "ember/autograd/grad_mode.h"
#include "ember/chat/curriculum.h"
#include "ember/chat/replies.h"
#include "ember/chat/reward.h"
#include "ember/chat/sft.h"
#include "ember/core/error.h"
#include "ember/infer/quant_io.h"
#include "ember/io/atomic_file.h"
#include "ember/nn/module_io.h"
#include "ember/train/data_parallel_run.h"
#include "ember/train/model_checkpoint.h"

namespace ember::chat {
namespace fs = std::filesystem;

nlohmann::json OracleResult::to_json() const {
  return {{"prompts", prompts},   {"accuracy", accuracy}, {"world_accuracy", world_accuracy}, {"score", score},
          {"hallucination", hallucination}, {"over_refusal", over_refusal}, {"by_kind", by_kind},
          {"mean_reply_tokens", mean_reply_tokens}};
}

OracleResult evaluate_oracle(const models::GPT& model, const ChatTemplate& tmpl,
                             const std::vector<PromptRecord>& prompts, int64_t max_new_tokens,
                             const train::DataParallelRun* dp) {
  return evaluate_oracle(infer::runner_weights(model), tmpl, prompts, max_new_tokens, dp);
}

namespace {

// The samples kept for the log: the first few prompts.
constexpr size_t kSamples = 6;

// One prompt's reply as graded: what the figures are summed from.
struct GradedReply {
  Grade grade;
  int64_t reply_tokens = 0;
  std::string reply;
};

// Every rank's graded replies to its share, in prompt order on every rank. A
// rank's part travels as JSON (a double prints with enough digits to read back
// the same bits), so the sums below see exactly one process's numbers.
std::vector<GradedReply> gather_graded(const std::vector<GradedReply>& mine, const train::DataParallelRun& dp) {
  nlohmann::json part = nlohmann::json::array();
  for (size_t i = 0; i < mine.size(); ++i) {
    const GradedReply& g = mine[i];
    part.push_back({g.grade.correct, g.grade.score, g.grade.hallucinated, g.reply_tokens,
                    g.reply});
  }
  std::vector<GradedReply> all;
  const std::string text_part = part.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  for (const std::string& text : dp.all_gather_text(text_part))
    for (const nlohmann::json& j : nlohmann::json::parse(text)) {
      GradedReply g;
      g.grade.correct = j[0].get<bool>();
      g.grade.score = j[1].get<double>();
      g.grade.hallucinated = j[2].get<bool>();
      g.reply_tokens = j[3].get<int64_t>();
      g.reply = j[4].get<std::string>();
      all.push_back(std::move(g));
    }
  return all;
}

}  // namespace

OracleResult evaluate_oracle(std::shared_ptr<const infer::RunnerWeights> weights, const ChatTemplate& tmpl,
                             const std::vector<PromptRecord>& prompts, int64_t max_new_tokens,
                             const train::DataParallelRun* dp) {
  for (const auto& p : prompts)
    if (!p.meta.contains("grade"))
      fail("eval", "a held-out prompt has no \"grade\" key (use the curriculum's prompts_heldout.jsonl)");
  // This rank's share; prompt i keeps the seed one process gives it (seed + i).
  const int64_t n = int64_t(prompts.size());
  const auto [begin, end] = dp ? dp->share(n) : std::pair<int64_t, int64_t>{0, n};
  std::vector<Conversation> convs;
  for (int64_t i = begin; i < end; ++i) convs.push_back(prompts[size_t(i)].prompt);
  ReplyOptions ro;
  ro.max_new_tokens = max_new_tokens;
  ro.seed = uint64_t(begin);
  std::vector<GradedReply> graded(convs.size());
  if (!convs.empty()) {
    const std::vector<Reply> replies = generate_replies(std::move(weights), tmpl, convs, ro);
    for (size_t i = 0; i < replies.size(); ++i) {
      graded[i].grade = grade_response(prompts[size_t(begin) + i].meta.at("grade"), replies[i].text);
      graded[i].reply_tokens = int64_t(replies[i].ids.size());
      graded[i].reply = replies[i].text;
    }
  }
  if (dp && dp->distributed()) graded = gather_graded(graded, *dp);

  OracleResult res;
  res.by_kind = nlohmann::json::object();
  res.samples = nlohmann::json::array();
  int64_t correct = 0, unknown = 0, hallucinated = 0, reply_tokens = 0, world = 0, world_correct = 0;
  int64_t harmless = 0, refused = 0;
  double score = 0;
  auto count = [&](const std::string& kind, bool ok) {
    auto& k = res.by_kind[kind];
    if (k.is_null()) k = {{"n", 0}, {"correct", 0}};
    k["n"] = k["n"].get<int64_t>() + 1;
    k["correct"] = k["correct"].get<int64_t>() + (ok ? 1 : 0);
  };
  for (size_t i = 0; i < prompts.size(); ++i) {
    const nlohmann::json& key = prompts[i].meta.at("grade");
    const Grade& gr = graded[i].grade;
    const std::string kind = key.at("kind").get<std::string>();
    count(kind, gr.correct);
    if (kind == "fact" && !key.value("seen_pair", true)) count("fact_unseen_pair", gr.correct);
    correct += gr.correct;
    if (kind == "fact" || kind == "compare" || kind == "unknown") ++world, world_correct += gr.correct;
    score += gr.score;
    reply_tokens += graded[i].reply_tokens;
    if (kind == "unknown") ++unknown, hallucinated += gr.hallucinated;
    if (kind != "refuse") ++harmless, refused += declines(graded[i].reply);
    res.replies.push_back({{"prompt", prompts[i].prompt.back().content},
                           {"kind", kind},
                           {"reply", graded[i].reply},
                           {"correct", gr.correct},
                           {"score", gr.score}});
  }
  for (size_t i = 0; i < std::min(kSamples, res.replies.size()); ++i)
    res.samples.push_back({{"prompt", res.replies[i]["prompt"]},
                           {"reply", res.replies[i]["reply"]},
                           {"correct", res.replies[i]["correct"]}});
  res.prompts = int64_t(prompts.size());
  for (auto& [kind, k] : res.by_kind.items())
    k["accuracy"] = double(k["correct"].get<int64_t>()) / double(k["n"].get<int64_t>());
  if (res.prompts > 0) {
    res.accuracy = double(correct) / double(res.prompts);
    res.world_accuracy = world > 0 ? double(world_correct) / double(world) : 0.0;
    res.score = score / double(res.prompts);
    res.mean_reply_tokens = double(reply_tokens) / double(res.prompts);
  }
  res.hallucination = unknown > 0 ? double(hallucinated) / double(unknown) : 0.0;
  res.over_refusal = harmless > 0 ? double(refused) / double(harmless) : 0.0;
  return res;
}

namespace {

template <typename T>
void keep_first(std::vector<T>& v, int64_t limit) {
  if (limit > 0 && int64_t(v.size()) > limit) v.resize(size_t(limit));
}

// How well a language model's own likelihood ranks held-out ranked lists: a
// response scores its mean log-probability per token (<|im_end|> included),
// so that length alone does not decide; pairs as a reward model's (ties 1/2).
// It says what the policy already "knows" about the pairs, beside what a
// reward model trained on them learned (docs/ALIGNMENT.md).
nlohmann::json likelihood_ranking(models::GPT& model, const ChatTemplate& tmpl,
                                  const std::vector<PreferenceRecord>& records, int64_t max_len,
                                  const std::string& file) {
  NoGradGuard no_grad;
  const std::vector<RankedRows> lists = render_ranked_all(tmpl, records, max_len, file);
  PairBreakdown breakdown = PairBreakdown::for_lists(lists);
  double correct = 0;
  int64_t pairs = 0;
  constexpr size_t kBatch = 16;
  for (size_t from = 0; from < lists.size(); from += kBatch) {
    std::vector<size_t> which;
    for (size_t i = from; i < std::min(lists.size(), from + kBatch); ++i) which.push_back(i);
    const std::vector<float> lp = lists_logps(model, lists, which, tmpl.turn_end_id(), nullptr).to_vector<float>();
    size_t off = 0;
    for (size_t w : which) {
      const RankedRows& l = lists[w];
      std::vector<double> mean(l.rows.size());
      for (size_t r = 0; r < l.rows.size(); ++r)
        mean[r] = double(lp[off + r]) / double(int64_t(l.rows[r].size()) - l.response_start[r]);
      for (size_t i = 0; i < mean.size(); ++i)
        for (size_t j = i + 1; j < mean.size(); ++j) {
          const double right = pair_credit(mean[i] - mean[j]);
          correct += right;
          ++pairs;
          breakdown.add(l, i, j, right);
        }
      off += l.rows.size();
    }
  }
  nlohmann::json out = {{"pairwise_accuracy", pairs > 0 ? correct / double(pairs) : 0.0}, {"pairs", pairs}};
  if (const nlohmann::json b = breakdown.to_json(); !b.empty()) out["pairwise_breakdown"] = b;
  return out;
}

std::string or_default(const std::string& given, const std::string& curriculum, const char* file) {
  if (!given.empty()) return given;
  if (curriculum.empty()) return "";
  const std::string p = curriculum + "/" + file;
  if (!fs::exists(p)) fail("eval", curriculum, " holds no ", file, " (is it a folder from `ember chat-data`?)");
  return p;
}

}  // namespace

nlohmann::json evaluate_checkpoint(const EvalOptions& o) {
  if (o.checkpoint.empty()) fail("eval", "--checkpoint is required");
  if (o.threads > 0) omp_set_num_threads(o.threads);
  const train::ModelCheckpoint ckpt = train::open_model_checkpoint(o.checkpoint, {}, "eval", "the checkpoint",
                                                                   /*allow_quantized=*/true);
  const Tokenizer tok = train::load_checkpoint_tokenizer(ckpt);
  const ChatTemplate tmpl(tok);
  nlohmann::json report = {{"checkpoint", ckpt.dir}, {"kind", ckpt.kind}, {"step", ckpt.trainer.value("step", 0)}};
  nlohmann::json metrics = nlohmann::json::object();

  if (ckpt.kind == "reward") {
    if (!o.replies_out.empty())
      fail("eval", "--replies: ", ckpt.dir, " is a reward model, which writes no replies (it ranks given ones)");
    const std::string prefs_path = or_default(o.preferences, o.curriculum, "preferences_val.jsonl");
    if (prefs_path.empty())
      fail("eval", ckpt.dir, " is a reward model: give --preferences FILE (ranked responses) or --curriculum DIR");
    RewardModelCheckpoint rm = load_reward_model(ckpt.dir, "eval");
    std::vector<PreferenceRecord> records = read_preferences(prefs_path);
    keep_first(records, o.limit);
    const RewardEval r = evaluate_reward_model(*rm.model, tmpl, records, ckpt.config.block_size, 16, &rm.likelihood);
    report["parameters"] = rm.model->num_parameters();
    metrics["pairwise_accuracy"] = r.accuracy;
    if (rm.likelihood.active()) {  // the reward adds the frozen model's likelihood (reward.h)
      metrics["pairwise_accuracy_head"] = r.head_accuracy;
      metrics["likelihood_weight"] = r.likelihood_weight;
    }
    metrics["pairs"] = r.pairs;
    metrics["pairwise_loss"] = r.loss;
    metrics["chosen_reward_mean"] = r.chosen_mean;
    if (const nlohmann::json b = r.breakdown.to_json(); !b.empty()) metrics["pairwise_breakdown"] = b;
    report["metrics"] = metrics;
    return report;
  }
  const std::string prompts_path = or_default(o.prompts, o.curriculum, "prompts_heldout.jsonl");
  const std::string convs_path = or_default(o.conversations, o.curriculum, "sft_val.jsonl");
  // Only when asked for by name (not a --curriculum default: it costs a forward
  // pass over every held-out response).
  const std::string& prefs_path = o.preferences;
  if (prompts_path.empty() && convs_path.empty() && prefs_path.empty())
    fail("eval", "nothing to evaluate on: give --curriculum DIR (from `ember chat-data`), --prompts, --conversations "
                 "or --preferences");
  // A quantized checkpoint answers through its quantized weights; the loss
  // needs the training forward, which runs on the dequantized weights.
  std::unique_ptr<models::GPT> float_model;
  std::shared_ptr<const infer::RunnerWeights> weights;
  if (ckpt.quantization.empty()) {
    float_model = std::make_unique<models::GPT>(ckpt.config);
    nn::load_module(*float_model, ckpt.model_path);
    float_model->eval();
    auto w = infer::runner_weights(*float_model);
    w->prepack();  // evaluated weights never change
    weights = w;
    report["parameters"] = float_model->num_parameters();
  } else {
    weights = infer::load_runner_weights(ckpt.model_path, ckpt.config);
    report["quantization"] = ckpt.quantization;
    report["parameters"] = weights->parameters;
  }
  if (!o.replies_out.empty() && prompts_path.empty())
    fail("eval", "--replies needs held-out prompts: give --prompts FILE or --curriculum DIR");
  if (!prompts_path.empty()) {
    std::vector<PromptRecord> prompts = read_prompts(prompts_path);
    keep_first(prompts, o.limit);
    const OracleResult r = evaluate_oracle(weights, tmpl, prompts, o.max_new_tokens);
    metrics["oracle"] = r.to_json();
    report["samples"] = r.samples;
    if (!o.replies_out.empty()) {
      AtomicFileWriter out(o.replies_out, "eval");
      for (const nlohmann::json& rec : r.replies)
        out.write(rec.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
      out.commit();
    }
  }
  if (!convs_path.empty()) {
    std::vector<Conversation> convs = read_conversations(convs_path);
    keep_first(convs, o.limit);
    std::vector<RenderedChat> chats;
    for (const auto& c : convs) chats.push_back(tmpl.render(c));
    if (!float_model) float_model = infer::dequantized_model(*weights);
    metrics["conversation_loss"] =
        evaluate_sft_loss(*float_model, chats, ckpt.config.block_size, 8, tmpl.turn_end_id());
  }
  if (!prefs_path.empty()) {
    std::vector<PreferenceRecord> records = read_preferences(prefs_path);
    keep_first(records, o.limit);
    if (!float_model) float_model = infer::dequantized_model(*weights);
    metrics["likelihood_ranking"] = likelihood_ranking(*float_model, tmpl, records, ckpt.config.block_size, prefs_path);
  }
  report["metrics"] = metrics;
  return report;
}

std::string format_eval_table(const nlohmann::json& report) {
  std::vector<std::pair<std::string, std::string>> rows;
  auto pct = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f%%", 100 * v);
    return std::string(b);
  };
  auto num = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.4f", v);
    return std::string(b);
  };
  const nlohmann::json& m = report.at("metrics");
  if (m.contains("oracle")) {
    const auto& r = m["oracle"];
    rows.push_back({"held-out prompts", std::to_string(r["prompts"].get<int64_t>())});
    rows.push_back({"oracle accuracy", pct(r["accuracy"].get<double>())});
    rows.push_back({"world questions accuracy", pct(r.value("world_accuracy", 0.0))});
    for (const auto& [kind, k] : r["by_kind"].items())
      rows.push_back({"  " + kind, pct(k["accuracy"].get<double>()) + " of " + std::to_string(k["n"].get<int64_t>())});
    rows.push_back({"oracle score (0-1)", num(r["score"].get<double>())});
    rows.push_back({"hallucination (unknown people)", pct(r["hallucination"].get<double>())});
    if (r.contains("over_refusal")) rows.push_back({"declines harmless prompts", pct(r["over_refusal"].get<double>())});
    rows.push_back({"mean reply tokens", num(r["mean_reply_tokens"].get<double>())});
  }
  if (m.contains("conversation_loss")) rows.push_back({"held-out conversation loss", num(m["conversation_loss"].get<double>())});
  // A reward model's pairwise figures, or (prefix "likelihood ") a language
  // model's likelihood ranking of the same kind of lists.
  auto pairwise = [&](const nlohmann::json& p, const std::string& prefix) {
    if (p.contains("pairwise_accuracy")) rows.push_back({prefix + "pairwise accuracy", pct(p["pairwise_accuracy"].get<double>())});
    if (p.contains("pairwise_accuracy_head"))
      rows.push_back({"  the head alone", pct(p["pairwise_accuracy_head"].get<double>())});
    if (p.contains("likelihood_weight")) rows.push_back({"  likelihood weight", num(p["likelihood_weight"].get<double>())});
    if (p.contains("pairs")) rows.push_back({"held-out pairs", std::to_string(p["pairs"].get<int64_t>())});
    if (p.contains("pairwise_loss")) rows.push_back({"pairwise loss", num(p["pairwise_loss"].get<double>())});
    if (p.contains("pairwise_breakdown"))
      for (const auto& [part, title] : {std::pair{"by_kind", "pairwise accuracy by question"},
                                        std::pair{"by_labels", "pairwise accuracy by pair (better>worse)"}}) {
        if (!p["pairwise_breakdown"].contains(part)) continue;
        rows.push_back({prefix + title, ""});
        for (const auto& [key, t] : p["pairwise_breakdown"][part].items())
          rows.push_back({"  " + key, pct(t["accuracy"].get<double>()) + " of " + std::to_string(t["pairs"].get<int64_t>())});
      }
  };
  pairwise(m, "");
  if (m.contains("likelihood_ranking")) pairwise(m["likelihood_ranking"], "likelihood ");
  size_t w = 6;
  for (const auto& [k, v] : rows) w = std::max(w, k.size());
  std::string out = report.at("checkpoint").get<std::string>() + " (" + report.at("kind").get<std::string>() +
                    (report.contains("quantization") ? ", " + report["quantization"].get<std::string>() + " weights" : "") +
                    ")\n";
  out += "metric" + std::string(w - 6 + 2, ' ') + "value\n";
  for (const auto& [k, v] : rows) out += k + std::string(w - k.size() + 2, ' ') + v + "\n";
  return out;
}

}  // namespace ember::chat
