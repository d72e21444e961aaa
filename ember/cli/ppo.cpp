// `ember ppo`: RLHF of an SFT checkpoint against a reward model with PPO (chat/ppo.h).
#include <cstdio>
#include <iostream>

#include "ember/chat/ppo.h"
#include "ember/cli/commands.h"
#include "ember/dist/communicator.h"

namespace ember::cli {

void register_ppo(CLI::App& app) {
  auto o = std::make_shared<chat::PpoOptions>();
  auto* cmd = app.add_subcommand(
      "ppo", "RLHF with PPO: train an SFT policy against a reward model (KL-penalised, InstructGPT-style)");
  cmd->add_option("--policy", o->policy, "SFT checkpoint (folder with trainer.json, or a run folder): actor and "
                                         "frozen reference")->required();
  cmd->add_option("--reward", o->reward, "Reward-model checkpoint (kind \"reward\", same tokenizer), or oracle: the curriculum's grader scores "
                  "each reply 0-1 from the prompt's \"grade\" key (no reward model; the critic starts from the SFT trunk)")->required();
  cmd->add_option("--prompts", o->prompts, "Rollout prompts (JSON Lines, {\"prompt\": ...})")->required();
  cmd->add_option("--out", o->out_dir, "Run folder: checkpoints, metrics.jsonl, reward.svg, kl.svg")->required();
  cmd->add_option("--eval-prompts", o->eval_prompts_file,
                  "Held-out prompts with grading keys (oracle accuracy before and after)");
  cmd->add_option("--critic-init", o->critic_init, "Critic weights: reward (the reward model) or sft (the policy's "
                                                   "trunk, zero head)")->capture_default_str();
  cmd->add_option("--iterations", o->iterations, "PPO iterations (rollout + update)")->capture_default_str();
  cmd->add_option("--rollout-batch", o->rollout_batch, "Replies per iteration, over all ranks under mpirun (must divide by the rank count)")->capture_default_str();
  cmd->add_option("--group-size", o->group_size, "Replies sampled per prompt in each iteration (--rollout-batch / this "
                                                 "prompts; must divide --rollout-batch)")->capture_default_str();
  cmd->add_option("--max-new-tokens", o->max_new_tokens, "Reply length limit in rollouts")->capture_default_str();
  cmd->add_option("--temperature", o->temperature, "Rollout sampling temperature (> 0)")->capture_default_str();
  cmd->add_option("--top-k", o->top_k, "Rollout top-k (0: off)")->capture_default_str();
  cmd->add_option("--top-p", o->top_p, "Rollout top-p (1: off)")->capture_default_str();
  cmd->add_option("--ppo-epochs", o->ppo_epochs, "Passes over each rollout batch")->capture_default_str();
  cmd->add_option("--minibatch", o->minibatch, "Replies per optimizer step, over all ranks under mpirun (must divide by the rank count)")->capture_default_str();
  cmd->add_option("--lr", o->lr, "Actor learning rate (AdamW)")->capture_default_str();
  cmd->add_option("--critic-lr", o->critic_lr, "Critic learning rate (AdamW)")->capture_default_str();
  cmd->add_option("--kl-coef", o->kl_coef, "KL penalty coefficient beta (initial value when adaptive)")
      ->capture_default_str();
  cmd->add_option("--kl-target", o->kl_target, "Target KL per reply for the adaptive controller (0: fixed beta)")
      ->capture_default_str();
  cmd->add_option("--kl-horizon", o->kl_horizon, "Adaptive controller horizon (replies)")->capture_default_str();
  cmd->add_option("--kl-estimator", o->kl_estimator, "Per-token KL estimate: k1 (logp - logp_ref) or k3")
      ->capture_default_str();
  cmd->add_option("--clip-range", o->clip_range, "PPO ratio clip epsilon")->capture_default_str();
  cmd->add_option("--value-clip", o->value_clip, "Value clip range around the old values (0: off)")
      ->capture_default_str();
  cmd->add_option("--vf-coef", o->vf_coef, "Value loss weight")->capture_default_str();
  cmd->add_option("--gamma", o->gamma, "Discount")->capture_default_str();
  cmd->add_option("--lam", o->lam, "GAE lambda")->capture_default_str();
  cmd->add_option("--reward-clip", o->reward_clip, "Clip normalised rewards to +-this (0: off)")->capture_default_str();
  cmd->add_option("--reward-baseline", o->reward_baseline,
                  "What a reward is measured from before dividing by the reward model's reward_std: mean (its "
                  "reward_mean), reference (the reward of each prompt's \"reference\" reply) or group (the mean reward of the "
                  "other replies to the same prompt; needs --group-size 2 or more)")
      ->check(CLI::IsMember({"mean", "reference", "group"}))
      ->capture_default_str();
  auto no_whiten = std::make_shared<bool>(false);
  cmd->add_flag("--no-whiten", *no_whiten, "Use the raw GAE advantages (default: whitened over the batch)");
  cmd->add_option("--entropy-coef", o->entropy_coef, "Entropy bonus weight")->capture_default_str();
  cmd->add_option("--ptx-coef", o->ptx_coef,
                  "PPO-ptx (InstructGPT): weight of the demonstrations' language-model loss added to the actor's "
                  "(0: off; needs --ptx-data)")
      ->capture_default_str();
  cmd->add_option("--ptx-data", o->ptx_data,
                  "Demonstrations for --ptx-coef: conversations JSON Lines (e.g. the SFT training file), assistant "
                  "tokens trained");
  cmd->add_option("--ptx-rows", o->ptx_rows, "Packed rows of demonstrations per optimizer step (--ptx-coef)")
      ->capture_default_str();
  cmd->add_option("--grad-clip", o->grad_clip, "Clip each network's gradient norm (0: off)")->capture_default_str();
  cmd->add_option("--eval-every", o->eval_every, "Iterations between oracle evaluations (0: before and after only)")
      ->capture_default_str();
  cmd->add_option("--eval-count", o->eval_count, "Held-out prompts per evaluation (0: all)")->capture_default_str();
  cmd->add_option("--eval-max-new-tokens", o->eval_max_new_tokens, "Reply length limit in evaluation")
      ->capture_default_str();
  cmd->add_option("--checkpoint-every", o->checkpoint_every, "Iterations between checkpoints (0: at the end)")
      ->capture_default_str();
  cmd->add_flag("--resume", o->resume, "Continue from the run folder's latest checkpoint; SIGINT/SIGTERM stop a run after the "
                "iteration in progress with a checkpoint (exit 130/143)");
  cmd->add_option("--seed", o->seed, "Random seed (same seed, same run)")->capture_default_str();
  cmd->add_option("--threads", o->threads, "OpenMP threads (default: all cores)");
  cmd->add_flag("--quiet", o->quiet, "No progress output");
  cmd->callback([o, no_whiten] {
    o->whiten_advantages = !*no_whiten;
    const chat::PpoResult r = chat::ppo(*o);
    if (r.signal != 0) std::exit(128 + r.signal);
    if (dist::world()->rank() != 0) return;  // under mpirun, rank 0 reports
    char buf[256];
    std::snprintf(buf, sizeof buf, "done: %lld iterations, reward %.4f -> %.4f, KL %.4f", (long long)r.iterations,
                  r.reward_first, r.reward, r.kl);
    std::cout << buf;
    if (r.oracle.prompts > 0) {
      std::snprintf(buf, sizeof buf, ", oracle accuracy %.3f -> %.3f, score %.3f -> %.3f", r.oracle_before.accuracy,
                    r.oracle.accuracy, r.oracle_before.score, r.oracle.score);
      std::cout << buf;
    }
    std::cout << "; checkpoint " << r.checkpoint << "\n";
  });
}

}  // namespace ember::cli
