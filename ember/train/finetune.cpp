// The fine-tuning stages' optimizer and schedule (see finetune.h).
#include "ember/train/finetune.h"

#include <algorithm>
#include <cmath>

#include "ember/core/error.h"
#include "ember/optim/clip.h"

#include "ember/optim/param_groups.h"

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

}  // namespace ember::train
