// `ember dpo`: Direct Preference Optimization of an SFT checkpoint (chat/dpo.h).
// Exits 130/143 when SIGINT/SIGTERM stopped it (after writing a checkpoint;
// continue with --resume).
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "ember/chat/dpo.h"
#include "ember/cli/commands.h"
#include "ember/dist/communicator.h"
#include "ember/cli/finetune_options.h"

namespace ember::cli {

void register_dpo(CLI::App& app) {
  auto o = std::make_shared<chat::DpoOptions>();
  auto* cmd = app.add_subcommand(
      "dpo",
      "Direct Preference Optimization: fine-tune an SFT policy on ranked preferences against a frozen reference "
      "(no reward model, no RL); writes a checkpoint of kind \"dpo\" (a GPT: serve, eval and ppo load it)");
  cmd->add_option("--init", o->init, "SFT checkpoint that starts the policy (folder with trainer.json, or a run "
                                     "folder)")->required();
  cmd->add_option("--ref", o->ref, "Frozen reference checkpoint (default: --init); must share its tokenizer and "
                                   "config");
  cmd->add_option("--data", o->data, "Training preferences (JSON Lines: {\"prompt\", \"chosen\", \"rejected\"} or "
                                     "{\"prompt\", \"responses\": [best, ..., worst]}; every pair of a ranked list "
                                     "is used)")->required();
  cmd->add_option("--val", o->val_data, "Held-out preferences: loss, preference accuracy, implicit-reward margin");
  cmd->add_option("--prompts", o->prompts, "Held-out prompts with grading keys (oracle evaluation before and after)");
  cmd->add_option("--out", o->out_dir, "Run folder: checkpoints, metrics.jsonl, dpo.svg")->required();
  cmd->add_option("--beta", o->beta, "KL strength: implicit reward = beta * (log pi - log pi_ref)")
      ->capture_default_str();
  cmd->add_option("--steps", o->steps, "Optimizer steps")->capture_default_str();
  cmd->add_option("--batch", o->batch_size, "Preference records (ranked lists) per step, over all ranks under mpirun (must divide by the rank count)")->capture_default_str();
  cmd->add_option("--max-len", o->max_len, "Tokens per prompt + response; longer prompts lose tokens from the left "
                                           "(default: block_size)");
  add_finetune_options(cmd, *o);
  cmd->add_option("--eval-every", o->eval_every, "Steps between evaluations (0: step 0 and the end only)")
      ->capture_default_str();
  cmd->add_option("--eval-prompts", o->eval_prompts, "Held-out prompts per oracle evaluation (0: all)")
      ->capture_default_str();
  cmd->add_option("--max-new-tokens", o->max_new_tokens, "Reply length limit in the oracle evaluation")
      ->capture_default_str();
  cmd->add_option("--keep", o->keep_checkpoints, "Checkpoints kept in the run folder (0: all)")->capture_default_str();
  add_resume_options(cmd, *o);
  cmd->add_flag("--quiet", o->quiet, "Print only the final line");
  cmd->callback([o] {
    const chat::DpoResult r = chat::dpo(*o);
    if (r.signal != 0) std::exit(128 + r.signal);
    if (dist::world()->rank() != 0) return;  // under mpirun, rank 0 reports
    char buf[160];
    std::cout << (r.interrupted ? "stopped" : "done") << ": step " << r.step << ", train loss " << r.train_loss;
    if (r.val_before.lists > 0 && r.val.lists > 0) {
      std::snprintf(buf, sizeof buf, ", held-out preference accuracy %.1f%% -> %.1f%%, margin %.3f -> %.3f",
                    100 * r.val_before.accuracy, 100 * r.val.accuracy, r.val_before.margin, r.val.margin);
      std::cout << buf;
    }
    if (r.oracle_before.prompts > 0 && r.oracle.prompts > 0) {
      std::snprintf(buf, sizeof buf, ", oracle accuracy %.1f%% -> %.1f%%", 100 * r.oracle_before.accuracy,
                    100 * r.oracle.accuracy);
      std::cout << buf;
    }
    std::cout << "; checkpoint " << r.checkpoint << "\n";
  });
}

}  // namespace ember::cli
