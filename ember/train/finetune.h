// The optimizer and learning-rate schedule every fine-tuning stage (SFT, the
// reward model, DPO) shares, so they cannot drift apart: AdamW with betas
// (0.9, 0.95) as GPT training uses, weight decay on matrices only
// (optim::make_param_groups), linear warm-up then cosine decay to
// min_lr_ratio x lr.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ember/nn/module.h"
#include "ember/optim/adamw.h"
#include "ember/optim/schedule.h"

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

}  // namespace ember::train
