// PPO arithmetic (see ppo_math.h).
#include "ember/chat/ppo_math.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "ember/core/error.h"
#include "ember/ops/ops.h"

namespace ember::chat {

namespace {

// Checks that a [B, T] tensor matches the mask's shape, naming the argument.
void same_shape(const char* op, const char* what, const Tensor& x, const Tensor& mask) {
  if (x.shape() != mask.shape())
    fail(op, what, " has shape ", shape_str(x.shape()), " but mask has ", shape_str(mask.shape()));
}

void require_2d(const char* op, const Tensor& mask) {
  if (mask.ndim() != 2) fail(op, "mask must be [B, T], got ", shape_str(mask.shape()));
}

// Index of each row's last real token (-1 for an empty row); mask is [B, T].
std::vector<int64_t> last_tokens(const std::vector<double>& mask, int64_t B, int64_t T) {
  std::vector<int64_t> last(size_t(B), -1);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      if (mask[size_t(b * T + t)] != 0) last[size_t(b)] = t;
  return last;
}

}  // namespace

Tensor token_logprobs(const Tensor& logits, const Tensor& tokens) {
  if (logits.ndim() != 3 || tokens.ndim() != 2 || logits.shape(0) != tokens.shape(0) ||
      logits.shape(1) != tokens.shape(1))
    fail("token_logprobs", "logits must be [B, T, V] and tokens [B, T], got ", shape_str(logits.shape()), " and ",
         shape_str(tokens.shape()));
  const int64_t B = tokens.shape(0), T = tokens.shape(1);
  Tensor lp = log_softmax(logits, -1);
  return reshape(gather(lp, 2, reshape(tokens, {B, T, 1})), {B, T});
}

Tensor masked_mean(const Tensor& x, const Tensor& mask) {
  same_shape("masked_mean", "x", x, mask);
  const double n = sum(mask).item<double>();
  Tensor total = sum(x * mask);
  // An empty mask gives 0 (the sum is 0), still connected to x for backward.
  return n > 0 ? total / n : total;
}

Tensor kl_estimate(const Tensor& logp, const Tensor& logp_ref, KlEstimator estimator) {
  if (logp.shape() != logp_ref.shape())
    fail("kl_estimate", "logp ", shape_str(logp.shape()), " and logp_ref ", shape_str(logp_ref.shape()),
         " differ in shape");
  Tensor d = logp - logp_ref;
  if (estimator == KlEstimator::k1) return d;
  // k3 with log ratio = -d: (exp(-d) - 1) + d.
  return (exp(-d) - 1.0) + d;
}

KlEstimator kl_estimator_from_name(const std::string& name) {
  if (name == "k1") return KlEstimator::k1;
  if (name == "k3") return KlEstimator::k3;
  fail("ppo", "unknown KL estimator '", name, "' (use k1 or k3)");
}

Tensor kl_penalized_rewards(const Tensor& kl, const Tensor& mask, const Tensor& scores, double kl_coef) {
  const char* op = "kl_penalized_rewards";
  require_2d(op, mask);
  same_shape(op, "kl", kl, mask);
  const int64_t B = mask.shape(0), T = mask.shape(1);
  if (scores.ndim() != 1 || scores.shape(0) != B)
    fail(op, "scores must be [", B, "], got ", shape_str(scores.shape()));
  const std::vector<double> k = kl.to_vector<double>(), m = mask.to_vector<double>(), s = scores.to_vector<double>();
  std::vector<double> r(k.size(), 0.0);
  for (size_t i = 0; i < r.size(); ++i) r[i] = m[i] != 0 ? -kl_coef * k[i] : 0.0;
  const std::vector<int64_t> last = last_tokens(m, B, T);
  for (int64_t b = 0; b < B; ++b)
    if (last[size_t(b)] >= 0) r[size_t(b * T + last[size_t(b)])] += s[size_t(b)];
  return tensor(r, {B, T}, kl.dtype());
}

Tensor gae(const Tensor& rewards, const Tensor& values, const Tensor& mask, double gamma, double lam,
           Tensor* returns) {
  const char* op = "gae";
  require_2d(op, mask);
  same_shape(op, "rewards", rewards, mask);
  same_shape(op, "values", values, mask);
  const int64_t B = mask.shape(0), T = mask.shape(1);
  const std::vector<double> r = rewards.to_vector<double>(), v = values.to_vector<double>(),
                            m = mask.to_vector<double>();
  std::vector<double> adv(r.size(), 0.0), ret(r.size(), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    double next_value = 0, next_adv = 0;  // beyond the row's end: the episode is over
    for (int64_t t = T - 1; t >= 0; --t) {
      const size_t i = size_t(b * T + t);
      if (m[i] == 0) {
        next_value = next_adv = 0;
        continue;
      }
      const double delta = r[i] + gamma * next_value - v[i];
      adv[i] = delta + gamma * lam * next_adv;
      ret[i] = adv[i] + v[i];
      next_value = v[i];
      next_adv = adv[i];
    }
  }
  if (returns) *returns = tensor(ret, {B, T}, values.dtype());
  return tensor(adv, {B, T}, rewards.dtype());
}

Tensor whiten(const Tensor& x, const Tensor& mask, bool shift_mean) {
  require_2d("whiten", mask);
  same_shape("whiten", "x", x, mask);
  const std::vector<double> v = x.to_vector<double>(), m = mask.to_vector<double>();
  double n = 0, total = 0;
  for (size_t i = 0; i < v.size(); ++i) n += m[i], total += v[i] * m[i];
  std::vector<double> out(v.size(), 0.0);
  if (n == 0) return tensor(out, x.shape(), x.dtype());
  const double mean = total / n;
  double ss = 0;
  for (size_t i = 0; i < v.size(); ++i) ss += m[i] * (v[i] - mean) * (v[i] - mean);
  // Bessel's correction as TRL's masked_var; a single token has no spread (var 0).
  const double var = n > 1 ? ss / (n - 1) : 0.0;
  const double inv = 1.0 / std::sqrt(var + 1e-8);
  for (size_t i = 0; i < v.size(); ++i)
    if (m[i] != 0) out[i] = (v[i] - mean) * inv + (shift_mean ? 0.0 : mean);
  return tensor(out, x.shape(), x.dtype());
}

PolicyLoss policy_loss(const Tensor& logp, const Tensor& old_logp, const Tensor& advantages, const Tensor& mask,
                       double clip_range) {
  const char* op = "policy_loss";
  same_shape(op, "logp", logp, mask);
  same_shape(op, "old_logp", old_logp, mask);
  same_shape(op, "advantages", advantages, mask);
  if (!(clip_range > 0)) fail(op, "clip_range must be > 0, got ", clip_range);
  const Tensor old = old_logp.detach(), adv = advantages.detach();
  Tensor log_ratio = logp - old;
  Tensor ratio = exp(log_ratio);
  Tensor unclipped = -adv * ratio;
  Tensor clipped = -adv * clamp(ratio, 1.0 - clip_range, 1.0 + clip_range);
  PolicyLoss out;
  out.loss = masked_mean(maximum(unclipped, clipped), mask);
  const Tensor lr = log_ratio.detach(), m = mask.detach();
  out.clip_fraction = masked_mean(cast(gt(clipped.detach(), unclipped.detach()), m.dtype()), m).item<double>();
  out.approx_kl = 0.5 * masked_mean(lr * lr, m).item<double>();
  out.ratio_mean = masked_mean(exp(lr), m).item<double>();
  return out;
}

ValueLoss value_loss(const Tensor& values, const Tensor& old_values, const Tensor& returns, const Tensor& mask,
                     double clip_range) {
  const char* op = "value_loss";
  same_shape(op, "values", values, mask);
  same_shape(op, "old_values", old_values, mask);
  same_shape(op, "returns", returns, mask);
  const Tensor old = old_values.detach(), ret = returns.detach(), m = mask.detach();
  Tensor err = square(values - ret);
  ValueLoss out;
  if (clip_range <= 0) {
    out.loss = masked_mean(err, mask) * 0.5;
    return out;
  }
  Tensor v_clip = minimum(maximum(values, old - clip_range), old + clip_range);
  Tensor err_clip = square(v_clip - ret);
  out.loss = masked_mean(maximum(err, err_clip), mask) * 0.5;
  out.clip_fraction = masked_mean(cast(gt(err_clip.detach(), err.detach()), m.dtype()), m).item<double>();
  return out;
}

Tensor entropy(const Tensor& logits, const Tensor& mask) {
  if (logits.ndim() != 3) fail("entropy", "logits must be [B, T, V], got ", shape_str(logits.shape()));
  Tensor lp = log_softmax(logits, -1);
  Tensor h = -sum(exp(lp) * lp, {-1});
  return masked_mean(h, mask);
}

KlController::KlController(double init_coef, double target, double horizon)
    : coef_(init_coef), target_(target), horizon_(horizon) {
  if (!(init_coef >= 0)) fail("ppo", "kl_coef must be >= 0, got ", init_coef);
  if (target > 0 && !(horizon > 0)) fail("ppo", "kl_horizon must be > 0, got ", horizon);
}

void KlController::update(double current_kl, int64_t n_steps) {
  if (!adaptive()) return;
  const double e = std::clamp(current_kl / target_ - 1.0, -0.2, 0.2);
  coef_ *= 1.0 + e * double(n_steps) / horizon_;
}

}  // namespace ember::chat
