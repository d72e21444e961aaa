// PPO arithmetic (chat/ppo_math.h) on hand-worked cases: GAE, the KL penalty's
// placement, the clipped surrogate and its clip fraction, the clipped value
// loss, entropy, whitening and the adaptive KL controller. The PyTorch
// comparison on random tensors is tests/conformance/ppo.*.
#include <gtest/gtest.h>

#include <cmath>

#include "ember/chat/ppo_math.h"
#include "ember/core/error.h"
#include "ember/ops/ops.h"

namespace ember::chat {
namespace {

Tensor f64(const std::vector<double>& v, const Shape& s) { return tensor(v, s, DType::f64); }

void expect_all_near(const Tensor& t, const std::vector<double>& want, double tol = 1e-12) {
  const std::vector<double> got = t.to_vector<double>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

// Row 0: three tokens, rewards r = [0, 0, 1], values V = [0.5, 0.6, 0.7], gamma 0.9, lambda 0.5:
//   delta_2 = 1 + 0.9 * 0   - 0.7 = 0.3       A_2 = 0.3
//   delta_1 = 0 + 0.9 * 0.7 - 0.6 = 0.03      A_1 = 0.03 + 0.45 * 0.3   = 0.165
//   delta_0 = 0 + 0.9 * 0.6 - 0.5 = 0.04      A_0 = 0.04 + 0.45 * 0.165 = 0.11425
//   returns R = A + V = [0.61425, 0.765, 1.0]
// Row 1: two tokens then padding (whose reward 5 and value 9 must be ignored),
// r = [0.2, -1], V = [0.1, 0.4]:
//   delta_1 = -1 - 0.4 = -1.4                 A_1 = -1.4
//   delta_0 = 0.2 + 0.9 * 0.4 - 0.1 = 0.46    A_0 = 0.46 + 0.45 * -1.4 = -0.17
//   R = [-0.07, -1.0, 0]
TEST(PpoMath, GaeMatchesHandWorkedExample) {
  const Tensor r = f64({0, 0, 1, 0.2, -1, 5}, {2, 3});
  const Tensor v = f64({0.5, 0.6, 0.7, 0.1, 0.4, 9}, {2, 3});
  const Tensor m = f64({1, 1, 1, 1, 1, 0}, {2, 3});
  Tensor ret;
  const Tensor adv = gae(r, v, m, 0.9, 0.5, &ret);
  expect_all_near(adv, {0.11425, 0.165, 0.3, -0.17, -1.4, 0});
  expect_all_near(ret, {0.61425, 0.765, 1.0, -0.07, -1.0, 0});
  // gamma = lambda = 1: A_t = sum of future rewards - V_t (Monte Carlo).
  expect_all_near(gae(r, v, m, 1.0, 1.0), {1 - 0.5, 1 - 0.6, 1 - 0.7, -0.8 - 0.1, -1 - 0.4, 0});
  // lambda = 0: one-step TD errors.
  expect_all_near(gae(r, v, m, 0.9, 0.0), {0.04, 0.03, 0.3, 0.46, -1.4, 0});
}

TEST(PpoMath, KlPenaltyOnEveryTokenScoreAtTheLast) {
  const Tensor kl = f64({0.1, 0.2, 0.3, 0.5, -0.5, 7}, {2, 3});
  const Tensor m = f64({1, 1, 1, 1, 1, 0}, {2, 3});
  const Tensor rw = kl_penalized_rewards(kl, m, f64({2, -1}, {2}), 0.1);
  expect_all_near(rw, {-0.01, -0.02, -0.03 + 2, -0.05, 0.05 - 1, 0});
  // A row with no tokens gets nothing (and no error).
  expect_all_near(kl_penalized_rewards(kl, f64({0, 0, 0, 1, 0, 0}, {2, 3}), f64({2, -1}, {2}), 0.1),
                  {0, 0, 0, -0.05 - 1, 0, 0});
  EXPECT_THROW(kl_penalized_rewards(kl, m, f64({2}, {1}), 0.1), Error);
}

TEST(PpoMath, KlEstimators) {
  const Tensor logp = f64({-1, -3}, {1, 2}), ref = f64({-2, -3}, {1, 2});
  expect_all_near(kl_estimate(logp, ref, KlEstimator::k1), {1, 0});
  // k3 = (exp(ref - logp) - 1) - (ref - logp): at logp - ref = 1, exp(-1) - 1 + 1.
  expect_all_near(kl_estimate(logp, ref, KlEstimator::k3), {std::exp(-1.0), 0});
  EXPECT_EQ(kl_estimator_from_name("k3"), KlEstimator::k3);
  EXPECT_THROW(kl_estimator_from_name("k2"), Error);
}

// Ratios r = [1.5, 0.5, 1.1, 0.7] with advantages A = [1, 1, -1, -1], eps 0.2:
//   r=1.5, A=+1: max(-1.5, -1.2) = -1.2   clipped (gradient 0)
//   r=0.5, A=+1: max(-0.5, -0.8) = -0.5   unclipped (pessimistic side: no clip below for A > 0)
//   r=1.1, A=-1: max( 1.1,  1.1) =  1.1   inside the range
//   r=0.7, A=-1: max( 0.7,  0.8) =  0.8   clipped
// loss = (-1.2 - 0.5 + 1.1 + 0.8) / 4 = 0.05, clip fraction 2/4. A fifth,
// masked token (r = 3, A = 5) must not count. d loss / d logp = -A r / 4 where
// unclipped, 0 where clipped: [0, -0.125, 0.275, 0, 0].
TEST(PpoMath, ClippedPolicyLossHandCases) {
  const std::vector<double> ratio = {1.5, 0.5, 1.1, 0.7, 3.0};
  std::vector<double> lp;
  for (double r : ratio) lp.push_back(std::log(r) - 2.0);
  Tensor logp = f64(lp, {1, 5});
  logp.requires_grad_();
  const Tensor old = f64({-2, -2, -2, -2, -2}, {1, 5});
  const Tensor adv = f64({1, 1, -1, -1, 5}, {1, 5});
  const Tensor m = f64({1, 1, 1, 1, 0}, {1, 5});
  const PolicyLoss pl = policy_loss(logp, old, adv, m, 0.2);
  EXPECT_NEAR(pl.loss.item<double>(), 0.05, 1e-12);
  EXPECT_DOUBLE_EQ(pl.clip_fraction, 0.5);
  EXPECT_NEAR(pl.ratio_mean, (1.5 + 0.5 + 1.1 + 0.7) / 4, 1e-12);
  double akl = 0;
  for (int i = 0; i < 4; ++i) akl += std::log(ratio[size_t(i)]) * std::log(ratio[size_t(i)]);
  EXPECT_NEAR(pl.approx_kl, 0.5 * akl / 4, 1e-12);
  pl.loss.backward();
  expect_all_near(logp.grad(), {0, -0.125, 0.275, 0, 0});
  EXPECT_THROW(policy_loss(logp, old, adv, m, 0.0), Error);
}

// c = 0.2:
//   v=1.0 old=0.5 R=1: v_clip=0.7  err 0     clipped 0.09 -> 0.09 (clip counts)
//   v=0.6 old=0.5 R=1: v_clip=0.6  err 0.16  clipped 0.16 -> 0.16
//   v=0.0 old=0.5 R=0: v_clip=0.3  err 0     clipped 0.09 -> 0.09 (clip counts)
//   v=0.2 old=0.5 R=1: v_clip=0.3  err 0.64  clipped 0.49 -> 0.64
// loss = 0.5 * (0.09 + 0.16 + 0.09 + 0.64) / 4 = 0.1225, clip fraction 0.5.
TEST(PpoMath, ClippedValueLossHandCases) {
  Tensor v = f64({1.0, 0.6, 0.0, 0.2, 4.0}, {1, 5});
  v.requires_grad_();
  const Tensor old = f64({0.5, 0.5, 0.5, 0.5, 0}, {1, 5}), ret = f64({1, 1, 0, 1, -4}, {1, 5});
  const Tensor m = f64({1, 1, 1, 1, 0}, {1, 5});
  const ValueLoss vl = value_loss(v, old, ret, m, 0.2);
  EXPECT_NEAR(vl.loss.item<double>(), 0.1225, 1e-12);
  EXPECT_DOUBLE_EQ(vl.clip_fraction, 0.5);
  // Gradient flows only through the chosen unclipped terms: 0.5 * 2 (v - R) / 4.
  vl.loss.backward();
  expect_all_near(v.grad(), {0, 0.25 * -0.4, 0, 0.25 * -0.8, 0});
  // c = 0: plain 0.5 * MSE.
  EXPECT_NEAR(value_loss(v, old, ret, m, 0).loss.item<double>(), 0.5 * (0 + 0.16 + 0 + 0.64) / 4, 1e-12);
}

TEST(PpoMath, EntropyOfKnownDistributions) {
  // Position 0 uniform over 4: log 4. Position 1 p = [1/8, 1/8, 1/4, 1/2]:
  // H = 2 * (1/8) ln 8 + (1/4) ln 4 + (1/2) ln 2 = 1.75 ln 2. Position 2 is masked.
  const Tensor logits =
      f64({0, 0, 0, 0, std::log(1.0), std::log(1.0), std::log(2.0), std::log(4.0), 9, -3, 2, 0}, {1, 3, 4});
  const Tensor m = f64({1, 1, 0}, {1, 3});
  EXPECT_NEAR(entropy(logits, m).item<double>(), (std::log(4.0) + 1.75 * std::log(2.0)) / 2, 1e-12);
}

TEST(PpoMath, TokenLogprobsAndMaskedMean) {
  const Tensor logits = f64({0, std::log(3.0), 0, 0}, {1, 2, 2});
  expect_all_near(token_logprobs(logits, tensor_i64({1, 0}, {1, 2})), {std::log(0.75), std::log(0.5)});
  EXPECT_DOUBLE_EQ(masked_mean(f64({1, 2, 30}, {1, 3}), f64({1, 1, 0}, {1, 3})).item<double>(), 1.5);
  EXPECT_DOUBLE_EQ(masked_mean(f64({1, 2, 30}, {1, 3}), f64({0, 0, 0}, {1, 3})).item<double>(), 0.0);
}

TEST(PpoMath, WhitenUsesUnbiasedVarianceOverRealTokens) {
  // mean 2, unbiased variance ((1 + 0 + 1) / 2) = 1; the padded 100 is ignored.
  const Tensor x = f64({1, 2, 3, 100}, {1, 4}), m = f64({1, 1, 1, 0}, {1, 4});
  const double s = 1 / std::sqrt(1 + 1e-8);
  expect_all_near(whiten(x, m), {-s, 0, s, 0});
  expect_all_near(whiten(x, m, false), {2 - s, 2, 2 + s, 0});
}

TEST(PpoMath, AdaptiveKlController) {
  KlController c(0.2, 6.0, 10000);
  ASSERT_TRUE(c.adaptive());
  c.update(9.0, 100);  // error 9/6 - 1 = 0.5, clipped to 0.2: x (1 + 0.2 * 100 / 10000)
  EXPECT_NEAR(c.value(), 0.2 * 1.002, 1e-15);
  c.update(5.4, 100);  // error -0.1: x (1 - 0.1 * 100 / 10000)
  EXPECT_NEAR(c.value(), 0.2 * 1.002 * 0.999, 1e-15);
  c.update(0.0, 100);  // error -1, clipped to -0.2
  EXPECT_NEAR(c.value(), 0.2 * 1.002 * 0.999 * 0.998, 1e-15);
  KlController fixed(0.05);
  fixed.update(100.0, 64);
  EXPECT_EQ(fixed.value(), 0.05);
  EXPECT_THROW(KlController(-1.0), Error);
}

}  // namespace
}  // namespace ember::chat
