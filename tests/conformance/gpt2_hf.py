#!/usr/bin/env python3
"""GPT-2 conformance: ember's GPT against Hugging Face transformers' GPT2LMHeadModel.

  import:  transformers builds a random GPT2LMHeadModel (2 layers, 4 heads, n_embd 64,
           vocab 300, n_positions 64, seed 0; every parameter perturbed by N(0, 0.02) so
           biases and LayerNorm gains are not 0 and 1) and saves it with save_pretrained
           (safetensors). ember imports the folder and computes logits, the mean
           cross-entropy of fixed targets (some set to ignore_index -1) and the gradient of
           that loss w.r.t. every parameter (llm.c's golden check). Checked:
             logits:  max|ember - torch| <= 1e-4 * max(1, max|torch|)
             loss:    |ember - torch|    <= 1e-4 * max(1, |torch|)   (also GPT::loss)
             grads:   per tensor, max|ember - torch| <= 1e-5 * max(1e-3, max|torch|)
  export:  ember builds its own model (seed 1234), exports it (model.safetensors +
           config.json); GPT2LMHeadModel.from_pretrained loads it with no missing or
           unexpected keys and its logits match ember's within the logits tolerance.

Usage: gpt2_hf.py --tool PATH --dir DIR
"""
import argparse
import inspect
import os
import subprocess
import sys

LOGIT_TOL = 1e-4
GRAD_TOL = 1e-5
CONFIG = dict(n_layer=2, n_head=4, n_embd=64, vocab_size=300, n_positions=64,
              resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=299, eos_token_id=299)
B, T = 2, 64


def save_pretrained(model, path):
    # transformers 4.x takes safe_serialization; 5.x always writes safetensors.
    if "safe_serialization" in inspect.signature(model.save_pretrained).parameters:
        model.save_pretrained(path, safe_serialization=True)
    else:
        model.save_pretrained(path)


def rel_err(a, b, floor):
    return float((a.double() - b.double()).abs().max()) / max(floor, float(b.double().abs().max()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file, save_file
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.set_num_threads(2)
    os.makedirs(args.dir, exist_ok=True)
    hf_dir = os.path.join(args.dir, "hf")
    inputs = os.path.join(args.dir, "inputs.safetensors")
    ember_out = os.path.join(args.dir, "ember_out.safetensors")
    export_dir = os.path.join(args.dir, "ember_export")

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(**CONFIG))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    model.eval()
    save_pretrained(model, hf_dir)
    assert os.path.exists(os.path.join(hf_dir, "model.safetensors")), os.listdir(hf_dir)

    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, CONFIG["vocab_size"], (B, T), generator=g)
    targets = torch.randint(0, CONFIG["vocab_size"], (B, T), generator=g)
    targets[0, :5] = -1
    targets[1, -3:] = -1
    save_file({"ids": ids, "targets": targets}, inputs)

    logits = model(ids).logits
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
    loss.backward()
    loss = loss.detach()

    subprocess.run([args.tool, "run", "--model", hf_dir, "--inputs", inputs, "--out", ember_out], check=True)
    got = load_file(ember_out)

    failures = []
    e = rel_err(got["logits"], logits.detach(), 1.0)
    print(f"logits: max abs diff / max(1, max|logit|) = {e:.3g} (tolerance {LOGIT_TOL})")
    if e > LOGIT_TOL:
        failures.append(f"logits differ: {e:.3g}")
    for key in ("loss", "model_loss"):
        d = abs(float(got[key]) - float(loss)) / max(1.0, abs(float(loss)))
        print(f"{key}: ember {float(got[key]):.7f} torch {float(loss):.7f} rel diff {d:.3g}")
        if d > LOGIT_TOL:
            failures.append(f"{key} differs: {d:.3g}")

    worst = (0.0, "")
    names = [n for n, _ in model.named_parameters()]
    for name, p in model.named_parameters():
        key = "grad." + name
        if key not in got:
            failures.append(f"ember has no gradient for {name}")
            continue
        if tuple(got[key].shape) != tuple(p.grad.shape):
            failures.append(f"gradient of {name}: shape {tuple(got[key].shape)} vs {tuple(p.grad.shape)}")
            continue
        err = rel_err(got[key], p.grad, 1e-3)
        worst = max(worst, (err, name))
        if err > GRAD_TOL:
            failures.append(f"gradient of {name} differs: {err:.3g}")
    extra = sorted(k[5:] for k in got if k.startswith("grad.") and k[5:] not in names)
    if extra:
        failures.append(f"ember gradients for parameters torch does not have: {extra}")
    print(f"gradients: {len(names)} tensors, worst max abs diff / max(1e-3, max|grad|) = "
          f"{worst[0]:.3g} ({worst[1]}) (tolerance {GRAD_TOL})")

    # ember -> transformers
    subprocess.run([args.tool, "export", "--like", hf_dir, "--seed", "1234", "--inputs", inputs,
                    "--out", export_dir], check=True)
    loaded, info = GPT2LMHeadModel.from_pretrained(export_dir, output_loading_info=True)
    loaded.eval()
    bad_keys = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if bad_keys:
        failures.append(f"from_pretrained reported {bad_keys}")
    with torch.no_grad():
        theirs = loaded(ids).logits
    mine = load_file(os.path.join(export_dir, "ember_logits.safetensors"))["logits"]
    e = rel_err(mine, theirs, 1.0)
    print(f"export: transformers logits vs ember's: {e:.3g} (tolerance {LOGIT_TOL})")
    if e > LOGIT_TOL:
        failures.append(f"exported model's logits differ: {e:.3g}")
    if rel_err(theirs, logits.detach(), 1.0) < 1e-3:
        failures.append("the exported model gives the imported model's logits (same weights?)")

    if failures:
        print("FAIL:\n  " + "\n  ".join(failures))
        return 1
    print("gpt2_hf conformance: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
