// Learning-rate schedules as pure functions of the step (a multiplier of the
// base learning rate), and an LRScheduler that applies one to an optimizer.
//
// Steps count from 0 (the first optimizer step uses step 0's rate):
//   linear warm-up:   (step + 1) / warmup_steps while step < warmup_steps, then 1
//   cosine decay:     min_ratio + (1 - min_ratio) * (1 + cos(pi * step / decay_steps)) / 2,
//                     min_ratio after decay_steps
//   warm-up + cosine: warm-up for warmup_steps, then cosine from 1 at step
//                     warmup_steps down to min_ratio at total_steps, min_ratio after
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "ember/optim/optimizer.h"

namespace ember::optim {

using LRLambda = std::function<double(int64_t step)>;

double linear_warmup_factor(int64_t step, int64_t warmup_steps);
double cosine_decay_factor(int64_t step, int64_t decay_steps, double min_ratio = 0.0);
double warmup_cosine_factor(int64_t step, int64_t warmup_steps, int64_t total_steps, double min_ratio = 0.0);

LRLambda constant_schedule();
LRLambda linear_warmup_schedule(int64_t warmup_steps);
LRLambda cosine_schedule(int64_t decay_steps, double min_ratio = 0.0);
LRLambda warmup_cosine_schedule(int64_t warmup_steps, int64_t total_steps, double min_ratio = 0.0);

// Sets each group's lr to initial_lr * lambda(step) (torch's LambdaLR). The
// base rate is stored in the group as option "initial_lr" (kept if already
// there, e.g. after loading an optimizer checkpoint), so it is saved with the
// optimizer's state_dict and a resumed run continues the same schedule.
class LRScheduler {
 public:
  LRScheduler(Optimizer& optimizer, LRLambda lambda, int64_t start_step = 0);
  void step();                    // call after optimizer.step(): moves to the next step's rate
  void set_step(int64_t step);    // jumps to a step (resuming)
  int64_t current_step() const { return step_; }
  std::vector<double> last_lrs() const;

 private:
  void apply();
  Optimizer& optimizer_;
  LRLambda lambda_;
  int64_t step_;
};

}  // namespace ember::optim
