#!/usr/bin/env python3
"""Preference-loss conformance: ember's reward-model and DPO losses against PyTorch.

Cases (fixed seed), each in float64 and float32:
  pairs     8 chosen/rejected lists: the textbook forms
              Bradley-Terry  -F.logsigmoid(s_w - s_l).mean()
              DPO            -F.logsigmoid(beta * ((pi_w - ref_w) - (pi_l - ref_l))).mean()
  ranked    lists of 3, 4, 2 and 5 responses ranked best first: every pair (i < j) of a
            list, the mean over a list's pairs, then over lists (InstructGPT)
  extreme   margins of 0 (a zero-headed reward model, DPO at step 0) and of +-40
            (where a naive log(sigmoid(x)) overflows or loses the gradient)
Checked, for both losses: the value and the gradient w.r.t. the scores / the policy
log-probabilities, max|ember - torch| <= TOL * max(FLOOR, max|torch|), with TOL 1e-6 and
FLOOR 1e-3 for float64 and float32 alike; and that the reference log-probabilities get no
gradient from ember's DPO loss.

Usage: preference_losses.py --tool PATH --dir DIR
"""
import argparse
import itertools
import os
import subprocess
import sys

TOL = 1e-6
FLOOR = 1e-3


def torch_losses(F, torch, scores, policy, ref, sizes, beta):
    """The two losses by the textbook formulas, with autograd gradients."""
    s = scores.clone().requires_grad_()
    p = policy.clone().requires_grad_()
    bt_terms, dpo_terms, off = [], [], 0
    for k in sizes:
        pairs = list(itertools.combinations(range(off, off + k), 2))
        w = torch.tensor([i for i, _ in pairs])
        l = torch.tensor([j for _, j in pairs])
        bt_terms.append(-F.logsigmoid(s[w] - s[l]).mean())
        logits = beta * ((p[w] - ref[w]) - (p[l] - ref[l]))
        dpo_terms.append(-F.logsigmoid(logits).mean())
        off += k
    bt = torch.stack(bt_terms).mean()
    dpo = torch.stack(dpo_terms).mean()
    bt.backward()
    dpo.backward()
    return bt.detach(), s.grad, dpo.detach(), p.grad


def rel_err(a, b):
    return float((a.double() - b.double()).abs().max()) / max(FLOOR, float(b.double().abs().max()))


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

    def case(sizes, scale, beta):
        n = sum(sizes)
        return dict(sizes=sizes, beta=beta,
                    scores=torch.randn(n, generator=g, dtype=torch.float64) * scale,
                    policy=-torch.rand(n, generator=g, dtype=torch.float64) * 40 - 1,
                    ref=-torch.rand(n, generator=g, dtype=torch.float64) * 40 - 1)

    base = {"pairs": case([2] * 8, 1.5, 0.1), "ranked": case([3, 4, 2, 5], 2.0, 0.25)}
    ext = case([3, 2, 2], 1.0, 0.5)
    # Ties (margin 0) in the first list; margins of +-40 in the other two.
    ext["scores"] = torch.tensor([0.7, 0.7, 0.7, 40.0, 0.0, -20.0, 20.0], dtype=torch.float64)
    ext["ref"] = ext["policy"].clone()
    ext["ref"][3:] = ext["policy"][3:] + torch.tensor([-80.0, 0.0, 80.0, 0.0], dtype=torch.float64)
    base["extreme"] = ext

    cases = {}
    for name, c in base.items():
        for dtype, tag in ((torch.float64, "f64"), (torch.float32, "f32")):
            cases[f"{name}_{tag}"] = {k: (v.to(dtype) if torch.is_tensor(v) else v) for k, v in c.items()}

    inputs = os.path.join(args.dir, "inputs.safetensors")
    out = os.path.join(args.dir, "ember_out.safetensors")
    tensors = {}
    for name, c in cases.items():
        dtype = c["scores"].dtype
        tensors[f"{name}.scores"] = c["scores"]
        tensors[f"{name}.policy"] = c["policy"]
        tensors[f"{name}.ref"] = c["ref"]
        tensors[f"{name}.sizes"] = torch.tensor(c["sizes"], dtype=torch.int64)
        tensors[f"{name}.beta"] = torch.tensor([c["beta"]], dtype=torch.float64)
    save_file(tensors, inputs)
    subprocess.run([args.tool, "--inputs", inputs, "--out", out], check=True)
    got = load_file(out)

    failures = []
    for name, c in cases.items():
        bt, bt_grad, dpo, dpo_grad = torch_losses(F, torch, c["scores"], c["policy"], c["ref"], c["sizes"], c["beta"])
        for key, want in (("bt_loss", bt), ("bt_grad", bt_grad), ("dpo_loss", dpo), ("dpo_grad", dpo_grad)):
            have = got[f"{name}.{key}"]
            if have.dtype != want.dtype or tuple(have.reshape(-1).shape) != tuple(want.reshape(-1).shape):
                failures.append(f"{name}.{key}: ember {have.dtype} {tuple(have.shape)} vs torch "
                                f"{want.dtype} {tuple(want.shape)}")
                continue
            e = rel_err(have.reshape(-1), want.reshape(-1))
            print(f"{name}.{key}: rel err {e:.3g}" + (f"  (ember {float(have):.9g}, torch {float(want):.9g})"
                                                      if want.numel() == 1 else ""))
            if not e <= TOL:
                failures.append(f"{name}.{key} differs: {e:.3g} > {TOL}")
        if float(got[f"{name}.dpo_ref_grad_defined"]) != 0.0:
            failures.append(f"{name}: ember's DPO loss sent a gradient to the reference log-probabilities")

    if failures:
        print("FAIL:\n  " + "\n  ".join(failures))
        return 1
    print(f"preference_losses conformance: OK ({len(cases)} cases, tolerance {TOL})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
