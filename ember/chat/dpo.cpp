// The DPO loop (see dpo.h).
#include "ember/chat/dpo.h"

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
#include "ember/train/model_checkpoint.h"
#include "ember/util/plot.h"

namespace ember::chat {
namespace fs = std::filesystem;

nlohmann::json DpoOptions::to_json() const {
  return {{"init", init}, {"ref", ref}, {"data", data}, {"val_data", val_data}, {"prompts", prompts},
          {"beta", beta}, {"steps", steps}, {"batch_size", batch_size}, {"max_len", max_len}, {"lr", lr},
          {"min_lr_ratio", min_lr_ratio}, {"warmup_steps", warmup_steps}, {"weight_decay", weight_decay},
          {"grad_clip", grad_clip}, {"eval_every", eval_every}, {"eval_prompts", eval_prompts},
          {"max_new_tokens", max_new_tokens}, {"seed", seed}};
}

void DpoOptions::update_from_json(const nlohmann::json& j) {
  auto take = [&](const char* key, auto& field) { train::take_json(j, key, field); };
  take("init", init), take("ref", ref), take("data", data), take("val_data", val_data), take("prompts", prompts);
  take("beta", beta), take("batch_size", batch_size), take("max_len", max_len), take("lr", lr);
  take("min_lr_ratio", min_lr_ratio), take("warmup_steps", warmup_steps), take("weight_decay", weight_decay);
  take("grad_clip", grad_clip), take("eval_every", eval_every), take("eval_prompts", eval_prompts);
  take("max_new_tokens", max_new_tokens), take("seed", seed);
}

namespace {

std::string fmt(const char* f, double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// Host statistics of implicit rewards `r` [N] for lists of `sizes`, added to
// `ev` (sums; finish() turns them into means).
// `lists` (when given) are the lists of `which`, for the breakdown.
void accumulate(DpoEval& ev, const std::vector<float>& r, const std::vector<int64_t>& sizes,
                const std::vector<RankedRows>* lists = nullptr, const std::vector<size_t>* which = nullptr) {
  size_t off = 0;
  for (size_t w = 0; w < sizes.size(); ++w) {
    const int64_t k = sizes[w];
    double list_loss = 0;
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = i + 1; j < k; ++j) {
        const double m = double(r[off + size_t(i)]) - double(r[off + size_t(j)]);
        list_loss += std::max(-m, 0.0) + std::log1p(std::exp(-std::abs(m)));
        const double right = pair_credit(m);
        ev.accuracy += right;
        if (lists) ev.breakdown.add((*lists)[(*which)[w]], size_t(i), size_t(j), right);
        ev.margin += m;
        ev.chosen_reward += r[off + size_t(i)];
        ev.rejected_reward += r[off + size_t(j)];
        ++ev.pairs;
      }
    ev.loss += list_loss / double(k * (k - 1) / 2);
    ++ev.lists;
    off += size_t(k);
  }
}

// Under data parallel: the sums of every rank's `ev` (before finish()).
void sum_over_ranks(DpoEval& ev, const train::DataParallelRun& dp) {
  if (!dp.distributed()) return;
  std::vector<double> v{double(ev.lists), double(ev.pairs), ev.loss, ev.accuracy, ev.margin, ev.chosen_reward,
                        ev.rejected_reward};
  dp.sum(v);
  ev.lists = int64_t(v[0]), ev.pairs = int64_t(v[1]);
  ev.loss = v[2], ev.accuracy = v[3], ev.margin = v[4], ev.chosen_reward = v[5], ev.rejected_reward = v[6];
  std::vector<double> tallies = ev.breakdown.flat();
  dp.sum(tallies);
  ev.breakdown.set_flat(tallies);
}

void finish(DpoEval& ev) {
  if (ev.pairs == 0) return;
  ev.loss /= double(ev.lists);
  for (double* v : {&ev.accuracy, &ev.margin, &ev.chosen_reward, &ev.rejected_reward}) *v /= double(ev.pairs);
}

// The batches are spread over the data-parallel ranks (each computed as one
// process computes it: a batch is one block of the reference cache) and the
// sums added up.
DpoEval evaluate_dpo(models::GPT& policy, DpoReference& ref, const std::vector<RankedRows>& lists, int64_t pad_id,
                     double beta, int64_t batch, const train::DataParallelRun& dp) {
  NoGradGuard no_grad;
  DpoEval ev;
  ev.breakdown = PairBreakdown::for_lists(lists);
  for (const size_t from : train::DataParallelRun::my_batches(&dp, lists.size(), batch)) {
    std::vector<size_t> which;
    for (size_t i = from; i < std::min(lists.size(), from + size_t(batch)); ++i) which.push_back(i);
    std::vector<int64_t> sizes;
    const Tensor pi = lists_logps(policy, lists, which, pad_id, &sizes);
    accumulate(ev, dpo_implicit_rewards(pi, ref.get(which, pi.dtype()), beta).to_vector<float>(), sizes, &lists,
               &which);
  }
  sum_over_ranks(ev, dp);
  finish(ev);
  return ev;
}

}  // namespace

DpoReference::DpoReference(models::GPT& reference, const std::vector<RankedRows>& lists, int64_t pad_id,
                           size_t block)
    : ref_(reference), lists_(lists), pad_(pad_id), block_(block), cache_(lists.size()) {}

Tensor DpoReference::get(const std::vector<size_t>& which, DType dtype) {
  for (size_t i : which)
    if (cache_[i].empty()) fill_block(i / block_);
  std::vector<double> out;
  for (size_t i : which) out.insert(out.end(), cache_[i].begin(), cache_[i].end());
  return tensor(out, {int64_t(out.size())}, dtype);
}

std::vector<size_t> DpoReference::block_lists(size_t k) const {
  std::vector<size_t> block;
  for (size_t i = k * block_; i < std::min(lists_.size(), (k + 1) * block_); ++i) block.push_back(i);
  return block;
}

void DpoReference::fill_block(size_t k) {
  const std::vector<size_t> block = block_lists(k);
  NoGradGuard no_grad;
  const std::vector<float> v = lists_logps(ref_, lists_, block, pad_, nullptr).to_vector<float>();
  size_t off = 0;
  for (size_t i : block) {
    cache_[i].assign(v.begin() + std::ptrdiff_t(off), v.begin() + std::ptrdiff_t(off + lists_[i].rows.size()));
    off += lists_[i].rows.size();
  }
  ++computed_;
}

void DpoReference::prefetch(const std::vector<size_t>& global, const train::DataParallelRun& dp) {
  if (!dp.distributed()) return;
  std::vector<size_t> missing;
  for (size_t i : global)
    if (cache_[i].empty()) missing.push_back(i / block_);
  std::sort(missing.begin(), missing.end());
  missing.erase(std::unique(missing.begin(), missing.end()), missing.end());
  if (missing.empty()) return;
  const size_t ranks = size_t(dp.size());
  // Every rank's part: its blocks' values in order, padded to the longest part.
  std::vector<size_t> part_size(ranks, 0);
  for (size_t j = 0; j < missing.size(); ++j)
    for (size_t i : block_lists(missing[j])) part_size[j % ranks] += lists_[i].rows.size();
  const size_t longest = *std::max_element(part_size.begin(), part_size.end());
  std::vector<double> mine;
  for (size_t j = size_t(dp.rank()); j < missing.size(); j += ranks) {
    fill_block(missing[j]);
    for (size_t i : block_lists(missing[j])) mine.insert(mine.end(), cache_[i].begin(), cache_[i].end());
  }
  mine.resize(longest, 0.0);
  const std::vector<double> all = dp.all_gather(mine);  // float -> double -> float: the same bits
  for (size_t r = 0; r < ranks; ++r) {
    if (r == size_t(dp.rank())) continue;
    size_t off = r * longest;
    for (size_t j = r; j < missing.size(); j += ranks)
      for (size_t i : block_lists(missing[j])) {
        cache_[i].assign(all.begin() + std::ptrdiff_t(off), all.begin() + std::ptrdiff_t(off + lists_[i].rows.size()));
        off += lists_[i].rows.size();
      }
  }
}

void plot_dpo_curves(const std::string& out_dir, const std::vector<nlohmann::json>& records, double beta) {
  std::vector<PlotSeries> series{{"train loss", {}}, {"train margin", {}}, {"val loss", {}}, {"val accuracy", {}}};
  for (const auto& r : records) {
    const double step = r.at("step").get<double>();
    if (r.at("kind") == "train") {
      series[0].points.emplace_back(step, r.at("loss").get<double>());
      series[1].points.emplace_back(step, r.at("margin").get<double>());
    } else if (r.contains("val_loss")) {
      series[2].points.emplace_back(step, r.at("val_loss").get<double>());
      series[3].points.emplace_back(step, r.at("val_accuracy").get<double>());
    }
  }
  std::erase_if(series, [](const PlotSeries& s) { return s.points.empty(); });  // no held-out lists: no eval
  PlotOptions plot;
  plot.title = "ember dpo (beta " + fmt("%g", beta) + ")";
  plot.y_label = "loss / margin / accuracy";
  write_svg_plot(out_dir + "/dpo.svg", series, plot);
}

DpoResult dpo(DpoOptions o) {
  const train::ResumePoint resumed = train::resume_options(o, "dpo");
  if (o.init.empty()) fail("dpo", "--init is required (an SFT checkpoint)");
  if (o.data.empty()) fail("dpo", "--data is required (preferences as JSON Lines)");
  if (o.out_dir.empty()) fail("dpo", "--out is required (the run folder)");
  if (o.steps <= 0 || o.batch_size <= 0) fail("dpo", "--steps and --batch must be positive");
  if (!(o.beta > 0)) fail("dpo", "--beta must be positive, got ", o.beta);
  // Under mpirun: data parallel over the global batch of --batch lists (train/data_parallel_run.h).
  train::DataParallelRun dp("dpo");
  train::check_data_parallel(dp, o, {{o.batch_size, "--batch"}}, o.resume);
  if (o.threads > 0) omp_set_num_threads(o.threads);

  const std::vector<std::string> gpt_kinds{"pretrain", "sft", "dpo"};
  const train::ModelCheckpoint init = train::open_model_checkpoint(o.init, gpt_kinds, "dpo", "--init");
  const train::ModelCheckpoint ref_ckpt =
      o.ref.empty() ? init : train::open_model_checkpoint(o.ref, gpt_kinds, "dpo", "--ref");
  if (!o.ref.empty()) {
    train::require_same_tokenizer(init, ref_ckpt, "dpo");
    if (ref_ckpt.config.to_json() != init.config.to_json())
      fail("dpo", "--ref ", ref_ckpt.dir, " has another model config than --init ", init.dir);
  }
  const models::GPTConfig& cfg = init.config;
  const Tokenizer tok = train::load_checkpoint_tokenizer(init);
  const ChatTemplate tmpl(tok);
  const int64_t max_len = o.max_len > 0 ? o.max_len : cfg.block_size;
  // A row of max_len tokens is fed as max_len - 1 inputs, so block_size + 1 would fit;
  // keep the reward model's limit so both stages accept the same data.
  if (max_len > cfg.block_size) fail("dpo", "--max-len ", max_len, " exceeds the model's block_size ", cfg.block_size);
  const int64_t pad = tmpl.turn_end_id();

  int64_t cut_train = 0, cut_val = 0;
  const std::vector<RankedRows> train_lists = render_ranked_all(tmpl, read_preferences(o.data), max_len, o.data, &cut_train);
  if (train_lists.empty()) fail("dpo", o.data, " holds no preference records");
  std::vector<RankedRows> val_lists;
  if (!o.val_data.empty()) val_lists = render_ranked_all(tmpl, read_preferences(o.val_data), max_len, o.val_data, &cut_val);
  std::vector<PromptRecord> prompts;
  if (!o.prompts.empty()) {
    prompts = read_prompts(o.prompts);
    if (o.eval_prompts > 0 && int64_t(prompts.size()) > o.eval_prompts) prompts.resize(size_t(o.eval_prompts));
  }

  Generator gen(o.seed);
  models::GPT policy(cfg, &gen);
  nn::load_module(policy, init.model_path);
  policy.eval();  // dropout off (see dpo.h); gradients still flow
  models::GPT reference(cfg, &gen);
  nn::load_module(reference, ref_ckpt.model_path);
  reference.eval();
  for (Tensor& p : reference.parameters()) p.requires_grad_(false);
  DpoReference ref_train(reference, train_lists, pad, size_t(o.batch_size)),
      ref_val(reference, val_lists, pad, size_t(o.batch_size));

  const std::unique_ptr<optim::AdamW> optimizer = train::finetune_adamw(policy, o.lr, o.weight_decay);
  optim::AdamW& opt = *optimizer;
  const optim::LRLambda schedule = train::finetune_schedule(o.warmup_steps, o.steps, o.min_lr_ratio);

  if (dp.lead()) {
    fs::create_directories(o.out_dir);
    tok.save(o.out_dir + "/tokenizer");
  }
  const int64_t start_step = resumed.restore(policy, opt, gen);
  dp.wrap(policy);
  PreferenceBatches batches(train_lists.size(), o.seed);
  if (o.resume) batches.restore(resumed.trainer.at("data"));
  train::MetricsLog metrics(dp.lead() ? o.out_dir + "/metrics.jsonl" : "", resumed.metrics_keep_step());
  DpoResult result;
  if (!o.quiet) {
    int64_t pairs = 0;
    for (const auto& l : train_lists) pairs += int64_t(l.rows.size() * (l.rows.size() - 1) / 2);
    std::cout << "ember dpo: " << train_lists.size() << " ranked lists (" << pairs << " pairs), beta " << o.beta
              << (cut_train + cut_val ? ", " + std::to_string(cut_train + cut_val) + " with prompts cut to fit" : "")
              << "; " << fmt("%.2fM", double(policy.num_parameters()) / 1e6) << " parameters" << std::endl;
    if (o.resume) std::cout << "resuming from " << resumed.dir << " at step " << start_step << std::endl;
  }

  auto evaluate = [&](int64_t step, DpoEval& val_out, OracleResult& oracle_out) {
    nlohmann::json rec = {{"kind", "eval"}, {"step", step}};
    if (!val_lists.empty()) {
      val_out = evaluate_dpo(policy, ref_val, val_lists, pad, o.beta, o.batch_size, dp);
      rec["val_loss"] = val_out.loss;
      rec["val_accuracy"] = val_out.accuracy;
      rec["val_margin"] = val_out.margin;
      rec["val_chosen_reward"] = val_out.chosen_reward;
      rec["val_rejected_reward"] = val_out.rejected_reward;
      if (const nlohmann::json b = val_out.breakdown.to_json(); !b.empty()) rec["val_breakdown"] = b;
    }
    if (!prompts.empty()) {  // each rank replies to its share of the prompts
      oracle_out = evaluate_oracle(policy, tmpl, prompts, o.max_new_tokens, &dp);
      rec["oracle_accuracy"] = oracle_out.accuracy;
      rec["oracle_score"] = oracle_out.score;
      rec["hallucination"] = oracle_out.hallucination;
      rec["over_refusal"] = oracle_out.over_refusal;
      rec["by_kind"] = oracle_out.by_kind;
      rec["samples"] = oracle_out.samples;
    }
    metrics.write(rec);
    if (!o.quiet && (!val_lists.empty() || !prompts.empty())) {
      std::cout << "step " << step;
      if (!val_lists.empty())
        std::cout << "  val loss " << fmt("%.4f", val_out.loss) << "  preference accuracy "
                  << fmt("%.1f%%", 100 * val_out.accuracy) << "  margin " << fmt("%.3f", val_out.margin);
      if (!prompts.empty())
        std::cout << "  oracle accuracy " << fmt("%.1f%%", 100 * oracle_out.accuracy) << "  score "
                  << fmt("%.3f", oracle_out.score);
      std::cout << std::endl;
    }
  };
  // A resumed run's step-0 evaluation is the one of the run it continues (metrics.jsonl).
  if (!o.resume) evaluate(0, result.val_before, result.oracle_before);

  auto checkpoint = [&](int64_t step) -> std::string {
    if (!dp.lead()) return "";
    nlohmann::json tj =
        train::finetune_trainer_json("dpo", step, cfg.to_json(), o.to_json(), init.dir, gen, batches.position());
    tj["ref"] = fs::absolute(ref_ckpt.dir).string();
    const train::CheckpointSave what{.model = &policy, .optimizer = &opt, .trainer = tj,
                                     .copy_dirs = {{o.out_dir + "/tokenizer", "tokenizer"}}};
    return train::save_checkpoint(o.out_dir, step, what, o.keep_checkpoints);
  };

  using clock = std::chrono::steady_clock;
  result.step = start_step;
  const train::FinetuneStops stops(o.steps, o.checkpoint_every, o.stop_after, &dp);
  for (int64_t step = start_step + 1; step <= o.steps; ++step) {
    const auto t0 = clock::now();
    const std::vector<size_t> global = batches.next(size_t(o.batch_size));
    ref_train.prefetch(global, dp);  // the reference pass split over the ranks
    const std::vector<size_t> which = dp.take_share(global);  // this rank's lists
    const double lr = o.lr * schedule(step - 1);
    opt.set_lr(lr);
    opt.zero_grad();
    double loss_v = 0;
    DpoEval st;  // the batch's statistics, from the log-probs the step was computed with
    if (!which.empty()) {
      std::vector<int64_t> sizes;
      const Tensor pi = lists_logps(policy, train_lists, which, pad, &sizes);
      const Tensor ref = ref_train.get(which, pi.dtype());
      const RankedPairs pairs = ranked_pairs(sizes, pi.dtype());
      Tensor loss = dp.weighted_loss(dpo_loss(pi, ref, pairs, o.beta), double(which.size()), double(global.size()));
      loss.backward();
      loss_v = loss.item<double>();
      accumulate(st, dpo_implicit_rewards(pi.detach(), ref, o.beta).to_vector<float>(), sizes);
    }
    // The ranks' parts added up (identities on one process).
    dp.sync_gradients();
    loss_v = dp.sum(loss_v) / dp.size();
    sum_over_ranks(st, dp);
    const double norm =
        train::checked_grad_norm(policy.parameters(), o.grad_clip, loss_v, step, "dpo", "lower --lr or --beta");
    opt.step();
    finish(st);
    const double ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    result.step = step;
    result.train_loss = loss_v;
    metrics.write({{"kind", "train"}, {"step", step}, {"loss", loss_v}, {"accuracy", st.accuracy},
                   {"margin", st.margin}, {"chosen_reward", st.chosen_reward},
                   {"rejected_reward", st.rejected_reward}, {"lr", lr}, {"grad_norm", norm},
                   {"pairs", st.pairs}, {"step_ms", ms}});
    const bool last = step == o.steps;
    if (!o.quiet && (step % 10 == 0 || last))
      std::cout << "step " << step << "/" << o.steps << "  loss " << fmt("%.4f", loss_v) << "  accuracy "
                << fmt("%.1f%%", 100 * st.accuracy) << "  margin " << fmt("%.3f", st.margin) << "  "
                << fmt("%.0f ms", ms) << std::endl;
    if ((o.eval_every > 0 && step % o.eval_every == 0) || last) evaluate(step, result.val, result.oracle);
    if (stops.end_step(step, checkpoint, &result.checkpoint, o.quiet)) {
      result.interrupted = true;
      result.signal = stops.signal();
      break;
    }
  }

  if (dp.lead()) plot_dpo_curves(o.out_dir, metrics.records(), o.beta);
  return result;
}

}  // namespace ember::chat
