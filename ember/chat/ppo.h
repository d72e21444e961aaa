// RLHF with PPO, InstructGPT-style: the third stage of the ChatGPT recipe,
// behind `ember ppo` (the formulas live in chat/ppo_math.h; docs/ALIGNMENT.md,
// section "PPO", describes the whole algorithm and what is logged).
//
// Four models:
//   actor      a GPT initialised from the SFT checkpoint (--policy); trained
//   reference  the same SFT checkpoint, frozen; the KL penalty's anchor
//   critic     a models::ValueModel initialised from the reward model (default)
//              or from the SFT trunk with a zero head; trained
//   reward     a "reward" checkpoint (ValueModel), frozen; or, instead, a
//              reward_fn supplied by the caller (tests, rule-based rewards), or
//              "oracle": the curriculum's grader (a verifiable reward)
// Each iteration: sample rollout_batch prompts (seeded), generate replies with
// the actor through the KV-cache inference engine (infer::Engine), score
// prompt + reply + <|im_end|> with the reward model (normalised with the reward
// checkpoint's reward_mean / reward_std, clipped), compute the old, reference
// and value estimates in no-grad forward passes, per-token rewards (score at
// the last token, -kl_coef * KL everywhere), GAE advantages and returns, then
// ppo_epochs passes over shuffled minibatches minimising
//   policy_loss + vf_coef * value_loss - entropy_coef * entropy [+ ptx_coef * ptx_loss]
// (ptx_loss: the actor's language-model loss on demonstrations, PPO-ptx) with
// one AdamW per network (the actor at lr, the critic at critic_lr; they share
// no parameters, so one backward feeds both) and gradient clipping per
// network. Everything is seeded: the same options give the same run.
//
// Under `mpirun -np N` (data parallel, docs/ALIGNMENT.md): rank r samples,
// scores and evaluates its share of each iteration's rollouts (each rollout
// with the seed it has in one process), the ranks pool the experience
// (chat/ppo_rollout.h) so advantages and statistics come from the whole batch,
// and each minibatch's update is split over the ranks; rollout_batch and
// minibatch must divide by N. Rank 0 writes the run folder.
//
// Run folder (out_dir): metrics.jsonl (one "rollout" record per iteration,
// "eval" records), reward.svg and kl.svg, tokenizer/, and checkpoints
// ckpt-<iteration>/ of kind "ppo" (the actor, loadable as any GPT checkpoint)
// holding critic/model.safetensors and critic/optimizer.safetensors beside the
// actor's, so --resume continues from `latest`. SIGINT/SIGTERM stop a run
// after the iteration in progress, with a checkpoint (train/finetune.h's
// FinetuneStops).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ember/chat/jsonl.h"
#include "ember/chat/sft.h"

