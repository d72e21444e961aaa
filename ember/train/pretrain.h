// GPT pretraining: the training loop behind `ember pretrain`.
//
// AdamW (weight decay on matrices only) with linear warm-up and cosine decay,
// gradient accumulation and clipping; evaluation (validation loss, bits per
// byte, sampled continuations) every eval_every steps; metrics as JSON Lines
// and a loss curve (SVG) in the run folder; atomic checkpoints every
// checkpoint_every steps and on SIGINT/SIGTERM. Resuming restores the model,
// the optimizer, the schedule position, the RNG and the data position, so the
// losses after a resume equal those of an uninterrupted run; under mpirun the
// checkpoint may be resumed on another number of ranks (same global batch),
// data or tensor parallel.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "ember/models/gpt_config.h"

namespace ember::train {

struct PretrainOptions {
  // What to train.
  std::string preset = "tiny";
  std::string config_json;  // optional: a GPTConfig JSON file overriding the preset
  std::string data_dir;     // prepared by `ember data prepare`
  std::string tokenizer_dir;  // for samples and to travel with checkpoints; default: <data_dir>/tokenizer if present
  std::string out_dir;        // run folder: checkpoints, metrics.jsonl, loss.svg
  // How long and how.
  int64_t steps = 1000;
  // Sequences per micro-batch on each rank; 0 = the preset's (on --resume:
  // what keeps the checkpoint's global batch on this number of ranks).
  int64_t batch_size = 0;
  int64_t seq_len = 0;      // tokens per sequence; 0 = block_size
  // Micro-batches per optimizer step; 0 = 1 (on --resume: the checkpoint's,
  // or 1 under several ranks). A step trains ranks x batch x grad_accum
  // sequences (the global batch), which a resume keeps whatever the rank count.
  int64_t grad_accum = 0;
  double lr = 1e-3;
  double min_lr_ratio = 0.1;  // cosine floor, as a fraction of lr
  int64_t warmup_steps = -1;  // -1: 5% of steps
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double grad_clip = 1.0;  // 0 = off
  // Reporting and safety.
  int64_t eval_every = 100;  // 0 = only at the end
  int64_t eval_batches = 8;  // validation batches of the global batch's size
  int64_t sample_tokens = 48;  // per sample at each eval; 0 = none
  int64_t checkpoint_every = 200;  // 0 = only at the end and on signals
  int keep_checkpoints = 3;
  uint64_t seed = 1337;
  int threads = 0;  // 0 = OpenMP's default
  // Where the model trains: "cpu" or "cuda[:N]" (one process, eager). Not a
  // hyper-parameter: checkpoints are device-neutral, so a resumed run may switch.
  std::string device = "cpu";
  bool resume = false;
  // The whole step (every micro-batch's forward and backward, clipping, AdamW)
  // as one compiled graph (ember::compile); same losses as eager to rounding.
  // One process only, dropout 0. Not a hyper-parameter: a resumed run may switch.
  bool compile = false;
  // ZeRO-1 (dist::ZeroAdamW): AdamW's moments sharded over the ranks. The
  // checkpoint holds the whole state in optim::AdamW's layout, so a run may
  // switch on or off across --resume, on any number of ranks.
  bool zero = false;
  // Tensor parallelism (Megatron style, models::make_tensor_parallel): groups
  // of this many consecutive ranks (-1: all ranks form one group; 0: off) each
  // train one model, attention heads and MLP split across the group, on the
  // same rows; the groups are data parallel to each other (2-D parallelism).
  // Checkpoints hold the single-process layout, so a run may switch it on or
  // off, or change the layout, across --resume. Not with --zero or --compile.
  int tensor_parallel = 0;
  bool quiet = false;       // no progress bar or per-eval lines (tests)
  double peak_gflops = 0;   // MFU denominator; 0 = measure
  int64_t stop_after = 0;   // testing aid: stop (as if interrupted, with a checkpoint) after this step; 0 = off

  nlohmann::json to_json() const;
  void update_from_json(const nlohmann::json& j);  // the hyper-parameters a checkpoint records
};

struct PretrainResult {
  int64_t step = 0;  // last completed step
  double train_loss = 0, val_loss = 0, val_bpb = 0;
  double tokens_per_s = 0, mfu = 0;
  std::string checkpoint;  // last checkpoint written
  int64_t optimizer_state_bytes = 0;  // AdamW's moments held by this rank (1/N of them with ZeRO-1)
  bool interrupted = false;  // stopped by SIGINT/SIGTERM (or stop_after)
  int signal = 0;            // the signal that stopped it, if any
};

PretrainResult pretrain(const PretrainOptions& options);

}  // namespace ember::train
