// `ember pretrain`: trains a GPT on prepared token data (see train/pretrain.h).
// Exit codes: 0 done, 1 error, 130/143 stopped by SIGINT/SIGTERM after writing
// a checkpoint (resume with --resume).
#include <cstdlib>
#include <iostream>

#include "ember/cli/commands.h"
#include "ember/core/error.h"
#include "ember/models/gpt_config.h"
#include "ember/train/pretrain.h"

namespace ember::cli {

void register_pretrain(CLI::App& app) {
  auto o = std::make_shared<train::PretrainOptions>();
  auto* cmd = app.add_subcommand("pretrain", "Pretrain a GPT on token shards made by `ember data prepare`");
  std::string presets;
  for (const auto& p : models::GPTConfig::preset_names()) presets += (presets.empty() ? "" : ", ") + p;
  cmd->add_option("--preset", o->preset, "Model preset (" + presets + ")")->capture_default_str();
  cmd->add_option("--config", o->config_json, "GPTConfig JSON file overriding the preset");
  cmd->add_option("--data", o->data_dir, "Data folder from `ember data prepare`")->required();
  cmd->add_option("--tokenizer", o->tokenizer_dir, "Tokenizer folder for samples (default: <data>/tokenizer)");
  cmd->add_option("--out", o->out_dir, "Run folder: checkpoints, metrics.jsonl, loss.svg")->required();
  cmd->add_option("--steps", o->steps, "Optimizer steps in the whole run")->capture_default_str()->check(CLI::Range(int64_t(1), int64_t(1) << 40));
  cmd->add_option("--batch", o->batch_size,
                  "Sequences per micro-batch on each rank (default: the preset's; on --resume, what keeps the "
                  "checkpoint's global batch of ranks x batch x grad-accum sequences on this number of ranks)");
  cmd->add_option("--seq-len", o->seq_len, "Tokens per sequence (default: block_size)");
  cmd->add_option("--grad-accum", o->grad_accum,
                  "Micro-batches per step (default 1; on --resume the checkpoint's, or 1 under several ranks without --zero)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--lr", o->lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--min-lr-ratio", o->min_lr_ratio, "Cosine floor as a fraction of --lr")->capture_default_str();
  cmd->add_option("--warmup", o->warmup_steps, "Linear warm-up steps (-1: 5% of --steps)")->capture_default_str();
  cmd->add_option("--weight-decay", o->weight_decay, "AdamW weight decay (matrices only)")->capture_default_str();
  cmd->add_option("--grad-clip", o->grad_clip, "Clip the gradient norm to this (0: off)")->capture_default_str();
  cmd->add_option("--eval-every", o->eval_every, "Steps between evaluations (0: only at the end)")->capture_default_str();
  cmd->add_option("--eval-batches", o->eval_batches, "Validation batches (of the global batch's size) per evaluation")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--sample-tokens", o->sample_tokens, "Tokens sampled at each evaluation (0: none)")->capture_default_str();
  cmd->add_option("--checkpoint-every", o->checkpoint_every, "Steps between checkpoints (0: only at the end)")->capture_default_str();
  cmd->add_option("--keep", o->keep_checkpoints, "Checkpoints kept (0: all)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Random seed (same seed, same run)")->capture_default_str();
  cmd->add_option("--threads", o->threads, "OpenMP threads (default: all cores)");
  cmd->add_option("--device", o->device,
                  "cpu, or cuda[:N] for a GPU (one process, eager; checkpoints are device-neutral, so --resume may switch)")
      ->capture_default_str();
  cmd->add_option("--peak-gflops", o->peak_gflops, "GEMM peak for MFU (default: measured at start)");
  cmd->add_flag("--resume", o->resume,
                "Continue the run in --out from its latest checkpoint (model config and hyper-parameters come from "
                "the checkpoint; only --steps may change, and --batch/--grad-accum to keep the global batch on another number "
                "of ranks)");
  cmd->add_flag("--compile", o->compile,
                "Run each step (forward and backward of every micro-batch, clipping, AdamW) as one compiled graph "
                "(ember::compile): same losses, less memory; one process, dropout 0");
  cmd->add_flag("--zero", o->zero,
                "ZeRO-1: shard AdamW's moments over the ranks (under mpirun; checkpoints hold the whole state, so "
                "a run may switch --zero on or off when it resumes)");
  // An optional value: the bare flag (stored as -1) keeps its first meaning, all ranks in one group.
  cmd->add_option("--tensor-parallel", o->tensor_parallel,
                  "Off unless given. Under mpirun: all ranks (the flag alone, -1), or groups of N consecutive ranks, train one model "
                  "split across them (attention heads and MLP, Megatron style) on the same rows; several groups are "
                  "data parallel to each other, each with its own --batch rows. n_head, n_kv_head and the MLP width "
                  "must divide by the group size. Checkpoints are ordinary (single-process) ones. Not with --zero or "
                  "--compile")
      ->expected(0, 1)
      ->default_str("-1")
      ->check([](const std::string& v) { return v == "0" ? std::string("a group size must be positive, got 0") : ""; });
  cmd->add_option("--stop-after", o->stop_after, "Stop after this step with a checkpoint, as if interrupted (testing)");
  cmd->callback([o] {
    train::PretrainResult r = train::pretrain(*o);
    if (r.signal != 0) std::exit(128 + r.signal);
    std::cout << (r.interrupted ? "stopped" : "done") << ": step " << r.step << ", train loss " << r.train_loss
              << ", val loss " << r.val_loss << ", val bpb " << r.val_bpb << "; checkpoint " << r.checkpoint << "\n";
  });
}

}  // namespace ember::cli
