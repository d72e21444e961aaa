// What every fine-tuning stage (SFT, the reward model, DPO) shares, so they
// cannot drift apart:
// - the optimizer and learning-rate schedule: AdamW with betas (0.9, 0.95) as
//   GPT training uses, weight decay on matrices only
//   (optim::make_param_groups), linear warm-up then cosine decay to
//   min_lr_ratio x lr;
// - stopping and resuming: checkpoints every checkpoint_every steps and at the
//   end, SIGINT/SIGTERM and stop_after stop a run at a step boundary with a
//   checkpoint, and --resume continues from the run folder's latest one with
//   the checkpoint's hyper-parameters (only steps may change). The stage
//   restores model, optimizer and generator with restore_checkpoint
//   (train/checkpoint.h) and its own data position from trainer.json "data";
// - data parallel under mpirun (train/data_parallel_run.h): the checks every
//   rank makes first (check_data_parallel) and stopping and checkpointing
//   together (FinetuneStops).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "ember/core/error.h"
#include "ember/core/random.h"
#include "ember/nn/module.h"
#include "ember/optim/adamw.h"
#include "ember/optim/schedule.h"
#include "ember/train/data_parallel_run.h"
#include "ember/train/stop_signals.h"

namespace ember::train {

std::unique_ptr<optim::AdamW> finetune_adamw(const nn::Module& model, double lr, double weight_decay);

// warmup_steps < 0 means 5% of the steps (at least one).
optim::LRLambda finetune_schedule(int64_t warmup_steps, int64_t steps, double min_lr_ratio);

// After backward: clips the gradient norm to grad_clip (> 0) or only measures
// it (0), and stops the run with one line naming `op`, the step, the loss and
// the norm when either is not finite ("...; " + hint, e.g. "lower --lr").
// Returns the norm before clipping.
double checked_grad_norm(const std::vector<Tensor>& params, double grad_clip, double loss, int64_t step,
                         const std::string& op, const std::string& hint = "lower --lr");

// The checkpoint --resume continues from: the latest in run_dir, which must be
// of `kind` and resumable (its trainer.json holds a data position). Otherwise
// a one-line error naming `op` and the folder.
struct ResumePoint {
  std::string dir;          // the checkpoint folder; empty when not resuming
  nlohmann::json trainer;   // its trainer.json
  // Restores model, optimizer and generator (restore_checkpoint) and returns
  // the step to continue after; 0 and nothing restored when not resuming.
  int64_t restore(nn::Module& model, optim::Optimizer& optimizer, Generator& gen) const;
  // For train::MetricsLog: the step its file is cut back to, -1 (start afresh) when not resuming.
  int64_t metrics_keep_step() const { return dir.empty() ? -1 : trainer.at("step").get<int64_t>(); }
};
ResumePoint find_resume_point(const std::string& run_dir, const std::string& kind, const std::string& op);

// With o.resume: finds the resume point in o.out_dir and takes the run's
// hyper-parameters from it (o.update_from_json of its "options"), keeping
// o.steps, so a run can be extended (a checkpoint at or past o.steps is an
// error). O is SftOptions, RewardOptions, DpoOptions.
template <typename O>
ResumePoint resume_options(O& o, const std::string& kind) {
  if (!o.resume) return {};
  if (o.out_dir.empty()) fail(kind, "--resume needs --out (the run folder to continue)");
  ResumePoint point = find_resume_point(o.out_dir, kind, kind);
  const int64_t steps = o.steps, at = point.trainer.at("step").get<int64_t>();
  if (at >= steps)
    fail(kind, "--resume: ", point.dir, " is at step ", at, " of --steps ", steps, ": nothing left to train (raise --steps)");
  o.update_from_json(point.trainer.at("options"));
  o.steps = steps;
  return point;
}

// What a training stage checks first under data parallel (`dp`, see
// data_parallel_run.h), on every rank alike: each global batch size (with the
// flag it comes from) divides by the rank count, and every rank runs with the
// same options, run folder and stops. Ranks other than 0 turn quiet.
// `batches_from_checkpoint`: a resumed run took the sizes from its
// trainer.json (the error then names the checkpoint, not the flag). O as
// above; its stop_after, when it has one, must agree too.
template <typename O>
void check_data_parallel(const DataParallelRun& dp, O& o,
                         std::initializer_list<std::pair<int64_t, const char*>> batches,
                         bool batches_from_checkpoint) {
  if (!dp.distributed()) return;
  if (!dp.lead()) o.quiet = true;
  for (const auto& [n, flag] : batches) dp.require_divisible(n, flag, batches_from_checkpoint);
  nlohmann::json same = o.to_json();
  same["out"] = o.out_dir, same["resume"] = o.resume;
  same["checkpoint_every"] = o.checkpoint_every, same["keep_checkpoints"] = o.keep_checkpoints;
  if constexpr (requires { o.stop_after; }) same["stop_after"] = o.stop_after;
  dp.require_same(same, "options");
}

// Sets `field` from j[key] when j has it (an options struct's update_from_json).
template <typename T>
void take_json(const nlohmann::json& j, const char* key, T& field) {
  if (j.contains(key)) field = j.at(key).get<T>();
}

// The trainer.json a fine-tuning checkpoint starts from: kind, step, the model
// config, the stage's options (what --resume takes back), the absolute --init
// folder, the generator's position ("rng") and the data position ("data").
nlohmann::json finetune_trainer_json(const std::string& kind, int64_t step, const nlohmann::json& config,
                                     const nlohmann::json& options, const std::string& init_dir, const Generator& gen,
                                     const nlohmann::json& data);

// Where a fine-tuning loop checkpoints and stops. While it lives, SIGINT and
// SIGTERM are requests to stop at the next step boundary (StopSignals).
// Under data parallel (`dp`) the ranks stop together (a signal reaches them at
// different moments), check that their parameters agree bitwise
// (DataParallelRun::check_replicas), every rank calls save(step) (which may
// hold collectives; only rank 0 writes) and they meet at a barrier after it,
// so nobody runs ahead of a half-written checkpoint.
class FinetuneStops {
 public:
  FinetuneStops(int64_t steps, int64_t checkpoint_every, int64_t stop_after, const DataParallelRun* dp = nullptr)
      : steps_(steps), every_(checkpoint_every), stop_after_(stop_after), dp_(dp) {}
  // After `step`: writes a checkpoint with save(step) into *checkpoint when one
  // is due (the last step, every checkpoint_every steps, a stop) and returns
  // whether the loop stops here (a signal came, or step == stop_after), saying
  // where to continue from unless quiet.
  bool end_step(int64_t step, const std::function<std::string(int64_t)>& save, std::string* checkpoint,
                bool quiet) const;
  // The signal that stopped the run, or 0; under data parallel the one any rank
  // received (as of the last end_step), so that every rank reports it.
  int signal() const { return signal_; }

 private:
  StopSignals signals_;
  int64_t steps_, every_, stop_after_;
  const DataParallelRun* dp_;
  mutable int signal_ = 0;
};

}  // namespace ember::train
