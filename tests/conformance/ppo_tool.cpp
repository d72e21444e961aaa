// The ember half of the PPO conformance test (driven by ppo.py):
//   ppo_tool --inputs FILE --out FILE
// reads fixed tensors (logits, tokens, mask, old/ref log-probs, advantages,
// values, old values, returns, scores; float64) and the hyper-parameters, and
// computes with chat/ppo_math.h, once in float64 and once in float32 (prefixes
// "f64." and "f32."): token log-probs, the clipped policy loss with its clip
// fraction and approx KL and its gradient w.r.t. the logits, the clipped value
// loss with its clip fraction and gradient w.r.t. the values, the entropy and
// its gradient w.r.t. the logits, the k1 and k3 KL estimates, the KL-penalised
// rewards, GAE advantages and returns, and the whitened advantages.
// Python computes the same with torch and compares; this tool only computes.
#include <iostream>
#include <map>
#include <string>

#include "ember/chat/ppo_math.h"
#include "ember/core/error.h"
#include "ember/io/safetensors.h"
#include "ember/ops/ops.h"

using namespace ember;
using namespace ember::chat;

namespace {

void compute(const TensorMap& in, DType dt, const std::string& prefix, TensorMap& out) {
  auto get = [&](const char* name) {
    auto it = in.find(name);
    if (it == in.end()) fail("ppo_tool", "inputs lack tensor '", name, "'");
    return it->second;
  };
  auto hp = [&](const char* name) { return get(name).item<double>(); };
  auto f = [&](const char* name) { return cast(get(name), dt).detach(); };
  const double clip = hp("clip_range"), vclip = hp("value_clip"), kl_coef = hp("kl_coef"), gamma = hp("gamma"),
               lam = hp("lam");
  const Tensor tokens = get("tokens"), mask = f("mask");

  Tensor logits = f("logits");
  logits.requires_grad_();
  Tensor logp = token_logprobs(logits, tokens);
  const PolicyLoss pl = policy_loss(logp, f("old_logp"), f("advantages"), mask, clip);
  pl.loss.backward();
  out.emplace(prefix + "logp", logp.detach());
  out.emplace(prefix + "pg_loss", pl.loss.detach());
  out.emplace(prefix + "pg_clipfrac", scalar(pl.clip_fraction, DType::f64));
  out.emplace(prefix + "approx_kl", scalar(pl.approx_kl, DType::f64));
  out.emplace(prefix + "pg_grad_logits", logits.grad());

  Tensor logits2 = f("logits");
  logits2.requires_grad_();
  Tensor ent = entropy(logits2, mask);
  ent.backward();
  out.emplace(prefix + "entropy", ent.detach());
  out.emplace(prefix + "entropy_grad_logits", logits2.grad());

  Tensor values = f("values");
  values.requires_grad_();
  const ValueLoss vl = value_loss(values, f("old_values"), f("returns"), mask, vclip);
  vl.loss.backward();
  out.emplace(prefix + "vf_loss", vl.loss.detach());
  out.emplace(prefix + "vf_clipfrac", scalar(vl.clip_fraction, DType::f64));
  out.emplace(prefix + "vf_grad_values", values.grad());

  const Tensor lp = logp.detach();
  const Tensor kl1 = kl_estimate(lp, f("ref_logp"), KlEstimator::k1) * mask;
  out.emplace(prefix + "kl_k1", kl1);
  out.emplace(prefix + "kl_k3", kl_estimate(lp, f("ref_logp"), KlEstimator::k3) * mask);
  const Tensor rewards = kl_penalized_rewards(kl1, mask, f("scores"), kl_coef);
  out.emplace(prefix + "rewards", rewards);
  Tensor returns;
  const Tensor adv = gae(rewards, f("old_values") * mask, mask, gamma, lam, &returns);
  out.emplace(prefix + "gae_advantages", adv);
  out.emplace(prefix + "gae_returns", returns);
  out.emplace(prefix + "whitened", whiten(adv, mask));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::map<std::string, std::string> flags;
    for (int i = 1; i + 1 < argc; i += 2) flags[argv[i]] = argv[i + 1];
    if (!flags.count("--inputs") || !flags.count("--out")) fail("ppo_tool", "usage: ppo_tool --inputs FILE --out FILE");
    const TensorMap in = load_safetensors(flags["--inputs"]).tensors;
    TensorMap out;
    compute(in, DType::f64, "f64.", out);
    compute(in, DType::f32, "f32.", out);
    TensorMap out64;
    for (const auto& [name, t] : out) out64.emplace(name, cast(t, DType::f64));
    save_safetensors(flags["--out"], out64);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "ppo_tool: " << e.what() << "\n";
    return 1;
  }
}
