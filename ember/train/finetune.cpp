// The fine-tuning stages' optimizer, schedule, stops and resume (see finetune.h).
#include "ember/train/finetune.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>

#include "ember/core/error.h"
#include "ember/optim/clip.h"
#include "ember/optim/param_groups.h"
#include "ember/train/checkpoint.h"

namespace ember::train {

std::unique_ptr<optim::AdamW> finetune_adamw(const nn::Module& model, double lr, double weight_decay) {
  optim::AdamWOptions adam;
  adam.lr = lr;
  adam.beta1 = 0.9;
  adam.beta2 = 0.95;
  adam.weight_decay = weight_decay;
  return std::make_unique<optim::AdamW>(optim::make_param_groups(model, weight_decay), adam);
}

optim::LRLambda finetune_schedule(int64_t warmup_steps, int64_t steps, double min_lr_ratio) {
  const int64_t warmup = warmup_steps >= 0 ? warmup_steps : std::max<int64_t>(1, steps / 20);
  return optim::warmup_cosine_schedule(warmup, steps, min_lr_ratio);
}

double checked_grad_norm(const std::vector<Tensor>& params, double grad_clip, double loss, int64_t step,
                         const std::string& op, const std::string& hint) {
  const double norm = grad_clip > 0 ? optim::clip_grad_norm_(params, grad_clip) : optim::grad_norm(params);
  if (!std::isfinite(loss) || !std::isfinite(norm))
    fail(op, "non-finite ", std::isfinite(loss) ? "gradient norm" : "loss", " at step ", step, " (loss ", loss,
         ", grad norm ", norm, "); ", hint);
  return norm;
}

ResumePoint find_resume_point(const std::string& run_dir, const std::string& kind, const std::string& op) {
  if (!has_checkpoint(run_dir)) fail(op, "--resume: ", run_dir, " has no checkpoint (no ", run_dir, "/latest)");
  ResumePoint point;
  point.dir = resolve_checkpoint(run_dir);
  point.trainer = read_trainer_json(point.dir);
  if (point.trainer.value("kind", "") != kind || !point.trainer.contains("data") ||
      !point.trainer.contains("options"))
    fail(op, "--resume: ", point.dir, " is not a resumable ", kind, " checkpoint (kind \"",
         point.trainer.value("kind", "?"), "\")");
  return point;
}

int64_t ResumePoint::restore(nn::Module& model, optim::Optimizer& optimizer, Generator& gen) const {
  return dir.empty() ? 0 : restore_checkpoint(dir, trainer, model, optimizer, gen);
}

nlohmann::json finetune_trainer_json(const std::string& kind, int64_t step, const nlohmann::json& config,
                                     const nlohmann::json& options, const std::string& init_dir, const Generator& gen,
                                     const nlohmann::json& data) {
  return {{"kind", kind},
          {"step", step},
          {"config", config},
          {"options", options},
          {"init", std::filesystem::absolute(init_dir).string()},
          {"rng", {{"seed", gen.state().seed}, {"offset", gen.state().offset}}},
          {"data", data}};
}

bool FinetuneStops::end_step(int64_t step, const std::function<std::string(int64_t)>& save, std::string* checkpoint,
                             bool quiet) const {
  const int signal = signals_.received();
  const StopRequest agreed =
      agree_to_stop(dp_ ? &dp_->comm() : nullptr, {signal != 0 || (stop_after_ > 0 && step == stop_after_), signal});
  const bool stop = agreed.stop;
  signal_ = agreed.signal;
  if (step == steps_ || stop || (every_ > 0 && step % every_ == 0)) {
    if (dp_) dp_->check_replicas(step);  // no checkpoint of weights the ranks disagree on
    *checkpoint = save(step);
    if (dp_) dp_->barrier();
  }
  if (stop && !quiet)
    std::cout << "stopped at step " << step << (signal_ ? " by a signal" : "") << "; checkpoint "
              << *checkpoint << " (continue with --resume)" << std::endl;
  return stop;
}

}  // namespace ember::train
