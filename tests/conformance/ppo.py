#!/usr/bin/env python3
"""PPO conformance: ember's chat/ppo_math.h against the standard formulas in PyTorch.

The reference follows Hugging Face TRL's PPO trainer (itself a port of OpenAI's
lm-human-preferences):
  logp          gather(log_softmax(logits), tokens)
  policy loss   masked_mean(max(-A * ratio, -A * clamp(ratio, 1 - eps, 1 + eps))), ratio = exp(logp - old)
  clip frac     masked_mean(pg_losses2 > pg_losses)
  approx kl     0.5 * masked_mean((logp - old)^2)
  value loss    0.5 * masked_mean(max((v - R)^2, (clamp(v, old_v - c, old_v + c) - R)^2)), its clip frac
  entropy       masked_mean(logsumexp(logits) - sum(softmax(logits) * logits))
  KL            k1 = logp - ref; k3 = (exp(ref - logp) - 1) - (ref - logp)
  rewards       -kl_coef * k1, plus the score at each row's last real token
  GAE           TRL's reversed loop over the masked rewards and values; returns = A + V
  whitening     (A - mean) * rsqrt(var + 1e-8), unbiased masked variance
and the gradients of the policy loss and the entropy w.r.t. the logits and of the
value loss w.r.t. the values (autograd). Fixed random tensors (seed 0), three rows
of 6 tokens with lengths 6, 4 and 1. ember computes in float64 and float32; every
output must agree within 1e-5 * max(1, max|torch|).

Usage: ppo.py --tool PATH --dir DIR
"""
import argparse
import os
import subprocess
import sys

TOL = 1e-5
B, T, V = 3, 6, 11
LENGTHS = [6, 4, 1]
HP = dict(clip_range=0.2, value_clip=0.2, kl_coef=0.1, gamma=0.95, lam=0.9)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file, save_file

    torch.set_num_threads(1)
    os.makedirs(args.dir, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    d = torch.float64
    logits = torch.randn(B, T, V, generator=g, dtype=d) * 2
    tokens = torch.randint(0, V, (B, T), generator=g)
    mask = torch.zeros(B, T, dtype=d)
    for b, n in enumerate(LENGTHS):
        mask[b, :n] = 1
    logp_true = torch.gather(F.log_softmax(logits, -1), 2, tokens[..., None]).squeeze(-1)
    # Old log-probs off by up to ~0.5 nats: ratios fall inside and outside [0.8, 1.2].
    old_logp = logp_true + 0.3 * torch.randn(B, T, generator=g, dtype=d)
    ref_logp = logp_true + 0.5 * torch.randn(B, T, generator=g, dtype=d)
    advantages = torch.randn(B, T, generator=g, dtype=d)
    values = torch.randn(B, T, generator=g, dtype=d)
    old_values = values + 0.3 * torch.randn(B, T, generator=g, dtype=d)
    returns = torch.randn(B, T, generator=g, dtype=d)
    scores = torch.randn(B, generator=g, dtype=d)
    inputs = dict(logits=logits, tokens=tokens, mask=mask, old_logp=old_logp, ref_logp=ref_logp,
                  advantages=advantages, values=values, old_values=old_values, returns=returns, scores=scores)
    for k, v in HP.items():
        inputs[k] = torch.tensor(v, dtype=d)
    in_path = os.path.join(args.dir, "inputs.safetensors")
    out_path = os.path.join(args.dir, "ember_out.safetensors")
    save_file({k: v.contiguous() for k, v in inputs.items()}, in_path)

    def masked_mean(x, m):
        return (x * m).sum() / m.sum()

    ref = {}
    lg = logits.clone().requires_grad_(True)
    logp = torch.gather(F.log_softmax(lg, -1), 2, tokens[..., None]).squeeze(-1)
    ratio = torch.exp(logp - old_logp)
    pg1 = -advantages * ratio
    pg2 = -advantages * torch.clamp(ratio, 1 - HP["clip_range"], 1 + HP["clip_range"])
    pg_loss = masked_mean(torch.max(pg1, pg2), mask)
    pg_loss.backward()
    ref["logp"] = logp.detach()
    ref["pg_loss"] = pg_loss.detach()
    ref["pg_clipfrac"] = masked_mean(torch.gt(pg2, pg1).to(d), mask).detach()
    ref["approx_kl"] = (0.5 * masked_mean((logp - old_logp) ** 2, mask)).detach()
    ref["pg_grad_logits"] = lg.grad

    lg2 = logits.clone().requires_grad_(True)
    pd = F.softmax(lg2, -1)
    ent = masked_mean(torch.logsumexp(lg2, -1) - (pd * lg2).sum(-1), mask)
    ent.backward()
    ref["entropy"] = ent.detach()
    ref["entropy_grad_logits"] = lg2.grad

    v = values.clone().requires_grad_(True)
    c = HP["value_clip"]
    v_clip = torch.clamp(v, old_values - c, old_values + c)
    vf1 = (v - returns) ** 2
    vf2 = (v_clip - returns) ** 2
    vf_loss = 0.5 * masked_mean(torch.max(vf1, vf2), mask)
    vf_loss.backward()
    ref["vf_loss"] = vf_loss.detach()
    ref["vf_clipfrac"] = masked_mean(torch.gt(vf2, vf1).to(d), mask).detach()
    ref["vf_grad_values"] = v.grad

    lp = logp.detach()
    k1 = (lp - ref_logp) * mask
    log_r = ref_logp - lp
    ref["kl_k1"] = k1
    ref["kl_k3"] = ((torch.exp(log_r) - 1) - log_r) * mask
    rewards = -HP["kl_coef"] * k1
    for b, n in enumerate(LENGTHS):
        rewards[b, n - 1] += scores[b]
    ref["rewards"] = rewards
    vals = old_values * mask
    lastgaelam = torch.zeros(B, dtype=d)
    rev = []
    for t in reversed(range(T)):
        nextvalues = vals[:, t + 1] if t < T - 1 else 0.0
        delta = rewards[:, t] + HP["gamma"] * nextvalues - vals[:, t]
        lastgaelam = delta + HP["gamma"] * HP["lam"] * lastgaelam
        rev.append(lastgaelam)
    adv = torch.stack(rev[::-1], dim=1)
    ref["gae_advantages"] = adv * mask
    ref["gae_returns"] = (adv + vals) * mask
    mean = masked_mean(adv, mask)
    var = masked_mean((adv - mean) ** 2, mask) * (mask.sum() / (mask.sum() - 1))
    ref["whitened"] = (adv - mean) * torch.rsqrt(var + 1e-8) * mask

    subprocess.run([args.tool, "--inputs", in_path, "--out", out_path], check=True)
    got = load_file(out_path)

    failures = 0
    for prefix in ("f64.", "f32."):
        for name, want in ref.items():
            key = prefix + name
            if key not in got:
                print(f"FAIL {key}: missing from ember's output")
                failures += 1
                continue
            a = got[key].to(d).reshape(want.shape)
            scale = max(1.0, float(want.abs().max()))
            err = float((a - want).abs().max()) / scale
            ok = err <= TOL
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {key:28s} max rel err {err:.2e}")
    # The case must exercise both sides of each clip.
    for frac in ("pg_clipfrac", "vf_clipfrac"):
        f = float(ref[frac])
        if not 0 < f < 1:
            print(f"FAIL the fixed tensors give {frac} = {f}; the case does not exercise clipping")
            failures += 1
    if failures:
        print(f"{failures} mismatches")
        return 1
    print("all PPO quantities agree with torch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
