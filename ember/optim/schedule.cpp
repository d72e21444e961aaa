// Learning-rate schedules.
#include "ember/optim/schedule.h"

#include <cmath>
#include <numbers>

namespace ember::optim {

double linear_warmup_factor(int64_t step, int64_t warmup_steps) {
  EMBER_CHECK(step >= 0, "linear_warmup", "step must be non-negative, got ", step);
  EMBER_CHECK(warmup_steps >= 0, "linear_warmup", "warmup_steps must be non-negative, got ", warmup_steps);
  if (step >= warmup_steps) return 1.0;
  return double(step + 1) / double(warmup_steps);
}

double cosine_decay_factor(int64_t step, int64_t decay_steps, double min_ratio) {
  EMBER_CHECK(step >= 0, "cosine_decay", "step must be non-negative, got ", step);
  EMBER_CHECK(decay_steps > 0, "cosine_decay", "decay_steps must be positive, got ", decay_steps);
  EMBER_CHECK(min_ratio >= 0.0 && min_ratio <= 1.0, "cosine_decay", "min_ratio must be in [0, 1], got ", min_ratio);
  if (step >= decay_steps) return min_ratio;
  double progress = double(step) / double(decay_steps);
  return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

double warmup_cosine_factor(int64_t step, int64_t warmup_steps, int64_t total_steps, double min_ratio) {
  EMBER_CHECK(total_steps > warmup_steps, "warmup_cosine", "total_steps ", total_steps,
              " must exceed warmup_steps ", warmup_steps);
  if (step < warmup_steps) return linear_warmup_factor(step, warmup_steps);
  return cosine_decay_factor(step - warmup_steps, total_steps - warmup_steps, min_ratio);
}

LRLambda constant_schedule() {
  return [](int64_t) { return 1.0; };
}

LRLambda linear_warmup_schedule(int64_t warmup_steps) {
  linear_warmup_factor(0, warmup_steps);  // validates now, not at the first step
  return [=](int64_t step) { return linear_warmup_factor(step, warmup_steps); };
}

LRLambda cosine_schedule(int64_t decay_steps, double min_ratio) {
  cosine_decay_factor(0, decay_steps, min_ratio);
  return [=](int64_t step) { return cosine_decay_factor(step, decay_steps, min_ratio); };
}

LRLambda warmup_cosine_schedule(int64_t warmup_steps, int64_t total_steps, double min_ratio) {
  warmup_cosine_factor(0, warmup_steps, total_steps, min_ratio);
  cosine_decay_factor(0, total_steps - warmup_steps, min_ratio);
  return [=](int64_t step) { return warmup_cosine_factor(step, warmup_steps, total_steps, min_ratio); };
}

LRScheduler::LRScheduler(Optimizer& optimizer, LRLambda lambda, int64_t start_step)
    : optimizer_(optimizer), lambda_(std::move(lambda)), step_(start_step) {
  EMBER_CHECK(lambda_ != nullptr, "LRScheduler", "needs a schedule function");
  EMBER_CHECK(start_step >= 0, "LRScheduler", "start_step must be non-negative, got ", start_step);
  for (ParamGroup& g : optimizer_.param_groups()) g.options.emplace("initial_lr", g.lr());
  apply();
}

void LRScheduler::step() {
  ++step_;
  apply();
}

void LRScheduler::set_step(int64_t step) {
  EMBER_CHECK(step >= 0, "LRScheduler", "step must be non-negative, got ", step);
  step_ = step;
  apply();
}

void LRScheduler::apply() {
  double factor = lambda_(step_);
  EMBER_CHECK(std::isfinite(factor) && factor >= 0.0, "LRScheduler", "schedule gave factor ", factor, " at step ",
              step_);
  for (ParamGroup& g : optimizer_.param_groups()) g.set_lr(g.get("initial_lr") * factor);
}

std::vector<double> LRScheduler::last_lrs() const {
  std::vector<double> out;
  for (const ParamGroup& g : optimizer_.param_groups()) out.push_back(g.lr());
  return out;
}

}  // namespace ember::optim
