// The SFT loop (see sft.h).
#include "ember/chat/sft.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>

#include "ember/autograd/grad_mode.h"
#include "ember/chat/curriculum.h"
#include "ember/core/error.h"
#include "ember/core/random.h"
#include "ember/nn/module_io.h"
#include "ember/ops/ops.h"
#include "ember/optim/optim.h"
#include "ember/tokenizer/tokenizer.h"
#include "ember/train/finetune.h"
#include "ember/train/checkpoint.h"
#include "ember/train/data_parallel_run.h"
#include "ember/train/metrics_log.h"
#include "ember/train/model_checkpoint.h"
#include "ember/util/splitmix.h"

namespace ember::chat {
namespace fs = std::filesystem;

nlohmann::json SftOptions::to_json() const {
  return {{"init", init}, {"data", data}, {"val_data", val_data}, {"prompts", prompts}, {"steps", steps},
          {"batch_size", batch_size}, {"seq_len", seq_len}, {"lr", lr}, {"min_lr_ratio", min_lr_ratio},
          {"warmup_steps", warmup_steps}, {"weight_decay", weight_decay}, {"grad_clip", grad_clip},
          {"eval_every", eval_every}, {"eval_prompts", eval_prompts}, {"max_new_tokens", max_new_tokens},
          {"seed", seed}};
}

void SftOptions::update_from_json(const nlohmann::json& j) {
  auto take = [&](const char* key, auto& field) { train::take_json(j, key, field); };
  take("init", init), take("data", data), take("val_data", val_data), take("prompts", prompts);
  take("batch_size", batch_size), take("seq_len", seq_len), take("lr", lr), take("min_lr_ratio", min_lr_ratio);
  take("warmup_steps", warmup_steps), take("weight_decay", weight_decay), take("grad_clip", grad_clip);
  take("eval_every", eval_every), take("eval_prompts", eval_prompts), take("max_new_tokens", max_new_tokens);
  take("seed", seed);
}

std::vector<int64_t> sft_targets(const RenderedChat& chat) {
  std::vector<int64_t> t;
  for (size_t p = 1; p < chat.ids.size(); ++p) t.push_back(chat.mask[p] ? chat.ids[p] : -1);
  return t;
}

std::vector<std::vector<int64_t>> pack_rows(const std::vector<RenderedChat>& chats, const std::vector<size_t>& order,
                                            int64_t T, int64_t pad_id, std::vector<std::vector<int64_t>>* labels,
                                            int64_t* truncated) {
  const size_t width = size_t(T + 1);
  std::vector<std::vector<int64_t>> rows, labs;
  if (truncated) *truncated = 0;
  for (size_t idx : order) {
    const RenderedChat& c = chats[idx];
    const size_t n = std::min(c.ids.size(), width);
    if (n < c.ids.size() && truncated) ++*truncated;
    size_t r = 0;
    while (r < rows.size() && rows[r].size() + n > width) ++r;  // first fit
    if (r == rows.size()) rows.emplace_back(), labs.emplace_back();
    for (size_t p = 0; p < n; ++p) {
      rows[r].push_back(c.ids[p]);
      labs[r].push_back(c.mask[p] ? c.ids[p] : -1);
    }
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    rows[r].resize(width, pad_id);
    labs[r].resize(width, -1);
  }
  if (labels) *labels = std::move(labs);
  return rows;
}

namespace {

std::string fmt(const char* f, double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// Trained (non-masked) target tokens of rows [from, to).
int64_t trained_tokens(const std::vector<std::vector<int64_t>>& labels, size_t from, size_t to, int64_t T) {
  int64_t count = 0;
  for (size_t r = from; r < to; ++r)
    for (int64_t p = 1; p <= T; ++p) count += labels[r][size_t(p)] >= 0;
  return count;
}

}  // namespace

std::pair<Tensor, Tensor> packed_batch(const std::vector<std::vector<int64_t>>& rows,
                                       const std::vector<std::vector<int64_t>>& labels, size_t from, size_t to,
                                       int64_t T, int64_t* trained) {
  std::vector<int64_t> x, y;
  for (size_t r = from; r < to; ++r) {
    x.insert(x.end(), rows[r].begin(), rows[r].begin() + T);
    for (int64_t p = 1; p <= T; ++p) y.push_back(labels[r][size_t(p)]);
  }
  if (trained) *trained = trained_tokens(labels, from, to, T);
  const int64_t n = int64_t(to - from);
  return {tensor_i64(x, {n, T}), tensor_i64(y, {n, T})};
}

std::vector<RenderedChat> render_conversations(const ChatTemplate& tmpl, const std::vector<Conversation>& convs) {
  std::vector<RenderedChat> out;
  out.reserve(convs.size());
  for (const auto& c : convs) out.push_back(tmpl.render(c));
  return out;
}

double evaluate_sft_loss(models::GPT& model, const std::vector<RenderedChat>& chats, int64_t T, int64_t batch,
                         int64_t pad_id, const train::DataParallelRun* dp) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<size_t> order(chats.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::vector<std::vector<int64_t>> labels;
  const auto rows = pack_rows(chats, order, T, pad_id, &labels);
  double total = 0;
  int64_t tokens = 0;
  for (const size_t r : train::DataParallelRun::my_batches(dp, rows.size(), batch)) {
    int64_t trained = 0;
    auto [x, y] = packed_batch(rows, labels, r, std::min(rows.size(), r + size_t(batch)), T, &trained);
    if (trained == 0) continue;
    total += model.loss(x, y, -1).item<double>() * double(trained);
    tokens += trained;
  }
  if (dp && dp->distributed()) {
    std::vector<double> sums{total, double(tokens)};
    dp->sum(sums);
    total = sums[0], tokens = int64_t(sums[1]);
  }
  if (was_training) model.train();
  return tokens > 0 ? total / double(tokens) : std::numeric_limits<double>::quiet_NaN();
}

void plot_sft_curves(const std::string& out_dir, const std::vector<nlohmann::json>& records) {
  train::plot_loss_curve(out_dir + "/loss.svg", "ember sft", records);
}

SftResult sft(SftOptions o) {
  const train::ResumePoint resumed = train::resume_options(o, "sft");
  if (o.init.empty()) fail("sft", "--init is required (a pretrained checkpoint)");
  if (o.data.empty()) fail("sft", "--data is required (conversations as JSON Lines)");
  if (o.out_dir.empty()) fail("sft", "--out is required (the run folder)");
  if (o.steps <= 0 || o.batch_size <= 0) fail("sft", "--steps and --batch must be positive");
  // Under mpirun: data parallel over the global batch of --batch rows (train/data_parallel_run.h).
  train::DataParallelRun dp("sft");
  train::check_data_parallel(dp, o, {{o.batch_size, "--batch"}}, o.resume);
  if (o.threads > 0) omp_set_num_threads(o.threads);

  const train::ModelCheckpoint init = train::open_model_checkpoint(o.init, {"pretrain", "sft"}, "sft", "--init");
  const std::string& init_dir = init.dir;
  const models::GPTConfig& cfg = init.config;
  const Tokenizer tok = train::load_checkpoint_tokenizer(init);
  const ChatTemplate tmpl(tok);
  const int64_t T = o.seq_len > 0 ? o.seq_len : cfg.block_size;
  if (T > cfg.block_size) fail("sft", "--seq-len ", T, " exceeds the model's block_size ", cfg.block_size);
  const int64_t pad = tmpl.turn_end_id();

  const std::vector<RenderedChat> train_chats = render_conversations(tmpl, read_conversations(o.data));
  std::vector<RenderedChat> val_chats;
  if (!o.val_data.empty()) val_chats = render_conversations(tmpl, read_conversations(o.val_data));
  std::vector<PromptRecord> prompts;
  if (!o.prompts.empty()) {
    prompts = read_prompts(o.prompts);
    if (o.eval_prompts > 0 && int64_t(prompts.size()) > o.eval_prompts) prompts.resize(size_t(o.eval_prompts));
  }

  Generator gen(o.seed);
  models::GPT model(cfg, &gen);
  nn::load_module(model, init_dir + "/model.safetensors");
  model.train();
  const std::unique_ptr<optim::AdamW> optimizer = train::finetune_adamw(model, o.lr, o.weight_decay);
  optim::AdamW& opt = *optimizer;
  const optim::LRLambda schedule = train::finetune_schedule(o.warmup_steps, o.steps, o.min_lr_ratio);

  if (dp.lead()) {
    fs::create_directories(o.out_dir);
    // Saved under the run folder as tokenizer/ so checkpoints carry it by that name.
    tok.save(o.out_dir + "/tokenizer");
  }
  const int64_t start_step = resumed.restore(model, opt, gen);
  dp.wrap(model);
  train::MetricsLog metrics(dp.lead() ? o.out_dir + "/metrics.jsonl" : "", resumed.metrics_keep_step());
  SftResult result;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto evaluate = [&](int64_t step, OracleResult& oracle_out, double& val_out) {
    val_out = val_chats.empty() ? nan : evaluate_sft_loss(model, val_chats, T, o.batch_size, pad, &dp);
    nlohmann::json rec = {{"kind", "eval"}, {"step", step}};
    if (!val_chats.empty()) rec["val_loss"] = val_out;
    if (!prompts.empty()) {  // each rank replies to its share of the prompts
      oracle_out = evaluate_oracle(model, tmpl, prompts, o.max_new_tokens, &dp);
      rec["oracle_accuracy"] = oracle_out.accuracy;
      rec["oracle_score"] = oracle_out.score;
      rec["hallucination"] = oracle_out.hallucination;
      rec["over_refusal"] = oracle_out.over_refusal;
      rec["by_kind"] = oracle_out.by_kind;
      rec["samples"] = oracle_out.samples;
    }
    metrics.write(rec);
    if (!o.quiet) {
      std::cout << "step " << step;
      if (!val_chats.empty()) std::cout << "  val loss " << fmt("%.4f", val_out);
      if (!prompts.empty())
        std::cout << "  oracle accuracy " << fmt("%.1f%%", 100 * oracle_out.accuracy) << "  score "
                  << fmt("%.3f", oracle_out.score) << "  hallucination " << fmt("%.1f%%", 100 * oracle_out.hallucination);
      std::cout << std::endl;
    }
  };
  if (o.resume) {
    result.val_loss_before = nan;  // measured by the run this one continues (metrics.jsonl, step 0)
  } else {
    evaluate(0, result.oracle_before, result.val_loss_before);
  }

  // Epochs of packed rows, each packed from its own seeded shuffle.
  std::vector<std::vector<int64_t>> rows, labels;
  size_t cursor = 0;
  uint64_t epoch = 0;
  int64_t truncated_total = 0;
  auto next_epoch = [&] {
    const std::vector<size_t> order = shuffled_indices(train_chats.size(), o.seed * 1000003 + epoch++);
    int64_t truncated = 0;
    rows = pack_rows(train_chats, order, T, pad, &labels, &truncated);
    truncated_total += truncated;
    cursor = 0;
  };
  if (o.resume) {
    // The data position: which epoch's order (seeded by its index) and where in it.
    epoch = resumed.trainer.at("data").at("epoch").get<uint64_t>() - 1;
    next_epoch();
    cursor = resumed.trainer.at("data").at("cursor").get<size_t>();
  } else {
    next_epoch();
  }
  if (!o.quiet)
    std::cout << "ember sft: " << train_chats.size() << " conversations packed into " << rows.size() << " rows of "
              << T << " tokens" << (truncated_total ? ", " + std::to_string(truncated_total) + " cut to fit" : "")
              << "; " << fmt("%.2fM", double(model.num_parameters()) / 1e6) << " parameters" << std::endl;

  auto checkpoint = [&](int64_t step) -> std::string {
    if (!dp.lead()) return "";
    const nlohmann::json tj = train::finetune_trainer_json("sft", step, cfg.to_json(), o.to_json(), init_dir, gen,
                                                           {{"epoch", epoch}, {"cursor", cursor}});
    const train::CheckpointSave what{.model = &model, .optimizer = &opt, .trainer = tj,
                                     .copy_dirs = {{o.out_dir + "/tokenizer", "tokenizer"}}};
    return train::save_checkpoint(o.out_dir, step, what, o.keep_checkpoints);
  };

  using clock = std::chrono::steady_clock;
  result.step = start_step;
  if (!o.quiet && o.resume) std::cout << "resuming from " << resumed.dir << " at step " << start_step << std::endl;
  const train::FinetuneStops stops(o.steps, o.checkpoint_every, o.stop_after, &dp);
  for (int64_t step = start_step + 1; step <= o.steps; ++step) {
    const auto t0 = clock::now();
    if (cursor >= rows.size()) next_epoch();
    const size_t to = std::min(rows.size(), cursor + size_t(o.batch_size));
    // The global batch's trained tokens (counted, not built), and this rank's rows and trained tokens.
    const int64_t trained = trained_tokens(labels, cursor, to, T);
    const auto [lo, hi] = dp.share(int64_t(to - cursor));
    int64_t mine = 0;
    const std::pair<Tensor, Tensor> xy = packed_batch(rows, labels, cursor + size_t(lo), cursor + size_t(hi), T, &mine);
    cursor = to;
    const double lr = o.lr * schedule(step - 1);
    opt.set_lr(lr);
    opt.zero_grad();
    double loss_v = 0;
    if (mine > 0) {  // the mean over the global batch's trained tokens (DataParallelRun::weighted_loss)
      Tensor loss = dp.weighted_loss(model.loss(xy.first, xy.second, -1), double(mine), double(trained));
      loss.backward();
      loss_v = loss.item<double>();
    }
    dp.sync_gradients();
    loss_v = trained > 0 ? dp.sum(loss_v) / dp.size() : nan;  // no trained token: a non-finite loss stops the run
    const double norm = train::checked_grad_norm(model.parameters(), o.grad_clip, loss_v, step, "sft");
    opt.step();
    const double ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    result.step = step;
    result.train_loss = loss_v;
    metrics.write({{"kind", "train"}, {"step", step}, {"loss", loss_v}, {"lr", lr}, {"grad_norm", norm},
                   {"trained_tokens", trained}, {"step_ms", ms}});
    const bool last = step == o.steps;
    if (!o.quiet && (step % 10 == 0 || last))
      std::cout << "step " << step << "/" << o.steps << "  loss " << fmt("%.4f", loss_v) << "  " << fmt("%.0f ms", ms)
                << std::endl;
    if ((o.eval_every > 0 && step % o.eval_every == 0) || last) evaluate(step, result.oracle, result.val_loss);
    if (stops.end_step(step, checkpoint, &result.checkpoint, o.quiet)) {
      result.interrupted = true;
      result.signal = stops.signal();
      break;
    }
  }
  if (dp.lead()) plot_sft_curves(o.out_dir, metrics.records());
  return result;
}

}  // namespace ember::chat
