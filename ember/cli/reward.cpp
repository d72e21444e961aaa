// `ember reward`: train the reward model on ranked preferences (chat/reward.h).
// Exits 130/143 when SIGINT/SIGTERM stopped it (after writing a checkpoint,
// statistics included; continue with --resume).
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "ember/chat/reward.h"
#include "ember/cli/commands.h"
#include "ember/dist/communicator.h"
#include "ember/cli/finetune_options.h"

namespace ember::cli {

void register_reward(CLI::App& app) {
  auto o = std::make_shared<chat::RewardOptions>();
  auto* cmd = app.add_subcommand(
      "reward",
      "Train a reward model (GPT trunk + scalar head) on ranked preferences with the Bradley-Terry loss over all "
      "pairs of each ranked list; writes a checkpoint of kind \"reward\" that `ember ppo` uses");
  cmd->add_option("--init", o->init, "SFT (or pretrained) checkpoint whose trunk starts the model "
                                     "(folder with trainer.json, or a run folder)")->required();
  cmd->add_option("--data", o->data, "Training preferences (JSON Lines: {\"prompt\", \"chosen\", \"rejected\"} or "
                                     "{\"prompt\", \"responses\": [best, ..., worst]})")->required();
  cmd->add_option("--val", o->val_data, "Held-out preferences: pairwise accuracy, loss, reward mean/std");
  cmd->add_option("--out", o->out_dir, "Run folder: checkpoints, metrics.jsonl, reward.svg")->required();
  cmd->add_option("--steps", o->steps, "Optimizer steps")->capture_default_str();
  cmd->add_option("--batch", o->batch_size, "Preference records (ranked lists) per step, over all ranks under mpirun (must divide by the rank count)")->capture_default_str();
  cmd->add_option("--max-len", o->max_len, "Tokens per prompt + response; longer prompts lose tokens from the left "
                                           "(default: block_size)");
  add_finetune_options(cmd, *o);
  cmd->add_option("--likelihood", o->likelihood,
                  "init: the reward adds the lowest log-probability the --init model (frozen, carried in the "
                  "checkpoint) gives a reply token, with a weight fitted on training lists; none: the scalar head alone")
      ->check(CLI::IsMember({"init", "none"}))
      ->capture_default_str();
  cmd->add_option("--likelihood-fit-lists", o->likelihood_fit_lists,
                  "Training lists (the first ones) the likelihood weight is fitted on")
      ->capture_default_str();
  cmd->add_option("--eval-every", o->eval_every, "Steps between evaluations (0: step 0 and the end only)")
      ->capture_default_str();
  cmd->add_option("--keep", o->keep_checkpoints, "Checkpoints kept in the run folder (0: all)")->capture_default_str();
  add_resume_options(cmd, *o);
  cmd->add_flag("--quiet", o->quiet, "Print only the final line");
  cmd->callback([o] {
    const chat::RewardResult r = chat::train_reward_model(*o);
    if (r.signal != 0) std::exit(128 + r.signal);
    if (dist::world()->rank() != 0) return;  // under mpirun, rank 0 reports
    std::cout << (r.interrupted ? "stopped" : "done") << ": step " << r.step << ", train loss " << r.train_loss;
    if (r.val_before.lists > 0 && r.val.lists > 0) {
      char buf[96];
      std::snprintf(buf, sizeof buf, ", held-out pairwise accuracy %.1f%% -> %.1f%% (%lld pairs)",
                    100 * r.val_before.accuracy, 100 * r.val.accuracy, static_cast<long long>(r.val.pairs));
      std::cout << buf;
      if (r.val.with_likelihood) {
        std::snprintf(buf, sizeof buf, " (head alone %.1f%%, likelihood weight %.3g)", 100 * r.val.head_accuracy,
                      r.val.likelihood_weight);
        std::cout << buf;
      }
    }
    std::cout << ", reward mean " << r.reward_mean << " std " << r.reward_std << "; checkpoint " << r.checkpoint
              << "\n";
  });
}

}  // namespace ember::cli
