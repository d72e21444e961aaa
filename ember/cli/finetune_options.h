// The command-line options every fine-tuning stage shares (`ember sft`,
// `reward`, `dpo`): the optimizer and schedule of train/finetune.h, the seed
// and the thread count, checkpoints and --resume, with one wording and one set
// of defaults' display.
// O is the stage's options struct (SftOptions, RewardOptions, DpoOptions).
#pragma once

#include <CLI/CLI.hpp>

namespace ember::cli {

template <typename O>
void add_finetune_options(CLI::App* cmd, O& o) {
  cmd->add_option("--lr", o.lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--min-lr-ratio", o.min_lr_ratio, "Cosine floor as a fraction of --lr")->capture_default_str();
  cmd->add_option("--warmup", o.warmup_steps, "Warm-up steps (-1: 5% of --steps)")->capture_default_str();
  cmd->add_option("--weight-decay", o.weight_decay, "AdamW weight decay (matrices only)")->capture_default_str();
  cmd->add_option("--grad-clip", o.grad_clip, "Clip the gradient norm (0: off)")->capture_default_str();
  cmd->add_option("--seed", o.seed, "Random seed (data order)")->capture_default_str();
  cmd->add_option("--threads", o.threads, "OpenMP threads (default: all cores)");
}

// Checkpoints, stops and --resume (train/finetune.h). The command exits with
// 128 + the signal (130 SIGINT, 143 SIGTERM) when a signal stopped it, after
// writing the checkpoint.
template <typename O>
void add_resume_options(CLI::App* cmd, O& o) {
  cmd->add_option("--checkpoint-every", o.checkpoint_every, "Steps between checkpoints (0: at the end)")
      ->capture_default_str();
  cmd->add_flag("--resume", o.resume,
                "Continue the run in --out from its latest checkpoint (model, optimizer, RNG and data position; "
                "hyper-parameters come from the checkpoint, only --steps may change); SIGINT/SIGTERM stop a run "
                "at a step boundary with a checkpoint (exit 130/143)");
  cmd->add_option("--stop-after", o.stop_after, "Stop after this step with a checkpoint, as if interrupted (testing)");
}

}  // namespace ember::cli
