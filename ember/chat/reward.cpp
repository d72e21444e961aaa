// Reward-model training, evaluation and scoring (see reward.h).
#include "ember/chat/reward.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "ember/autograd/grad_mode.h"
#include "ember/chat/preference_batch.h"
#include "ember/core/error.h"
#include "ember/core/random.h"
#include "ember/nn/module_io.h"
#include "ember/ops/ops.h"
#include "ember/optim/optim.h"
#include "ember/train/finetune.h"
#include "ember/train/checkpoint.h"
#include "ember/train/data_parallel_run.h"
#include "ember/train/metrics_log.h"
#include "ember/util/plot.h"

namespace ember::chat {
namespace fs = std::filesystem;

nlohmann::json RewardOptions::to_json() const {
  return {{"init", init}, {"data", data}, {"val_data", val_data}, {"steps", steps}, {"batch_size", batch_size},
          {"max_len", max_len}, {"lr", lr}, {"min_lr_ratio", min_lr_ratio}, {"warmup_steps", warmup_steps},
          {"weight_decay", weight_decay}, {"grad_clip", grad_clip}, {"eval_every", eval_every}, {"seed", seed},
          {"likelihood", likelihood}, {"likelihood_fit_lists", likelihood_fit_lists}};
}

void RewardOptions::update_from_json(const nlohmann::json& j) {
  auto take = [&](const char* key, auto& field) { train::take_json(j, key, field); };
  take("init", init), take("data", data), take("val_data", val_data), take("batch_size", batch_size);
  take("max_len", max_len), take("lr", lr), take("min_lr_ratio", min_lr_ratio), take("warmup_steps", warmup_steps);
  take("weight_decay", weight_decay), take("grad_clip", grad_clip), take("eval_every", eval_every);
  take("seed", seed), take("likelihood_fit_lists", likelihood_fit_lists);
  // A run from before the feature existed resumes as it began: the head alone.
  likelihood = j.contains("likelihood") ? j.at("likelihood").get<std::string>() : "none";
}

namespace {

std::string fmt(const char* f, double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// -log sigmoid(d) in double on the host, for evaluation sums.
double host_neg_log_sigmoid(double d) { return std::max(-d, 0.0) + std::log1p(std::exp(-std::abs(d))); }

// Restores a module's train/eval mode on scope exit.
struct EvalModeScope {
  explicit EvalModeScope(nn::Module& m) : module(m), was_training(m.is_training()) { m.eval(); }
  ~EvalModeScope() {
    if (was_training) module.train();
  }
  nn::Module& module;
  bool was_training;
};

// The score of each row at its last token, [rows.size()], in length groups.
Tensor score_rows(models::ValueModel& model, const std::vector<const std::vector<int64_t>*>& rows, int64_t pad_id) {
  return per_row_grouped(rows, [&](const std::vector<size_t>& group) {
    std::vector<const std::vector<int64_t>*> sub;
    for (size_t r : group) sub.push_back(rows[r]);
    const PaddedRows p = pad_right(sub, pad_id);
    return model.score_at(p.idx, p.last);
  });
}

// The scores [N] of lists `which`'s responses, concatenated in order (each
// response forwarded once); `sizes` gets each list's response count.
Tensor score_lists(models::ValueModel& model, const std::vector<RankedRows>& lists, const std::vector<size_t>& which,
                   int64_t pad_id, std::vector<int64_t>* sizes) {
  std::vector<const std::vector<int64_t>*> rows;
  sizes->clear();
  for (size_t i : which) {
    for (const auto& r : lists[i].rows) rows.push_back(&r);
    sizes->push_back(int64_t(lists[i].rows.size()));
  }
  return score_rows(model, rows, pad_id);
}

// With `dp` (every rank calls it) the batches are spread over the ranks and
// the sums added up: each batch is scored as one process scores it. With
// `feature` (one value per response of `lists`, in order) the scores are
// head + weight * feature.
RewardEval evaluate_lists(models::ValueModel& model, const std::vector<RankedRows>& lists, int64_t pad_id,
                          int64_t batch, const train::DataParallelRun* dp = nullptr,
                          const std::vector<double>* feature = nullptr, double weight = 0) {
  NoGradGuard no_grad;
  EvalModeScope mode(model);
  RewardEval ev;
  ev.breakdown = PairBreakdown::for_lists(lists);
  std::vector<size_t> first(lists.size() + 1, 0);  // each list's first response in `feature`
  for (size_t i = 0; i < lists.size(); ++i) first[i + 1] = first[i] + lists[i].rows.size();
  if (feature && feature->size() != first.back())
    fail("reward", "likelihood feature: ", feature->size(), " values for ", first.back(), " responses");
  double loss = 0, correct = 0, head_correct = 0, chosen_sum = 0, chosen_sq = 0, all_sum = 0, all_sq = 0;
  int64_t responses = 0;
  for (const size_t from : train::DataParallelRun::my_batches(dp, lists.size(), batch)) {
    std::vector<size_t> which;
    for (size_t i = from; i < std::min(lists.size(), from + size_t(batch)); ++i) which.push_back(i);
    std::vector<int64_t> sizes;
    std::vector<double> s;
    for (float v : score_lists(model, lists, which, pad_id, &sizes).to_vector<float>()) s.push_back(v);
    const std::vector<double> head = s;
    if (feature) {
      size_t at = 0;
      for (size_t w = 0; w < which.size(); ++w)
        for (size_t r = first[which[w]]; r < first[which[w] + 1]; ++r) s[at++] += weight * (*feature)[r];
    }
    size_t off = 0;
    for (size_t w = 0; w < which.size(); ++w) {
      const int64_t k = sizes[w];
      double list_loss = 0;
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = i + 1; j < k; ++j) {
          const double d = double(s[off + size_t(i)]) - double(s[off + size_t(j)]);
          list_loss += host_neg_log_sigmoid(d);
          const double right = pair_credit(d);
          correct += right;
          head_correct += pair_credit(head[off + size_t(i)] - head[off + size_t(j)]);
          ev.breakdown.add(lists[which[w]], size_t(i), size_t(j), right);
          ++ev.pairs;
        }
      loss += list_loss / double(k * (k - 1) / 2);
      chosen_sum += s[off];
      chosen_sq += double(s[off]) * double(s[off]);
      for (int64_t i = 0; i < k; ++i) {
        const double v = s[off + size_t(i)];
        all_sum += v;
        all_sq += v * v;
      }
      responses += k;
      off += size_t(k);
      ++ev.lists;
    }
  }
  if (dp && dp->distributed()) {
    std::vector<double> sums{loss,   correct, chosen_sum,         chosen_sq,         all_sum,
                             all_sq, double(responses), double(ev.lists), double(ev.pairs), head_correct};
    dp->sum(sums);
    loss = sums[0], correct = sums[1], chosen_sum = sums[2], chosen_sq = sums[3], all_sum = sums[4], all_sq = sums[5];
    responses = int64_t(sums[6]), ev.lists = int64_t(sums[7]), ev.pairs = int64_t(sums[8]), head_correct = sums[9];
    std::vector<double> tallies = ev.breakdown.flat();
    dp->sum(tallies);
    ev.breakdown.set_flat(tallies);
  }
  if (ev.lists == 0) return ev;
  ev.loss = loss / double(ev.lists);
  ev.accuracy = correct / double(ev.pairs);
  ev.chosen_mean = chosen_sum / double(ev.lists);
  ev.chosen_std = std::sqrt(std::max(0.0, chosen_sq / double(ev.lists) - ev.chosen_mean * ev.chosen_mean));
  ev.all_mean = all_sum / double(responses);
  ev.all_std = std::sqrt(std::max(0.0, all_sq / double(responses) - ev.all_mean * ev.all_mean));
  ev.head_accuracy = head_correct / double(ev.pairs);
  ev.likelihood_weight = feature ? weight : 0.0;
  ev.with_likelihood = feature != nullptr;
  return ev;
}

// The head's scores of `lists` (concatenated), `batch` lists per pass; `sizes` gets the list sizes.
std::vector<double> head_scores(models::ValueModel& model, const std::vector<RankedRows>& lists, int64_t pad_id,
                                int64_t batch, std::vector<int64_t>* sizes) {
  NoGradGuard no_grad;
  EvalModeScope mode(model);
  std::vector<double> out;
  sizes->clear();
  for (size_t from = 0; from < lists.size(); from += size_t(batch)) {
    std::vector<size_t> which;
    for (size_t i = from; i < std::min(lists.size(), from + size_t(batch)); ++i) which.push_back(i);
    std::vector<int64_t> part;
    for (float v : score_lists(model, lists, which, pad_id, &part).to_vector<float>()) out.push_back(v);
    sizes->insert(sizes->end(), part.begin(), part.end());
  }
  return out;
}


}  // namespace

RewardEval evaluate_reward_model(models::ValueModel& model, const ChatTemplate& tmpl,
                                 const std::vector<PreferenceRecord>& records, int64_t max_len, int64_t batch,
                                 const LikelihoodFeature* likelihood) {
  if (batch <= 0) fail("reward", "evaluation batch must be positive, got ", batch);
  const auto lists = render_ranked_all(tmpl, records, max_len, "preferences");
  if (!likelihood || !likelihood->active()) return evaluate_lists(model, lists, tmpl.turn_end_id(), batch);
  const std::vector<double> feature = lists_lowest_logps(*likelihood->model, lists, tmpl.turn_end_id(), 64);
  return evaluate_lists(model, lists, tmpl.turn_end_id(), batch, nullptr, &feature, likelihood->weight);
}

double pairwise_accuracy(models::ValueModel& model, const ChatTemplate& tmpl,
                         const std::vector<PreferenceRecord>& records, int64_t max_len, int64_t batch) {
  return evaluate_reward_model(model, tmpl, records, max_len, batch).accuracy;
}

std::vector<float> score_conversations(models::ValueModel& model, const ChatTemplate& tmpl,
                                       const std::vector<std::vector<int64_t>>& token_rows, int64_t batch) {
  if (batch <= 0) fail("reward", "score_conversations: batch must be positive, got ", batch);
  NoGradGuard no_grad;
  EvalModeScope mode(model);
  const size_t block = size_t(model.config().block_size);
  std::vector<float> out;
  out.reserve(token_rows.size());
  std::vector<std::vector<int64_t>> cut;  // rows that had to lose their start
  for (size_t from = 0; from < token_rows.size(); from += size_t(batch)) {
    const size_t to = std::min(token_rows.size(), from + size_t(batch));
    const auto rows = rows_in_context(token_rows, from, to, block, cut, "reward");
    for (float v : score_rows(model, rows, tmpl.turn_end_id()).to_vector<float>()) out.push_back(v);
  }
  return out;
}

float score_response(models::ValueModel& model, const ChatTemplate& tmpl, const Conversation& prompt,
                     const std::string& reply) {
  return score_conversations(model, tmpl, {tmpl.render_reply_row(prompt, reply)}).at(0);
}

RewardModelCheckpoint load_reward_model(const std::string& path, const std::string& op, const std::string& what) {
  RewardModelCheckpoint rm;
  rm.checkpoint = train::open_model_checkpoint(path, {"reward"}, op, what);
  const nlohmann::json& tj = rm.checkpoint.trainer;
  rm.model = std::make_unique<models::ValueModel>(rm.checkpoint.config);
  nn::load_module(*rm.model, rm.checkpoint.model_path);  // strict: a reward checkpoint must hold its head
  rm.model->eval();
  rm.reward_mean = tj.value("reward_mean", 0.0);
  rm.reward_std = tj.value("reward_std", 1.0);
  if (tj.contains("likelihood_weight")) {
    const nlohmann::json& w = tj["likelihood_weight"];
    if (!w.is_number() || !std::isfinite(w.get<double>()))
      fail(op, rm.checkpoint.dir, "/trainer.json: likelihood_weight must be a finite number, got ", w.dump());
    rm.likelihood.weight = w.get<double>();
    // A weight of 0 (the feature did not help when fitted): the head alone, no frozen model to run.
    if (rm.likelihood.weight == 0) return rm;
    const std::string file = rm.checkpoint.dir + "/" + tj.value("likelihood_model", std::string("likelihood/model.safetensors"));
    if (!fs::exists(file))
      fail(op, file, ": missing; the reward model ", rm.checkpoint.dir,
           " adds a likelihood feature (trainer.json likelihood_weight) and needs the frozen language model it was "
           "fitted with (retrain it, or with --likelihood none)");
    rm.likelihood.model = load_likelihood_model(rm.checkpoint.config, file);
  }
  return rm;
}

std::vector<double> score_replies(const RewardModelCheckpoint& rm, const ChatTemplate& tmpl,
                                  const std::vector<std::vector<int64_t>>& rows, const std::vector<int64_t>& starts,
                                  int64_t batch) {
  std::vector<double> out;
  for (float v : score_conversations(*rm.model, tmpl, rows, batch)) out.push_back(v);
  if (rm.likelihood.active()) {
    const std::vector<double> f = reply_lowest_logps(*rm.likelihood.model, rows, starts, tmpl.turn_end_id(), batch);
    for (size_t i = 0; i < out.size(); ++i) out[i] += rm.likelihood.weight * f[i];
  }
  return out;
}

void plot_reward_curves(const std::string& out_dir, const std::vector<nlohmann::json>& records) {
  // Loss and accuracy share one chart: both live in [0, ~1] for a reward model.
  std::vector<PlotSeries> series{{"train loss", {}}, {"val loss", {}}, {"val pairwise accuracy", {}}};
  for (const auto& r : records) {
    const double step = r.at("step").get<double>();
    if (r.at("kind") == "train") series[0].points.emplace_back(step, r.at("loss").get<double>());
    if (r.at("kind") == "eval" && r.contains("val_loss")) {
      series[1].points.emplace_back(step, r.at("val_loss").get<double>());
      series[2].points.emplace_back(step, r.at("val_accuracy").get<double>());
    }
  }
  std::erase_if(series, [](const PlotSeries& s) { return s.points.empty(); });  // no held-out lists: no eval
  PlotOptions plot;
  plot.title = "ember reward";
  plot.y_label = "loss / accuracy";
  write_svg_plot(out_dir + "/reward.svg", series, plot);
}

RewardResult train_reward_model(RewardOptions o) {
  const train::ResumePoint resumed = train::resume_options(o, "reward");
  if (o.init.empty()) fail("reward", "--init is required (an SFT or pretrained checkpoint)");
  if (o.data.empty()) fail("reward", "--data is required (preferences as JSON Lines)");
  if (o.out_dir.empty()) fail("reward", "--out is required (the run folder)");
  if (o.steps <= 0 || o.batch_size <= 0) fail("reward", "--steps and --batch must be positive");
  if (o.likelihood != "init" && o.likelihood != "none")
    fail("reward", "--likelihood must be 'init' or 'none', got '", o.likelihood, "'");
  if (o.likelihood == "init" && o.likelihood_fit_lists <= 0)
    fail("reward", "--likelihood-fit-lists must be positive, got ", o.likelihood_fit_lists);
  // Under mpirun: data parallel over the global batch of --batch lists (train/data_parallel_run.h).
  train::DataParallelRun dp("reward");
  train::check_data_parallel(dp, o, {{o.batch_size, "--batch"}}, o.resume);
  if (o.threads > 0) omp_set_num_threads(o.threads);

  const train::ModelCheckpoint init = train::open_model_checkpoint(o.init, {"pretrain", "sft"}, "reward", "--init");
  const models::GPTConfig& cfg = init.config;
  const Tokenizer tok = train::load_checkpoint_tokenizer(init);
  const ChatTemplate tmpl(tok);
  const int64_t max_len = o.max_len > 0 ? o.max_len : cfg.block_size;
  if (max_len > cfg.block_size) fail("reward", "--max-len ", max_len, " exceeds the model's block_size ", cfg.block_size);
  const int64_t pad = tmpl.turn_end_id();

  int64_t cut_train = 0, cut_val = 0;
  const std::vector<RankedRows> train_lists = render_ranked_all(tmpl, read_preferences(o.data), max_len, o.data, &cut_train);
  if (train_lists.empty()) fail("reward", o.data, " holds no preference records");
  std::vector<RankedRows> val_lists;
  if (!o.val_data.empty()) val_lists = render_ranked_all(tmpl, read_preferences(o.val_data), max_len, o.val_data, &cut_val);

  Generator gen(o.seed);
  models::ValueModel model(cfg, &gen);
  model.load_trunk(init.model_path);
  model.train();
  const std::unique_ptr<optim::AdamW> optimizer = train::finetune_adamw(model, o.lr, o.weight_decay);
  optim::AdamW& opt = *optimizer;
  const optim::LRLambda schedule = train::finetune_schedule(o.warmup_steps, o.steps, o.min_lr_ratio);

  if (dp.lead()) {
    fs::create_directories(o.out_dir);
    tok.save(o.out_dir + "/tokenizer");
  }

  // The likelihood feature (reward.h): the init model, frozen, and the lowest
  // token log-probability of every reply of the held-out and fitting lists, once.
  // The fitting lists are the first training ones: the head does train on them,
  // but the default run visits only part of its 8,400 lists (400 steps of 8;
  // at 600 its head ordered them about as well as the held-out ones, 88-90%
  // against 88%), so a weight fitted there is not one fitted to a memorised head.
  LikelihoodFeature lik;
  std::vector<RankedRows> fit_lists;
  std::vector<double> val_feature, fit_feature;
  if (o.likelihood == "init") {
    lik.model = load_likelihood_model(cfg, init.model_path);
    fit_lists.assign(train_lists.begin(),
                     train_lists.begin() + std::ptrdiff_t(std::min<size_t>(train_lists.size(), size_t(o.likelihood_fit_lists))));
    fit_feature = lists_lowest_logps(*lik.model, fit_lists, pad, 64);
    val_feature = lists_lowest_logps(*lik.model, val_lists, pad, 64);
    if (dp.lead()) {  // what every checkpoint carries (copied in, so each stands alone)
      fs::create_directories(o.out_dir + "/likelihood");
      const std::string tmp = o.out_dir + "/likelihood/model.safetensors.tmp";
      fs::copy_file(init.model_path, tmp, fs::copy_options::overwrite_existing);
      fs::rename(tmp, o.out_dir + "/likelihood/model.safetensors");
    }
  }
  const int64_t start_step = resumed.restore(model, opt, gen);
  dp.wrap(model);
  PreferenceBatches batches(train_lists.size(), o.seed);
  if (o.resume) batches.restore(resumed.trainer.at("data"));
  train::MetricsLog metrics(dp.lead() ? o.out_dir + "/metrics.jsonl" : "", resumed.metrics_keep_step());
  RewardResult result;
  if (!o.quiet) {
    int64_t pairs = 0;
    for (const auto& l : train_lists) pairs += int64_t(l.rows.size() * (l.rows.size() - 1) / 2);
    std::cout << "ember reward: " << train_lists.size() << " ranked lists (" << pairs << " pairs)"
              << (cut_train + cut_val ? ", " + std::to_string(cut_train + cut_val) + " with prompts cut to fit" : "")
              << "; " << fmt("%.2fM", double(model.num_parameters()) / 1e6) << " parameters" << std::endl;
    if (o.resume) std::cout << "resuming from " << resumed.dir << " at step " << start_step << std::endl;
  }

  // The lists the evaluations and the reward statistics come from: the
  // held-out ones, else the training ones (with the feature, the fitting ones,
  // whose feature values exist).
  const std::vector<RankedRows>& stat_lists = !val_lists.empty() ? val_lists : lik.active() ? fit_lists : train_lists;
  const std::vector<double>* stat_feature =
      !lik.active() ? nullptr : !val_lists.empty() ? &val_feature : &fit_feature;
  // The reward as it stands on stat_lists: with the feature, its weight refitted to the head first.
  auto measure = [&]() {
    if (lik.active()) {
      std::vector<int64_t> sizes;
      lik.weight = fit_likelihood_weight(head_scores(model, fit_lists, pad, o.batch_size, &sizes), fit_feature, sizes);
    }
    return evaluate_lists(model, stat_lists, pad, o.batch_size, &dp, stat_feature, lik.weight);
  };
  int64_t evaluated_at = -1;  // the step result.val was measured at
  auto evaluate = [&](int64_t step, RewardEval& out) {
    if (val_lists.empty()) return;
    out = measure();
    evaluated_at = step;
    nlohmann::json rec = {{"kind", "eval"}, {"step", step}, {"val_loss", out.loss}, {"val_accuracy", out.accuracy},
                          {"val_pairs", out.pairs}, {"chosen_reward_mean", out.chosen_mean},
                          {"chosen_reward_std", out.chosen_std}, {"reward_mean", out.all_mean},
                          {"reward_std", out.all_std}};
    if (lik.active()) rec["val_accuracy_head"] = out.head_accuracy, rec["likelihood_weight"] = out.likelihood_weight;
    if (const nlohmann::json b = out.breakdown.to_json(); !b.empty()) rec["val_breakdown"] = b;
    metrics.write(rec);
    if (!o.quiet)
      std::cout << "step " << step << "  val loss " << fmt("%.4f", out.loss) << "  pairwise accuracy "
                << fmt("%.1f%%", 100 * out.accuracy) << " of " << out.pairs << " pairs"
                << (lik.active() ? " (head alone " + fmt("%.1f%%", 100 * out.head_accuracy) + ", likelihood weight " +
                                       fmt("%.3g", out.likelihood_weight) + ")"
                                 : std::string())
                << std::endl;
  };
  // A resumed run's step-0 evaluation is the one of the run it continues (metrics.jsonl).
  if (!o.resume) evaluate(0, result.val_before);

  // Every checkpoint is a usable reward model: the normalisation statistics
  // for PPO (reward.h) are computed at save time from the weights being saved
  // (held-out lists, else the training ones), whether the run ends, stops or
  // only passes a --checkpoint-every step. Evaluation neither trains nor draws
  // random numbers, so it does not change the run.
  auto checkpoint = [&](int64_t step) -> std::string {
    const RewardEval stats = evaluated_at == step ? result.val : measure();
    result.reward_mean = stats.chosen_mean;
    result.reward_std = stats.all_std > 1e-6 ? stats.all_std : 1.0;  // a constant reward: do not divide by ~0
    nlohmann::json tj =
        train::finetune_trainer_json("reward", step, cfg.to_json(), o.to_json(), init.dir, gen, batches.position());
    tj["reward_mean"] = result.reward_mean;
    tj["reward_std"] = result.reward_std;
    tj["chosen_reward_std"] = stats.chosen_std;
    tj["response_reward_mean"] = stats.all_mean;
    tj["reward_stats"] = val_lists.empty() ? "train" : "val";  // which lists they come from
    if (!val_lists.empty()) tj["val_accuracy"] = stats.accuracy;
    std::vector<std::pair<std::string, std::string>> copy_dirs{{o.out_dir + "/tokenizer", "tokenizer"}};
    if (lik.active()) {
      tj["likelihood_weight"] = stats.likelihood_weight;
      tj["likelihood_model"] = "likelihood/model.safetensors";
      if (!val_lists.empty()) tj["val_accuracy_head"] = stats.head_accuracy;
      copy_dirs.push_back({o.out_dir + "/likelihood", "likelihood"});
    }
    if (!dp.lead()) return "";
    const train::CheckpointSave what{.model = &model, .optimizer = &opt, .trainer = tj, .copy_dirs = copy_dirs};
    return train::save_checkpoint(o.out_dir, step, what, o.keep_checkpoints);
  };

  using clock = std::chrono::steady_clock;
  result.step = start_step;
  const train::FinetuneStops stops(o.steps, o.checkpoint_every, o.stop_after, &dp);
  for (int64_t step = start_step + 1; step <= o.steps; ++step) {
    const auto t0 = clock::now();
    const std::vector<size_t> global = batches.next(size_t(o.batch_size));
    const std::vector<size_t> which = dp.take_share(global);  // this rank's lists
    const double lr = o.lr * schedule(step - 1);
    opt.set_lr(lr);
    opt.zero_grad();
    double loss_v = 0;
    // This rank's pairs: their count, and how many the scores order right (the batch accuracy).
    std::vector<double> counts{0, 0};
    if (!which.empty()) {
      std::vector<int64_t> sizes;
      const Tensor scores = score_lists(model, train_lists, which, pad, &sizes);
      const RankedPairs pairs = ranked_pairs(sizes, scores.dtype());
      Tensor loss = bradley_terry_loss(scores, pairs);
      loss = dp.weighted_loss(loss, double(which.size()), double(global.size()));
      loss.backward();
      loss_v = loss.item<double>();
      // Batch accuracy from the scores the step was computed with.
      const std::vector<float> s = scores.detach().to_vector<float>();
      const std::vector<int64_t> b = pairs.better.to_vector<int64_t>(), w = pairs.worse.to_vector<int64_t>();
      for (size_t i = 0; i < b.size(); ++i) {
        const float d = s[size_t(b[i])] - s[size_t(w[i])];
        counts[1] += pair_credit(d);
      }
      counts[0] = double(pairs.count);
    }
    // The ranks' parts added up (identities on one process).
    dp.sync_gradients();
    loss_v = dp.sum(loss_v) / dp.size();
    dp.sum(counts);
    const double norm = train::checked_grad_norm(model.parameters(), o.grad_clip, loss_v, step, "reward");
    opt.step();
    const double acc = counts[1] / counts[0];
    const double ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    result.step = step;
    result.train_loss = loss_v;
    metrics.write({{"kind", "train"}, {"step", step}, {"loss", loss_v}, {"accuracy", acc}, {"lr", lr},
                   {"grad_norm", norm}, {"pairs", int64_t(counts[0])}, {"step_ms", ms}});
    const bool last = step == o.steps;
    if (!o.quiet && (step % 10 == 0 || last))
      std::cout << "step " << step << "/" << o.steps << "  loss " << fmt("%.4f", loss_v) << "  batch accuracy "
                << fmt("%.1f%%", 100 * acc) << "  " << fmt("%.0f ms", ms) << std::endl;
    if ((o.eval_every > 0 && step % o.eval_every == 0) || last) evaluate(step, result.val);
    if (stops.end_step(step, checkpoint, &result.checkpoint, o.quiet)) {
      result.interrupted = true;
      result.signal = stops.signal();
      break;
    }
  }

  if (dp.lead()) plot_reward_curves(o.out_dir, metrics.records());
  return result;
}

}  // namespace ember::chat
