"""PyTorch peer for `ember bench train`: the same GPT preset, trained the same way.

A GPT-2-style model (layer norm, learned positions, tanh GELU, biases, tied
embeddings) built from torch.nn with the preset's sizes, trained on random
tokens with AdamW (fused where available), gradient clipping at 1.0, float32,
on the CPU or (--device cuda) a GPU with TF32 off, as ember's float32 matmuls. Times --steps steps after --warmup untimed ones, in eager mode and
(with --compile) under torch.compile, and prints one JSON line per mode:
{"bench": "train", "peer": "torch-eager" | "torch-compile", "tokens_per_s", "step_ms", ...}.

    /root/.cache/ember/peers-venv/bin/python bench/torch_train.py --preset small --threads 2 --compile
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {  # n_layer, n_head, n_embd, vocab, block, batch (ember's GPTConfig presets)
    "tiny": (4, 4, 256, 8192, 256, 8),
    "small": (6, 6, 384, 16384, 256, 8),
    "gpt2": (12, 12, 768, 50257, 1024, 8),
}


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, L, H, C, V, block):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(block, C)
        self.h = nn.ModuleList(Block(C, H) for _ in range(L))
        self.ln_f = nn.LayerNorm(C)
        self.lm_head = nn.Linear(C, V, bias=False)
        self.lm_head.weight = self.wte.weight
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for b in self.h:
            x = b(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def run(mode, args):
    L, H, C, V, block, batch = PRESETS[args.preset]
    B = args.batch or batch
    T = args.seq_len or block
    torch.manual_seed(1234)
    model = GPT(L, H, C, V, block).to(args.device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    try:
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                                lr=1e-4, fused=True)
    except (RuntimeError, TypeError):
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                                lr=1e-4)
    fwd = torch.compile(model) if mode == "compile" else model
    x = torch.randint(0, V, (B, T), device=args.device)
    y = torch.randint(0, V, (B, T), device=args.device)
    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = fwd(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss_value = loss.item()  # waits for the GPU
        if i >= args.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    step_ms = statistics.median(times)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"bench": "train", "peer": f"torch-{mode}", "torch": torch.__version__, "preset": args.preset,
                      "device": args.device, "threads": torch.get_num_threads(), "batch": B, "seq_len": T, "params": params,
                      "steps": args.steps, "tokens_per_s": B * T / (step_ms / 1e3), "step_ms": step_ms,
                      "step_ms_min": min(times), "step_ms_max": max(times), "final_loss": loss_value}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="small", choices=sorted(PRESETS))
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=0)
    p.add_argument("--seq-len", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--compile", action="store_true", help="also time torch.compile (after eager)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.backends.cuda.matmul.allow_tf32 = False  # true float32 products, as ember's
    torch.backends.cudnn.allow_tf32 = False
    run("eager", a)
    if a.compile:
        try:
            run("compile", a)
        except Exception as e:  # inductor needs a working C++ toolchain; report instead of dying
            print(json.dumps({"bench": "train", "peer": "torch-compile", "error": f"{type(e).__name__}: {e}"[:300]}))


if __name__ == "__main__":
    main()