namespace ember::chat {

// A programmatic reward: (prompt record, decoded reply without <|im_end|>,
// generated ids including <|im_end|> when the reply stopped) -> reward.
using RewardFn =
    std::function<double(const PromptRecord& prompt, const std::string& reply, const std::vector<int64_t>& reply_ids)>;

struct PpoOptions {
  std::string policy;       // SFT checkpoint (kind sft, dpo or ppo) or run folder: actor and reference
  std::string reward;       // reward checkpoint (kind "reward"), or "oracle": the curriculum's grader
                            // (chat/curriculum.h) scores each reply in [0, 1] from the prompt's
                            // meta["grade"]; not needed when reward_fn is set
  std::string critic_init = "reward";  // "reward": the reward model's weights; "sft": the policy's trunk, zero head
  std::string prompts;      // prompts JSONL (read_prompts): the rollout prompts
  std::string eval_prompts_file;  // held-out prompts with grading keys (oracle); empty: no evaluation
  std::string out_dir;
  int64_t iterations = 100;
  int64_t rollout_batch = 32;   // replies per iteration
  // Replies sampled per prompt: each iteration draws rollout_batch / group_size
  // prompts and samples each group_size times (own seeds), which the "group"
  // baseline compares with one another. rollout_batch must divide by it.
  int64_t group_size = 1;
  int64_t max_new_tokens = 48;
  double temperature = 1.0;     // rollout sampling; log-probs use logits / temperature as TRL
  int64_t top_k = 0;            // 0: off
  double top_p = 1.0;           // 1: off
  int64_t ppo_epochs = 4;
  int64_t minibatch = 8;        // replies per optimizer step
  double lr = 1e-5;             // actor
  double critic_lr = 1e-5;
  double kl_coef = 0.05;        // beta, the initial value when adaptive
  double kl_target = 0;         // > 0: adaptive KL controller aiming at this per-reply KL; 0: fixed beta
  double kl_horizon = 10000;
  std::string kl_estimator = "k1";  // "k1" or "k3" (ppo_math.h); the penalty and the logged KL
  double clip_range = 0.2;
  double value_clip = 0.2;      // 0: no value clipping
  double vf_coef = 0.1;
  double gamma = 1.0;
  double lam = 0.95;
  double reward_clip = 10.0;    // normalised scores are clipped to [-reward_clip, reward_clip]; 0: off
  // What a reward is measured from before dividing by the reward model's
  // reward_std: "mean", the checkpoint's reward_mean (InstructGPT: the
  // demonstrations score 0 on average); or "reference", the reward of the
  // prompt's own reference reply (meta["reference"], scored once at the start),
  // so each prompt's bar is its ideal answer and prompts whose ideal replies
  // score high (e.g. "I don't know anyone called ...") do not teach every
  // prompt their words; or "group", the mean reward of the other replies to
  // the same prompt in this batch (leave-one-out, as RLOO; needs group_size
  // >= 2), so a reply is scored only against the policy's own alternatives:
  // the within-prompt comparisons a pairwise-trained reward model was fitted
  // on, free of its per-prompt offsets.
  std::string reward_baseline = "mean";
  bool whiten_advantages = true;
  double entropy_coef = 0.0;
  // PPO-ptx (InstructGPT): the actor's loss adds ptx_coef times the language-model
  // loss (mean over trained tokens) of ptx_rows packed rows of demonstrations
  // (conversations JSONL, e.g. the SFT training file; assistant tokens only), the
  // next rows of one seeded order per optimizer step (the order repeats once
  // they run out; all of them each step when there are fewer than ptx_rows), so
  // that optimising the reward does not unlearn what SFT taught. 0: off (no
  // data read; ptx_data is then ignored).
  std::string ptx_data;
  double ptx_coef = 0.0;
  int64_t ptx_rows = 2;
  double grad_clip = 1.0;       // per network; 0: off
  int64_t eval_every = 0;       // iterations between oracle evaluations (0: before and after only)
  int64_t eval_count = 64;      // held-out prompts per evaluation (0: all)
  int64_t eval_max_new_tokens = 48;
  int64_t checkpoint_every = 0; // 0: only at the end
  int keep_checkpoints = 2;
  bool resume = false;          // continue from out_dir/latest
  uint64_t seed = 1337;
  int threads = 0;              // OpenMP threads (0: leave as is)
  bool quiet = false;
  RewardFn reward_fn;           // when set, used instead of --reward (which is then ignored)
  nlohmann::json to_json() const;  // the options (not reward_fn), for trainer.json
};

struct PpoResult {
  int64_t iterations = 0;              // iterations completed (including resumed ones)
  bool interrupted = false;            // stopped by SIGINT/SIGTERM after an iteration, with a checkpoint
  int signal = 0;                      // the signal that stopped it, if any
  std::vector<nlohmann::json> history; // the "rollout" records of this process's iterations, in order
  double reward_first = 0;             // raw mean reward of the first iteration run here
  double reward = 0;                   // raw mean reward of the last iteration
  double kl = 0;                       // mean per-reply KL of the last iteration
  OracleResult oracle_before, oracle;  // empty (prompts == 0) without eval_prompts_file
  std::string checkpoint;              // the last checkpoint folder written
};

// Runs PPO; throws ember::Error with a one-line message for bad options, a
// checkpoint of the wrong kind, a reward model with another tokenizer, or a
// non-finite loss.
PpoResult ppo(const PpoOptions& options);
// Draws <out_dir>/reward.svg and kl.svg from a run's metrics records (the
// "rollout" ones): at the end of a run, and again by the speedrun when a hard
// kill came between the last checkpoint and the pictures.
void plot_ppo_curves(const std::string& out_dir, const std::vector<nlohmann::json>& records);

}  // namespace ember::chat
