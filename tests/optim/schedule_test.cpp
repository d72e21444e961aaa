// Learning-rate schedules at their key steps, and LRScheduler driving groups.
#include <gtest/gtest.h>

#include <cmath>

#include "ember/ember.h"
#include "ember/optim/optim.h"

using namespace ember;
using namespace ember::optim;

TEST(OptimSchedule, LinearWarmup) {
  EXPECT_DOUBLE_EQ(linear_warmup_factor(0, 4), 0.25);
  EXPECT_DOUBLE_EQ(linear_warmup_factor(1, 4), 0.5);
  EXPECT_DOUBLE_EQ(linear_warmup_factor(3, 4), 1.0);
  EXPECT_DOUBLE_EQ(linear_warmup_factor(100, 4), 1.0);
  EXPECT_DOUBLE_EQ(linear_warmup_factor(0, 0), 1.0);  // no warm-up
  EXPECT_THROW(linear_warmup_factor(-1, 4), Error);
  EXPECT_THROW(linear_warmup_schedule(-2), Error);
}

TEST(OptimSchedule, CosineDecayToFloor) {
  EXPECT_DOUBLE_EQ(cosine_decay_factor(0, 10, 0.1), 1.0);
  EXPECT_DOUBLE_EQ(cosine_decay_factor(5, 10, 0.1), 0.55);  // half way: the mean of 1 and the floor
  EXPECT_NEAR(cosine_decay_factor(9, 10, 0.0), 0.5 * (1 + std::cos(M_PI * 0.9)), 1e-15);
  EXPECT_DOUBLE_EQ(cosine_decay_factor(10, 10, 0.1), 0.1);
  EXPECT_DOUBLE_EQ(cosine_decay_factor(1000, 10, 0.1), 0.1);
  try {
    cosine_schedule(10, 1.5);
    ADD_FAILURE() << "min_ratio 1.5 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "[cosine_decay] min_ratio must be in [0, 1], got 1.5");
  }
  EXPECT_THROW(cosine_schedule(0), Error);
}

TEST(OptimSchedule, WarmupThenCosine) {
  LRLambda f = warmup_cosine_schedule(10, 110, 0.0);
  EXPECT_DOUBLE_EQ(f(0), 0.1);
  EXPECT_DOUBLE_EQ(f(4), 0.5);
  EXPECT_DOUBLE_EQ(f(9), 1.0);
  EXPECT_DOUBLE_EQ(f(10), 1.0);  // the peak, where the cosine starts
  EXPECT_NEAR(f(60), 0.5, 1e-15);
  EXPECT_NEAR(f(110), 0.0, 1e-15);
  EXPECT_NEAR(f(500), 0.0, 1e-15);
  LRLambda g = warmup_cosine_schedule(0, 100, 0.1);
  EXPECT_DOUBLE_EQ(g(0), 1.0);
  EXPECT_NEAR(g(50), 0.55, 1e-15);
  EXPECT_THROW(warmup_cosine_schedule(10, 10), Error);
  EXPECT_DOUBLE_EQ(constant_schedule()(12345), 1.0);
}

TEST(OptimSchedule, SchedulerSetsEveryGroup) {
  Tensor a = zeros({2}), b = zeros({2});
  a.requires_grad_();
  b.requires_grad_();
  SGD opt(std::vector<ParamGroup>{{{a}, {{"lr", 1.0}}}, {{b}, {{"lr", 0.1}}}});
  LRScheduler sched(opt, linear_warmup_schedule(4));
  EXPECT_EQ(sched.current_step(), 0);
  EXPECT_EQ(sched.last_lrs(), (std::vector<double>{0.25, 0.025}));
  sched.step();
  EXPECT_EQ(sched.last_lrs(), (std::vector<double>{0.5, 0.05}));
  sched.set_step(10);
  EXPECT_EQ(sched.last_lrs(), (std::vector<double>{1.0, 0.1}));
  EXPECT_THROW(sched.set_step(-1), Error);
  EXPECT_THROW(LRScheduler(opt, [](int64_t) { return -1.0; }), Error);
}
