// The arithmetic of PPO for language models (RLHF), kept apart from the loop in
// chat/ppo.h so each formula is tested on its own (tests/chat/ppo_math_test.cpp)
// and against PyTorch (tests/conformance/ppo.*).
//
// Layout: a rollout batch is B responses right-padded to T tokens. Every [B, T]
// tensor below is indexed by response token: column t of row b is the t-th
// generated token of response b, and `mask` (same dtype as the values) is 1 on
// a row's real tokens, which are a prefix of the row, and 0 on padding. The
// per-token quantities are those of InstructGPT / Ziegler et al. 2019 as
// implemented by OpenAI's lm-human-preferences and Hugging Face TRL:
//   logp_t       log pi(token_t | context)             (token_logprobs)
//   KL_t         logp_t - logp_ref_t                    (k1, kl_estimate)
//   r_t          -beta KL_t, plus the sequence score at the last token (kl_penalized_rewards)
//   A_t, R_t     GAE(gamma, lambda) advantages and returns = A_t + V_t (gae)
// Tensor functions (losses, entropy, KL) are written in ember ops, so they are
// differentiable; the host-side ones (rewards, GAE, whitening) run without
// autograd on float32 or float64 input and return the input's dtype.
#pragma once

#include <cstdint>
#include <string>

#include "ember/core/tensor.h"

namespace ember::chat {

// log softmax(logits)[token]: logits [B, T, V], tokens int64 [B, T] -> [B, T].
Tensor token_logprobs(const Tensor& logits, const Tensor& tokens);

// sum(x * mask) / sum(mask) as a scalar tensor (0 when the mask is empty).
Tensor masked_mean(const Tensor& x, const Tensor& mask);

// Per-token estimates of KL(pi || pi_ref) from the log-probs of the sampled
// tokens (samples drawn from pi), after Schulman, "Approximating KL divergence":
//   k1 = logp - logp_ref                      unbiased, can be negative per token;
//                                             what InstructGPT and TRL penalise
//   k3 = (ratio - 1) - log ratio, ratio = exp(logp_ref - logp)
//                                             unbiased, always >= 0, lower variance
enum class KlEstimator { k1, k3 };
Tensor kl_estimate(const Tensor& logp, const Tensor& logp_ref, KlEstimator estimator = KlEstimator::k1);
KlEstimator kl_estimator_from_name(const std::string& name);  // "k1" | "k3"

// r_t = -kl_coef * kl_t on every real token, and score_b (the reward model's,
// already normalised and clipped) added at each row's last real token; 0 on
// padding. kl [B, T], mask [B, T], scores [B]. A row without tokens gets nothing.
Tensor kl_penalized_rewards(const Tensor& kl, const Tensor& mask, const Tensor& scores, double kl_coef);

// Generalised advantage estimation (Schulman et al. 2016) over each row:
//   delta_t = r_t + gamma * V_{t+1} - V_t        (V_{t+1} = 0 after the last real token)
//   A_t     = delta_t + gamma * lambda * A_{t+1}  (A_{t+1} = 0 after the last real token)
//   R_t     = A_t + V_t                           (the critic's regression target)
// rewards, values, mask [B, T]; returns A [B, T], writes R to *returns when
// given; both 0 on padding.
Tensor gae(const Tensor& rewards, const Tensor& values, const Tensor& mask, double gamma, double lam,
           Tensor* returns = nullptr);

// (x - mean) / sqrt(var + 1e-8) over the real tokens, with the unbiased
// (n - 1) variance as TRL's masked_whiten; 0 on padding. With shift_mean false
// the mean is added back (only the scale changes).
Tensor whiten(const Tensor& x, const Tensor& mask, bool shift_mean = true);

// PPO's clipped surrogate (Schulman et al. 2017), as a loss to minimise:
//   ratio_t = exp(logp_t - old_logp_t)
//   loss    = masked_mean(max(-A_t ratio_t, -A_t clip(ratio_t, 1 - eps, 1 + eps)))
//   clipfrac = masked_mean(1[-A clip(ratio) > -A ratio]), the share of tokens
//              whose gradient the clip switched off
// (max of the negated terms = -min(r A, clip(r) A)). logp carries the gradient.
struct PolicyLoss {
  Tensor loss;             // scalar, differentiable
  double clip_fraction = 0;
  double approx_kl = 0;    // 0.5 * masked_mean((logp - old_logp)^2), TRL's policy/approxkl
  double ratio_mean = 0;   // masked mean of ratio (1 at the first minibatch of an iteration)
};
PolicyLoss policy_loss(const Tensor& logp, const Tensor& old_logp, const Tensor& advantages, const Tensor& mask,
                       double clip_range);

// The critic's clipped value loss (PPO2 / TRL):
//   v_clip = clip(v, old_v - c, old_v + c)
//   loss   = 0.5 * masked_mean(max((v - R)^2, (v_clip - R)^2))
//   clipfrac = masked_mean(1[(v_clip - R)^2 > (v - R)^2])
// values carries the gradient. c <= 0 turns clipping off (plain 0.5 MSE).
struct ValueLoss {
  Tensor loss;
  double clip_fraction = 0;
};
ValueLoss value_loss(const Tensor& values, const Tensor& old_values, const Tensor& returns, const Tensor& mask,
                     double clip_range);

// Entropy of the policy's next-token distribution at each response position,
// H = -sum_v p_v log p_v from logits [B, T, V], averaged over the real tokens.
// Differentiable (an entropy bonus subtracts coef * H from the loss).
Tensor entropy(const Tensor& logits, const Tensor& mask);

// The KL coefficient beta. Fixed when target <= 0; otherwise the adaptive
// controller of Ziegler et al. 2019 (lm-human-preferences, TRL):
//   e    = clip(KL / target - 1, -0.2, 0.2)
//   beta = beta * (1 + e * n_steps / horizon)
// where KL is the batch's mean per-sequence KL (summed over tokens) and
// n_steps the number of sequences in the batch.
class KlController {
 public:
  KlController(double init_coef, double target = 0, double horizon = 10000);
  double value() const { return coef_; }
  void set_value(double coef) { coef_ = coef; }  // on resume
  bool adaptive() const { return target_ > 0; }
  void update(double current_kl, int64_t n_steps);

 private:
  double coef_, target_, horizon_;
};

}  // namespace ember::chat
