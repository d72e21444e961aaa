// The PPO loop (see ppo.h; the formulas are in ppo_math.h).
#include "ember/chat/ppo.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "ember/autograd/grad_mode.h"
#include "ember/chat/curriculum.h"
#include "ember/chat/ppo_math.h"
#include "ember/chat/ppo_rollout.h"
#include "ember/chat/reward.h"
#include "ember/core/error.h"
#include "ember/infer/engine.h"
#include "ember/io/safetensors.h"
#include "ember/models/value_model.h"
#include "ember/nn/copy.h"
#include "ember/nn/module_io.h"
#include "ember/ops/ops.h"
#include "ember/optim/optim.h"
#include "ember/tokenizer/tokenizer.h"
#include "ember/train/checkpoint.h"
#include "ember/train/finetune.h"
#include "ember/train/metrics_log.h"
#include "ember/train/model_checkpoint.h"
#include "ember/util/plot.h"
#include "ember/util/progress.h"
#include "ember/util/splitmix.h"


namespace ember::chat {
namespace fs = std::filesystem;

nlohmann::json PpoOptions::to_json() const {
  const std::string reward_name = reward_fn && reward != "oracle" ? std::string("<reward_fn>") : reward;
  return {{"policy", policy}, {"reward", reward_name}, {"critic_init", critic_init},
          {"prompts", prompts}, {"eval_prompts", eval_prompts_file}, {"iterations", iterations},
          {"rollout_batch", rollout_batch}, {"group_size", group_size}, {"max_new_tokens", max_new_tokens},
          {"temperature", temperature},
          {"top_k", top_k}, {"top_p", top_p}, {"ppo_epochs", ppo_epochs}, {"minibatch", minibatch}, {"lr", lr},
          {"critic_lr", critic_lr}, {"kl_coef", kl_coef}, {"kl_target", kl_target}, {"kl_horizon", kl_horizon},
          {"kl_estimator", kl_estimator}, {"clip_range", clip_range}, {"value_clip", value_clip},
          {"vf_coef", vf_coef}, {"gamma", gamma}, {"lam", lam}, {"reward_clip", reward_clip},
          {"reward_baseline", reward_baseline},
          {"whiten_advantages", whiten_advantages}, {"entropy_coef", entropy_coef}, {"ptx_data", ptx_data},
          {"ptx_coef", ptx_coef}, {"ptx_rows", ptx_rows}, {"grad_clip", grad_clip},
          {"eval_every", eval_every}, {"eval_count", eval_count}, {"seed", seed}};
}

namespace {

// Seeded streams (util/splitmix.h) keyed by (seed, iteration, ...), so a
// resumed run draws what the uninterrupted one did.
uint64_t mix(uint64_t a, uint64_t b, uint64_t c = 0) { return SplitMix64(a * 0x100000001B3ull ^ b * 0x9E3779B97F4A7C15ull ^ c).next(); }

std::string fmt(const char* f, double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// Rows `rows` of a rollout as model input: prompt + response right-padded to
// the longest, and the flat positions [n * Tr] whose logits predict each
// response token (position plen + j - 1 of row r; padding points at 0).
struct Packed {
  Tensor idx, pick;
  int64_t n = 0, L = 0;
};
Packed pack(const Rollout& ro, const std::vector<int64_t>& rows, int64_t pad) {
  Packed p;
  p.n = int64_t(rows.size());
  for (int64_t r : rows)
    p.L = std::max<int64_t>(p.L, int64_t(ro.prompt_ids[size_t(r)].size() + ro.response_ids[size_t(r)].size()));
  std::vector<int64_t> ids(size_t(p.n * p.L), pad), pick(size_t(p.n * ro.Tr), 0);
  for (int64_t i = 0; i < p.n; ++i) {
    const auto& pr = ro.prompt_ids[size_t(rows[size_t(i)])];
    const auto& re = ro.response_ids[size_t(rows[size_t(i)])];
    std::copy(pr.begin(), pr.end(), ids.begin() + i * p.L);
    std::copy(re.begin(), re.end(), ids.begin() + i * p.L + int64_t(pr.size()));
    for (size_t j = 0; j < re.size(); ++j) pick[size_t(i * ro.Tr) + j] = i * p.L + int64_t(pr.size() + j) - 1;
  }
  p.idx = tensor_i64(ids, {p.n, p.L});
  p.pick = tensor_i64(pick, {p.n * ro.Tr});
  return p;
}

// Logits at the response positions, [n, Tr, V], divided by the sampling temperature.
Tensor response_logits(models::GPT& model, const Packed& p, int64_t Tr, double temperature) {
  Tensor logits = model.forward(p.idx);
  const int64_t V = logits.shape(2);
  Tensor picked = reshape(index_select(reshape(logits, {p.n * p.L, V}), 0, p.pick), {p.n, Tr, V});
  return temperature != 1.0 ? picked / temperature : picked;
}

Tensor response_values(models::ValueModel& critic, const Packed& p, int64_t Tr) {
  Tensor v = critic.values(p.idx);
  return reshape(index_select(reshape(v, {p.n * p.L}), 0, p.pick), {p.n, Tr});
}

Tensor select_rows(const Tensor& x, const std::vector<int64_t>& rows) {
  return index_select(x, 0, tensor_i64(rows, {int64_t(rows.size())}));
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / double(v.size());
}

// A prompt as the actor sees it: rendered, keeping its last max_prompt tokens
// (the context left after the reply's budget).
std::vector<int64_t> rollout_prompt(const ChatTemplate& tmpl, const Conversation& prompt, int64_t max_prompt) {
  std::vector<int64_t> ids = tmpl.render_prompt(prompt);
  if (int64_t(ids.size()) > max_prompt) ids.erase(ids.begin(), ids.end() - max_prompt);
  return ids;
}

// The raw reward each prompt's scores are measured from (PpoOptions::
// reward_baseline): the reward model's reward_mean for every prompt, or the
// reward of the prompt's reference reply, scored once (the reward model is
// frozen) on the row a rollout of that reply would be scored on: the
// truncated rollout prompt + the reply + <|im_end|>.
// ("group" measures each reply from its group's other replies, per iteration:
// group_baselines below; here it returns reward_mean, unused.)
std::vector<double> reward_baselines(const PpoOptions& o, const std::vector<PromptRecord>& prompts,
                                     const ChatTemplate& tmpl, const RewardModelCheckpoint* rm, double reward_mean,
                                     int64_t max_prompt) {
  if (o.reward_baseline != "reference") return std::vector<double>(prompts.size(), reward_mean);
  std::vector<std::vector<int64_t>> rows;
  std::vector<int64_t> starts;
  std::vector<double> out;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const nlohmann::json& meta = prompts[i].meta;
    if (!meta.contains("reference") || !meta["reference"].is_string())
      fail("ppo", o.prompts, ": prompt ", i + 1, ": --reward-baseline reference needs a \"reference\" reply per prompt "
                                       "(a curriculum's prompts_rl.jsonl has them)");
    const std::string reference = meta["reference"].get<std::string>();
    const std::vector<int64_t> full = tmpl.render_reply_row(prompts[i].prompt, reference);
    const std::vector<int64_t> reply(full.begin() + std::ptrdiff_t(tmpl.render_prompt(prompts[i].prompt).size()),
                                     full.end());  // with <|im_end|>
    if (o.reward_fn) {
      out.push_back(o.reward_fn(prompts[i], reference, reply));
      continue;
    }
    std::vector<int64_t> row = rollout_prompt(tmpl, prompts[i].prompt, max_prompt);
    starts.push_back(int64_t(row.size()));
    row.insert(row.end(), reply.begin(), reply.end());
    rows.push_back(std::move(row));
  }
  if (!o.reward_fn)  // rows longer than the reward model's context keep their end, as rollouts'
    out = score_replies(*rm, tmpl, rows, starts, 32);
  return out;
}

// The reward model's head scores on its own scale (reward_mean +- reward_std
// over the held-out lists), but the critic learns returns built from
// normalised scores, (raw - baseline) / reward_std, which sit near 0. A critic
// copied unscaled starts several units off, value clipping lets it close only
// part of the gap per iteration (about a third of the default run, measured),
// and meanwhile GAE's advantages follow each token's distance from the end
// rather than the reward. So the copied head is mapped to the scores' scale:
// (w h + b - from) / reward_std, `from` the mean of the prompts' baselines
// (reward_mean for --reward-baseline mean and group, where a reply's own group
// is not known before it is sampled; the mean reference reward for reference).
// (The reward model's likelihood feature, reward.h, is part of the score but
// not of the head; its share, about 0.05 of a unit on the policy's replies at
// seed 1, is left for the critic to learn.)
void rescale_head_to_scores(models::ValueModel& critic, const std::vector<double>& baseline, double reward_std) {
  double from = 0;
  for (double b : baseline) from += b;
  from /= double(std::max<size_t>(1, baseline.size()));
  NoGradGuard no_grad;
  nn::Linear& head = *critic.score;
  nn::copy_(head.weight, head.weight * (1.0 / reward_std));
  if (head.bias.defined()) nn::copy_(head.bias, (head.bias - from) * (1.0 / reward_std));
}

// Leave-one-out baselines of a batch sampled in groups of K consecutive replies
// to one prompt: reply i's is the mean raw reward of the other K - 1 replies of
// its group.
std::vector<double> group_baselines(const std::vector<double>& raw, int64_t K) {
  std::vector<double> out(raw.size());
  for (size_t g = 0; g < raw.size(); g += size_t(K)) {
    double sum = 0;
    for (size_t j = g; j < g + size_t(K); ++j) sum += raw[j];
    for (size_t j = g; j < g + size_t(K); ++j) out[j] = (sum - raw[j]) / double(K - 1);
  }
  return out;
}

// Share of groups whose K replies are not all the same token sequence: the
// groups that give the group baseline anything to compare.
double varied_group_share(const std::vector<std::vector<int64_t>>& replies, int64_t K) {
  int64_t varied = 0, groups = 0;
  for (size_t g = 0; g < replies.size(); g += size_t(K), ++groups)
    for (size_t j = g + 1; j < g + size_t(K); ++j)
      if (replies[j] != replies[g]) {
        ++varied;
        break;
      }
  return groups > 0 ? double(varied) / double(groups) : 0.0;
}

}  // namespace

void plot_ppo_curves(const std::string& out_dir, const std::vector<nlohmann::json>& records) {
  std::vector<PlotSeries> rew{{"reward (raw mean)", {}}, {"score (normalised)", {}}}, kl{{"KL per reply", {}}};
  for (const auto& r : records) {
    if (r.value("kind", "") != "rollout") continue;
    const double x = r.at("step").get<double>();
    rew[0].points.push_back({x, r.at("reward").get<double>()});
    rew[1].points.push_back({x, r.at("score").get<double>()});
    kl[0].points.push_back({x, r.at("kl").get<double>()});
  }
  PlotOptions po;
  po.x_label = "iteration";
  po.title = "ember ppo: reward";
  po.y_label = "reward";
  write_svg_plot(out_dir + "/reward.svg", rew, po);
  po.title = "ember ppo: KL(policy || reference)";
  po.y_label = "KL per reply (nats)";
  write_svg_plot(out_dir + "/kl.svg", kl, po);
}

PpoResult ppo(const PpoOptions& given) {
  const char* op = "ppo";
  PpoOptions o = given;
  if (o.policy.empty()) fail(op, "--policy is required (an SFT checkpoint)");
  if (o.reward.empty() && !o.reward_fn) fail(op, "--reward is required (a reward-model checkpoint)");
  if (o.prompts.empty()) fail(op, "--prompts is required (prompts as JSON Lines)");
  if (o.out_dir.empty()) fail(op, "--out is required (the run folder)");
  if (o.iterations <= 0 || o.rollout_batch <= 0 || o.minibatch <= 0 || o.ppo_epochs <= 0 || o.max_new_tokens <= 0)
    fail(op, "--iterations, --rollout-batch, --minibatch, --ppo-epochs and --max-new-tokens must be positive");
  if (o.critic_init != "reward" && o.critic_init != "sft")
    fail(op, "--critic-init must be 'reward' or 'sft', got '", o.critic_init, "'");
  if (!(o.temperature > 0)) fail(op, "--temperature must be > 0 for sampling rollouts, got ", o.temperature);
  if (!(o.clip_range > 0)) fail(op, "--clip-range must be > 0, got ", o.clip_range);
  if (o.gamma < 0 || o.gamma > 1 || o.lam < 0 || o.lam > 1)
    fail(op, "--gamma and --lam must be in [0, 1], got ", o.gamma, " and ", o.lam);
  if (o.reward_baseline != "mean" && o.reward_baseline != "reference" && o.reward_baseline != "group")
    fail(op, "--reward-baseline must be 'mean', 'reference' or 'group', got '", o.reward_baseline, "'");
  if (o.group_size <= 0 || o.rollout_batch % o.group_size != 0)
    fail(op, "--group-size must be positive and divide --rollout-batch (", o.rollout_batch, "), got ", o.group_size);
  if (o.reward_baseline == "group" && o.group_size < 2)
    fail(op, "--reward-baseline group compares the replies to one prompt: it needs --group-size 2 or more");
  if (!(o.ptx_coef >= 0) || !std::isfinite(o.ptx_coef)) fail(op, "--ptx-coef must be >= 0, got ", o.ptx_coef);
  if (o.ptx_coef > 0 && o.ptx_data.empty())
    fail(op, "--ptx-coef ", o.ptx_coef, " needs --ptx-data (demonstrations as conversations JSON Lines, e.g. the SFT "
         "training file)");
  if (o.ptx_coef > 0 && o.ptx_rows <= 0) fail(op, "--ptx-rows must be positive, got ", o.ptx_rows);
  // --reward oracle: the curriculum's grader scores each reply (a verifiable
  // reward, no reward model): the ceiling of what a perfect reward model could give.
  const bool oracle_reward = o.reward == "oracle" && !o.reward_fn;
  if (oracle_reward)
    o.reward_fn = [](const PromptRecord& p, const std::string& reply, const std::vector<int64_t>&) {
      return grade_response(p.meta.at("grade"), reply).score;
    };
  const KlEstimator kl_est = kl_estimator_from_name(o.kl_estimator);
  if (o.threads > 0) omp_set_num_threads(o.threads);
  // Under mpirun: each rank samples and scores its share of every rollout
  // batch, the experience is pooled (ppo_rollout.h) and each minibatch's
  // update is data parallel over the ranks (train/data_parallel_run.h).
  train::DataParallelRun dp(op);
  // A resumed PPO run takes its batch sizes from the flags, not the checkpoint.
  train::check_data_parallel(dp, o, {{o.rollout_batch, "--rollout-batch"}, {o.minibatch, "--minibatch"}}, false);

  // Models and tokenizer. The reference and the actor start from one SFT file.
  const train::ModelCheckpoint pol = train::open_model_checkpoint(o.policy, {"sft", "dpo", "ppo"}, op, "--policy");
  const models::GPTConfig& cfg = pol.config;
  const Tokenizer tok = train::load_checkpoint_tokenizer(pol);
  const ChatTemplate tmpl(tok);
  const int64_t pad = tmpl.turn_end_id(), im_end = tmpl.turn_end_id();

  // The reward model, with its likelihood feature when it has one (reward.h).
  std::unique_ptr<RewardModelCheckpoint> rm;
  double reward_mean = 0, reward_std = 1;
  if (!o.reward_fn) {
    rm = std::make_unique<RewardModelCheckpoint>(load_reward_model(o.reward, op, "--reward"));
    train::require_same_tokenizer(pol, rm->checkpoint, op);
    reward_mean = rm->reward_mean;
    reward_std = rm->reward_std;
    if (!(reward_std > 0) || !std::isfinite(reward_std) || !std::isfinite(reward_mean))
      fail(op, rm->checkpoint.dir, "/trainer.json: reward_std must be a positive number and reward_mean finite, got ",
           reward_std, " and ", reward_mean);
  }

  Generator gen(o.seed);
  models::GPT actor(cfg, &gen), ref(cfg, &gen);
  nn::load_module(actor, pol.model_path);
  nn::load_module(ref, pol.model_path);
  // Dropout off everywhere (as TRL): the ratio is exactly 1 at the first minibatch.
  actor.eval();
  ref.eval();
  // Without a reward model there is nothing to copy: the critic starts from the SFT trunk.
  const bool critic_from_rm = o.critic_init == "reward" && rm;
  // The critic and the reward model read whole rollouts (prompt + reply), as long as the policy's context.
  if (rm && rm->checkpoint.config.block_size < cfg.block_size)
    fail(op, "the reward model ", rm->checkpoint.dir, " has block_size ", rm->checkpoint.config.block_size,
         ", shorter than the policy's ", cfg.block_size, "; rollouts would not fit it");
  models::ValueModel critic(critic_from_rm ? rm->checkpoint.config : cfg, &gen);
  critic.load_trunk(critic_from_rm ? rm->checkpoint.model_path : pol.model_path);
  critic.eval();

  std::vector<PromptRecord> prompts = read_prompts(o.prompts);
  if (oracle_reward)
    for (size_t i = 0; i < prompts.size(); ++i)
      if (!prompts[i].meta.contains("grade") || !prompts[i].meta["grade"].is_object())
        fail(op, o.prompts, ": prompt ", i + 1, ": --reward oracle needs a grading key (\"grade\") per prompt "
                                          "(a curriculum's prompts_rl.jsonl has them)");
  if (prompts.empty()) fail(op, o.prompts, ": no prompts");
  std::vector<PromptRecord> eval_prompts;
  if (!o.eval_prompts_file.empty()) {
    eval_prompts = read_prompts(o.eval_prompts_file);
    if (o.eval_count > 0 && int64_t(eval_prompts.size()) > o.eval_count) eval_prompts.resize(size_t(o.eval_count));
  }

  // PPO-ptx: the demonstrations packed once into rows of the model's context,
  // in a seeded order; optimizer step k reads rows [k * ptx_rows, ...), wrapping
  // around to the same order when they run out, so a resumed run reads what the
  // uninterrupted one did. A row with no assistant token inside the context is
  // dropped: its mean loss would be 0 / 0.
  std::vector<std::vector<int64_t>> ptx_packed, ptx_labels;
  if (o.ptx_coef > 0) {
    const std::vector<RenderedChat> chats = render_conversations(tmpl, read_conversations(o.ptx_data));
    std::vector<std::vector<int64_t>> labels;
    int64_t truncated = 0;
    std::vector<std::vector<int64_t>> rows = pack_rows(
        chats, shuffled_indices<size_t>(chats.size(), mix(o.seed, 0x707478)), cfg.block_size, pad, &labels, &truncated);
    for (size_t r = 0; r < rows.size(); ++r)
      if (std::any_of(labels[r].begin() + 1, labels[r].end(), [](int64_t t) { return t >= 0; })) {
        ptx_packed.push_back(std::move(rows[r]));
        ptx_labels.push_back(std::move(labels[r]));
      }
    if (ptx_packed.empty())
      fail(op, "--ptx-data ", o.ptx_data, ": no assistant tokens to learn within the ", cfg.block_size,
           "-token context");
    if (dp.lead() && !o.quiet)
      std::cout << "ember ppo: ptx " << chats.size() << " conversations packed into " << ptx_packed.size()
                << " rows" << (truncated > 0 ? " (" + std::to_string(truncated) + " cut to fit)" : std::string())
                << ", " << std::min<int64_t>(o.ptx_rows, int64_t(ptx_packed.size())) << " per optimizer step"
                << std::endl;
  }
  auto ptx_batch = [&](int64_t step) {
    const size_t n = ptx_packed.size(), take = size_t(std::min<int64_t>(o.ptx_rows, int64_t(n)));
    std::vector<std::vector<int64_t>> rows, labels;
    for (size_t j = 0; j < take; ++j) {
      const size_t r = (size_t(step) * size_t(o.ptx_rows) + j) % n;
      rows.push_back(ptx_packed[r]);
      labels.push_back(ptx_labels[r]);
    }
    return packed_batch(rows, labels, 0, rows.size(), cfg.block_size);
  };

  // Generation must fit the context: the reply's budget first, the prompt keeps its end.
  const int64_t block = cfg.block_size;
  const int64_t max_new = std::min(o.max_new_tokens, block - 1);
  const int64_t max_prompt = block - max_new;
  // Per prompt, the raw reward its score is measured from (see reward_baseline).
  const std::vector<double> baseline = reward_baselines(o, prompts, tmpl, rm.get(), reward_mean, max_prompt);
  if (critic_from_rm) rescale_head_to_scores(critic, baseline, reward_std);  // a resumed run then loads its own

  optim::AdamWOptions adam;
  adam.beta1 = 0.9, adam.beta2 = 0.95, adam.weight_decay = 0.0;
  adam.lr = o.lr;
  optim::AdamW actor_opt(optim::make_param_groups(actor, 0.0), adam);
  adam.lr = o.critic_lr;
  optim::AdamW critic_opt(optim::make_param_groups(critic, 0.0), adam);
  KlController klc(o.kl_coef, o.kl_target, o.kl_horizon);

  int64_t start = 0;
  if (o.resume) {
    if (!train::has_checkpoint(o.out_dir))
      fail(op, "--resume: ", o.out_dir, " has no checkpoint (no ", o.out_dir, "/latest)");
    const std::string dir = train::resolve_checkpoint(o.out_dir);
    const nlohmann::json tj = train::read_trainer_json(dir);
    if (tj.value("kind", "") != "ppo") fail(op, "--resume: ", dir, " is not a ppo checkpoint");
    nn::load_module(actor, dir + "/model.safetensors");
    actor_opt.load_state_dict(load_safetensors(dir + "/optimizer.safetensors").tensors);
    nn::load_module(critic, dir + "/critic/model.safetensors");
    critic_opt.load_state_dict(load_safetensors(dir + "/critic/optimizer.safetensors").tensors);
    klc.set_value(tj.at("kl_coef").get<double>());
    start = tj.at("step").get<int64_t>();
  }

  // Actor and critic as one module, so that one DataParallel sends all their
  // gradients in one fixed order of buckets.
  nn::Module trained;
  trained.register_module("actor", std::shared_ptr<models::GPT>(std::shared_ptr<void>(), &actor));
  trained.register_module("critic", std::shared_ptr<models::ValueModel>(std::shared_ptr<void>(), &critic));
  dp.wrap(trained);
  if (dp.lead()) {
    fs::create_directories(o.out_dir);
    tok.save(o.out_dir + "/tokenizer");
  }
  train::MetricsLog metrics(dp.lead() ? o.out_dir + "/metrics.jsonl" : "", o.resume ? start : -1);
  PpoResult result;
  result.iterations = start;

  auto evaluate = [&](int64_t it, OracleResult& out) {
    if (eval_prompts.empty()) return;
    out = evaluate_oracle(actor, tmpl, eval_prompts, o.eval_max_new_tokens, &dp);  // each rank replies to its share
    metrics.write({{"kind", "eval"}, {"step", it}, {"oracle_accuracy", out.accuracy}, {"oracle_score", out.score},
                   {"hallucination", out.hallucination}, {"over_refusal", out.over_refusal}, {"by_kind", out.by_kind},
                   {"samples", out.samples}});
    if (!o.quiet)
      std::cout << "iteration " << it << "  oracle accuracy " << fmt("%.1f%%", 100 * out.accuracy) << "  score "
                << fmt("%.3f", out.score) << "  hallucination " << fmt("%.1f%%", 100 * out.hallucination) << std::endl;
  };

  auto checkpoint = [&](int64_t it) -> std::string {
    if (!dp.lead()) return "";
    // The critic travels inside the checkpoint folder (copied in before the
    // atomic rename), so actor and critic can never be from different iterations.
    const std::string staging = o.out_dir + "/.critic-staging";
    fs::remove_all(staging);
    fs::create_directories(staging);
    nn::save_module(critic, staging + "/model.safetensors");
    save_safetensors(staging + "/optimizer.safetensors", critic_opt.state_dict());
    nlohmann::json tj = {{"kind", "ppo"},
                         {"step", it},
                         {"config", cfg.to_json()},
                         {"critic_config", critic.config().to_json()},
                         {"options", o.to_json()},
                         {"policy", fs::absolute(pol.dir).string()},
                         {"reward", rm ? fs::absolute(rm->checkpoint.dir).string() : std::string()},
                         {"kl_coef", klc.value()}};
    train::CheckpointSave what{&actor, &actor_opt, tj,
                               {{o.out_dir + "/tokenizer", "tokenizer"}, {staging, "critic"}}};
    const std::string dir = train::save_checkpoint(o.out_dir, it, what, o.keep_checkpoints);
    fs::remove_all(staging);
    return dir;
  };

  if (!o.quiet)
    std::cout << "ember ppo: " << prompts.size() << " prompts, " << o.rollout_batch << " rollouts x " << o.iterations
              << " iterations, actor " << fmt("%.2fM", double(actor.num_parameters()) / 1e6) << " parameters, critic from "
              << (critic_from_rm ? "the reward model" : "the SFT trunk")
              << (o.resume ? ", resuming at iteration " + std::to_string(start) : std::string()) << std::endl;
  evaluate(start, result.oracle_before);

  using clock = std::chrono::steady_clock;
  std::unique_ptr<ProgressBar> bar;
  if (!o.quiet) bar = std::make_unique<ProgressBar>("ppo", o.iterations - start);
  const int64_t B = o.rollout_batch;
  // This rank's rollouts [lo, hi) of each batch (all of them on one process).
  const auto [lo, hi] = dp.share(B);
  const int64_t Bl = hi - lo;
  // SIGINT/SIGTERM stop the run after the iteration in progress, with a
  // checkpoint (the ranks together), so --resume continues it.
  const train::FinetuneStops stops(o.iterations, o.checkpoint_every, 0, &dp);
  for (int64_t it = start + 1; it <= o.iterations; ++it) {
    const auto t0 = clock::now();
    const double kl_coef = klc.value();
    Rollout ro;

    // 1. Rollouts through the KV-cache engine. A fresh engine per iteration: its
    //    runner takes raw pointers to the weights when it is built. Rollout i
    //    has its own seed, whichever rank samples it.
    {
      SplitMix64 pick(mix(o.seed, uint64_t(it), 1));
      infer::EngineOptions eo;
      eo.max_slots = std::min<int64_t>(Bl, 64);
      eo.max_queue = Bl;
      infer::Engine engine(actor, eo);
      ro.response_ids.resize(size_t(Bl));
      std::vector<std::vector<float>> lps(static_cast<size_t>(Bl));
      size_t pi = 0;
      for (int64_t g = 0; g < B; ++g) {
        if (g % o.group_size == 0) pi = size_t(pick.next() % prompts.size());  // a group shares its prompt
        if (g < lo || g >= hi) continue;  // another rank's
        const int64_t i = g - lo;
        std::vector<int64_t> ids = rollout_prompt(tmpl, prompts[pi].prompt, max_prompt);
        ro.prompt_index.push_back(pi);
        ro.prompt_ids.push_back(ids);
        infer::Request req;
        req.prompt = ids;
        req.sampling.temperature = o.temperature;
        req.sampling.top_k = o.top_k;
        req.sampling.top_p = o.top_p;
        req.max_tokens = max_new;
        req.stop_tokens = {im_end};
        req.seed = mix(o.seed, uint64_t(it), uint64_t(g) + 2);
        req.on_event = [&, i](const infer::TokenEvent& e) {
          if (e.finish == infer::FinishReason::error) fail(op, "rollout generation failed: ", e.error);
          if (e.token >= 0) ro.response_ids[size_t(i)].push_back(e.token), lps[size_t(i)].push_back(e.logprob);
        };
        engine.submit(std::move(req));
      }
      engine.run_until_idle();
      for (auto& l : lps) ro.engine_logprobs.insert(ro.engine_logprobs.end(), l.begin(), l.end());
    }
    const auto t_gen = clock::now();

    // 2. Rewards: the reward model reads prompt + reply + <|im_end|> (a reply cut
    //    by max_new_tokens gets the <|im_end|> appended), score at the last token.
    ro.raw_reward.resize(size_t(Bl));
    if (o.reward_fn) {
      for (int64_t i = 0; i < Bl; ++i)
        ro.raw_reward[size_t(i)] = o.reward_fn(prompts[ro.prompt_index[size_t(i)]],
                                               tmpl.decode_reply(ro.response_ids[size_t(i)]), ro.response_ids[size_t(i)]);
    } else {
      // Rows longer than the reward model's context keep their end (score_replies).
      std::vector<std::vector<int64_t>> rows;
      std::vector<int64_t> starts;
      for (int64_t i = 0; i < Bl; ++i) {
        std::vector<int64_t> row = ro.prompt_ids[size_t(i)];
        starts.push_back(int64_t(row.size()));
        const auto& re = ro.response_ids[size_t(i)];
        row.insert(row.end(), re.begin(), re.end());
        if (re.empty() || re.back() != im_end) row.push_back(im_end);
        rows.push_back(std::move(row));
      }
      ro.raw_reward = score_replies(*rm, tmpl, rows, starts, 32);
    }

    // 3. Old log-probs, reference log-probs and values: no-grad forwards over the batch.
    set_response_tensors(ro);
    std::vector<int64_t> all(static_cast<size_t>(Bl));
    for (int64_t i = 0; i < Bl; ++i) all[size_t(i)] = i;
    {
      NoGradGuard no_grad;
      const Packed p = pack(ro, all, pad);
      ro.old_logp = token_logprobs(response_logits(actor, p, ro.Tr, o.temperature), ro.tokens) * ro.mask;
      ro.ref_logp = token_logprobs(response_logits(ref, p, ro.Tr, o.temperature), ro.tokens) * ro.mask;
      ro.values = response_values(critic, p, ro.Tr) * ro.mask;
    }
    // The engine's log-probs (raw logits, KV-cache path) against the training
    // forward's: they agree to float rounding when sampling at temperature 1.
    double logprob_gap = 0;
    if (o.temperature == 1.0) {
      const std::vector<float> old = ro.old_logp.to_vector<float>();
      size_t k = 0;
      for (int64_t i = 0; i < Bl; ++i)
        for (size_t j = 0; j < ro.response_ids[size_t(i)].size(); ++j, ++k)
          logprob_gap = std::max(logprob_gap, std::abs(double(old[size_t(i * ro.Tr) + j]) - ro.engine_logprobs[k]));
      logprob_gap = dp.max(logprob_gap);
    }
    // Every rank's experience, so that what follows sees the whole batch.
    gather_rollout(ro, dp, [&](size_t pi) { return rollout_prompt(tmpl, prompts[pi].prompt, max_prompt); });
    ro.score.resize(size_t(B));
    const std::vector<double> group_base =
        o.reward_baseline == "group" ? group_baselines(ro.raw_reward, o.group_size) : std::vector<double>();
    for (int64_t i = 0; i < B; ++i) {
      const double from = group_base.empty() ? baseline[ro.prompt_index[size_t(i)]] : group_base[size_t(i)];
      double s = (ro.raw_reward[size_t(i)] - from) / reward_std;
      if (o.reward_clip > 0) s = std::clamp(s, -o.reward_clip, o.reward_clip);
      if (!std::isfinite(s)) fail(op, "iteration ", it, ": the reward of rollout ", i, " is not finite (", s, ")");
      ro.score[size_t(i)] = s;
    }

    // 4. KL penalty, rewards, GAE.
    ro.kl = kl_estimate(ro.old_logp, ro.ref_logp, kl_est) * ro.mask;
    ro.rewards = kl_penalized_rewards(ro.kl, ro.mask, tensor(ro.score, {B}), kl_coef);
    ro.advantages = gae(ro.rewards, ro.values, ro.mask, o.gamma, o.lam, &ro.returns);
    if (o.whiten_advantages) ro.advantages = whiten(ro.advantages, ro.mask);
    const double kl_per_reply = sum(ro.kl).item<double>() / double(B);
    const double ntok = sum(ro.mask).item<double>();
    const double rollout_entropy = -sum(ro.old_logp).item<double>() / std::max(1.0, ntok);
    const auto t_exp = clock::now();

    // 5. PPO epochs over shuffled minibatches.
    double s_pg = 0, s_vf = 0, s_clip = 0, s_vclip = 0, s_akl = 0, s_ent = 0, s_ratio = 0, s_ptx = 0;
    int64_t n_mb = 0;
    const int64_t minibatches = (B + o.minibatch - 1) / o.minibatch;
    for (int64_t epoch = 0; epoch < o.ppo_epochs; ++epoch) {
      const std::vector<int64_t> order =
          shuffled_indices<int64_t>(size_t(B), mix(o.seed, uint64_t(it), uint64_t(epoch) + 1000003));
      for (int64_t from = 0; from < B; from += o.minibatch) {
        const std::vector<int64_t> minibatch(order.begin() + from, order.begin() + std::min(B, from + o.minibatch));
        // This rank's replies of the minibatch. The losses are means over the
        // minibatch's tokens: this rank's means weigh `mine` of `total` tokens.
        const std::vector<int64_t> rows = dp.take_share(minibatch);
        double mine = 0, total = 0;
        for (int64_t r : minibatch) total += double(ro.response_ids[size_t(r)].size());
        for (int64_t r : rows) mine += double(ro.response_ids[size_t(r)].size());
        const double w = dp.distributed() ? mine / total : 1.0;
        actor_opt.zero_grad();
        critic_opt.zero_grad();
        // policy loss, value loss, their clip fractions, approx KL, entropy, ratio, ptx loss: this rank's part
        std::vector<double> st(8, 0.0);
        if (!rows.empty()) {
          const Packed p = pack(ro, rows, pad);
          const Tensor mask = select_rows(ro.mask, rows), tokens = select_rows(ro.tokens, rows);
          Tensor logits = response_logits(actor, p, ro.Tr, o.temperature);
          Tensor logp = token_logprobs(logits, tokens);
          PolicyLoss pl = policy_loss(logp, select_rows(ro.old_logp, rows), select_rows(ro.advantages, rows), mask,
                                      o.clip_range);
          Tensor vpred = response_values(critic, p, ro.Tr);
          ValueLoss vl =
              value_loss(vpred, select_rows(ro.values, rows), select_rows(ro.returns, rows), mask, o.value_clip);
          Tensor ent = entropy(logits, mask);
          Tensor loss = pl.loss + vl.loss * o.vf_coef;
          if (o.entropy_coef != 0) loss = loss - ent * o.entropy_coef;
          double ptx_mine = 0;
          if (o.ptx_coef > 0) {
            // Every rank the same rows: the ranks' weights w add up to 1.
            const auto [x, y] = ptx_batch(((it - 1) * o.ppo_epochs + epoch) * minibatches + from / o.minibatch);
            Tensor ptx = actor.loss(x, y);
            ptx_mine = ptx.item<double>();
            loss = loss + ptx * o.ptx_coef;
          }
          st = {pl.loss.item<double>(), vl.loss.item<double>(), pl.clip_fraction, vl.clip_fraction,
                pl.approx_kl,           ent.item<double>(),     pl.ratio_mean,    ptx_mine};
          for (double& v : st) v *= w;
          dp.weighted_loss(loss, mine, total).backward();
        }
        dp.sync_gradients();
        dp.sum(st);
        const double pg_v = st[0], vf_v = st[1], ptx_v = st[7];
        if (!std::isfinite(pg_v) || !std::isfinite(vf_v) || !std::isfinite(ptx_v))
          fail(op, "non-finite loss at iteration ", it, " (policy loss ", pg_v, ", value loss ", vf_v, ", ptx loss ",
               ptx_v, "); lower --lr / --critic-lr, --kl-coef or --ptx-coef");
        const double an = o.grad_clip > 0 ? optim::clip_grad_norm_(actor.parameters(), o.grad_clip)
                                          : optim::grad_norm(actor.parameters());
        const double cn = o.grad_clip > 0 ? optim::clip_grad_norm_(critic.parameters(), o.grad_clip)
                                          : optim::grad_norm(critic.parameters());
        if (!std::isfinite(an) || !std::isfinite(cn))
          fail(op, "non-finite gradient norm at iteration ", it, " (actor ", an, ", critic ", cn, "); lower --lr");
        actor_opt.step();
        critic_opt.step();
        s_pg += pg_v, s_vf += vf_v, s_clip += st[2], s_vclip += st[3], s_akl += st[4], s_ent += st[5], s_ratio += st[6];
        s_ptx += ptx_v;
        ++n_mb;
      }
    }
    klc.update(kl_per_reply, B);

    const auto t_end = clock::now();
    auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
    int64_t stopped = 0;
    double len = 0;
    for (const auto& re : ro.response_ids) {
      len += double(re.size());
      stopped += !re.empty() && re.back() == im_end;
    }
    const double nm = double(n_mb);
    double raw_var = 0;
    const double raw_mean = mean_of(ro.raw_reward);
    for (double r : ro.raw_reward) raw_var += (r - raw_mean) * (r - raw_mean);
    nlohmann::json rec = {{"kind", "rollout"},
                          {"step", it},
                          {"reward", raw_mean},
                          {"reward_std", std::sqrt(raw_var / double(B))},
                          {"score", mean_of(ro.score)},
                          {"kl", kl_per_reply},
                          {"kl_coef", kl_coef},
                          {"kl_coef_next", klc.value()},
                          {"entropy", s_ent / nm},
                          {"rollout_entropy", rollout_entropy},
                          {"clip_fraction", s_clip / nm},
                          {"value_clip_fraction", s_vclip / nm},
                          {"approx_kl", s_akl / nm},
                          {"ratio", s_ratio / nm},
                          {"policy_loss", s_pg / nm},
                          {"value_loss", s_vf / nm},
                          {"value_mean", sum(ro.values).item<double>() / std::max(1.0, ntok)},
                          {"return_mean", sum(ro.returns).item<double>() / std::max(1.0, ntok)},
                          {"response_length", len / double(B)},
                          {"stop_rate", double(stopped) / double(B)},
                          {"logprob_gap", logprob_gap},
                          {"generate_s", secs(t0, t_gen)},
                          {"experience_s", secs(t_gen, t_exp)},
                          {"train_s", secs(t_exp, t_end)},
                          {"time_s", secs(t0, t_end)}};
    if (o.ptx_coef > 0) rec["ptx_loss"] = s_ptx / nm;
    if (o.group_size >= 2) rec["varied_groups"] = varied_group_share(ro.response_ids, o.group_size);
    metrics.write(rec);
    if (result.history.empty()) result.reward_first = raw_mean;
    result.history.push_back(rec);
    result.iterations = it;
    result.reward = raw_mean;
    result.kl = kl_per_reply;
    if (bar)
      bar->update(it - start, {{"reward", fmt("%.3f", raw_mean)}, {"kl", fmt("%.3f", kl_per_reply)},
                               {"clip", fmt("%.2f", s_clip / nm)}, {"len", fmt("%.1f", len / double(B))}});
    const bool last = it == o.iterations;
    if (o.eval_every > 0 && it % o.eval_every == 0 && !last) evaluate(it, result.oracle);
    if (stops.end_step(it, checkpoint, &result.checkpoint, o.quiet)) {
      result.interrupted = true;
      result.signal = stops.signal();
      break;
    }
  }
  if (bar) bar->finish();
  if (!result.interrupted) evaluate(result.iterations, result.oracle);

  if (!dp.lead()) return result;
  plot_ppo_curves(o.out_dir, metrics.records());  // the whole log: a resumed run's file holds the earlier iterations too
  return result;
}

}  // namespace ember::chat
