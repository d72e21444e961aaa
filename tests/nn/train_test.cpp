// End to end: a small MLP learns a two-arm spiral (1.5 turns, generated from a
// seeded generator) with AdamW, reaching >= 95% accuracy on held-out points
// within 300 full-batch steps. Exercises Module, Sequential, Linear,
// cross_entropy, backward, make_param_groups, clipping and the fused update.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "ember/ember.h"
#include "ember/nn/nn.h"
#include "ember/optim/optim.h"

using namespace ember;

namespace {

struct Dataset {
  Tensor x;  // [N, 2] float32
  Tensor y;  // [N] int64
};

Dataset spiral(int64_t per_class, Generator& gen) {
  std::vector<double> t = rand({2 * per_class}, DType::f64, Device::cpu(), &gen).to_vector<double>();
  std::vector<double> xs;
  std::vector<int64_t> ys;
  for (int64_t i = 0; i < 2 * per_class; ++i) {
    int64_t c = i / per_class;
    double r = t[size_t(i)] + 0.05;
    double angle = r * 2.0 * std::numbers::pi * 1.5 + double(c) * std::numbers::pi;
    xs.push_back(2.0 * r * std::cos(angle));
    xs.push_back(2.0 * r * std::sin(angle));
    ys.push_back(c);
  }
  return {tensor(xs, {2 * per_class, 2}), tensor_i64(ys, {2 * per_class})};
}

double accuracy(nn::UnaryModule& model, const Dataset& d) {
  NoGradGuard no_grad;
  Tensor hit = eq(argmax(model(d.x), 1), d.y);
  return mean(cast(hit, DType::f64)).item<double>();
}

}  // namespace

TEST(NnTrain, MLPLearnsSpiral) {
  Generator gen(1);
  Dataset train = spiral(200, gen), test = spiral(200, gen);
  nn::Sequential model{std::make_shared<nn::Linear>(2, 32, true, &gen),
                       std::make_shared<nn::ActivationLayer>(nn::Activation::tanh),
                       std::make_shared<nn::Linear>(32, 32, true, &gen),
                       std::make_shared<nn::ActivationLayer>(nn::Activation::tanh),
                       std::make_shared<nn::Linear>(32, 2, true, &gen)};
  optim::AdamW opt(optim::make_param_groups(model, 0.0), {0.03});
  const int max_steps = 300;
  int steps = 0;
  double train_acc = 0, first_loss = 0, loss_value = 0;
  for (; steps < max_steps; ++steps) {
    Tensor loss = cross_entropy(model(train.x), train.y);
    loss_value = loss.item<double>();
    if (steps == 0) first_loss = loss_value;
    opt.zero_grad();
    loss.backward();
    double norm = optim::clip_grad_norm_(model.parameters(), 5.0);
    ASSERT_TRUE(std::isfinite(norm)) << "step " << steps;
    opt.step();
    if (steps % 25 == 24 && (train_acc = accuracy(model, train)) >= 0.99) break;
  }
  double test_acc = accuracy(model, test);
  EXPECT_NEAR(first_loss, std::log(2.0), 0.3);
  EXPECT_LT(loss_value, 0.25);
  EXPECT_GE(train_acc, 0.99) << "after " << steps << " steps";
  EXPECT_GE(test_acc, 0.95) << "after " << steps << " steps";
  EXPECT_LT(steps, max_steps);
}
