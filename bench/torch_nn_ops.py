"""PyTorch timings of the fused nn ops on the shapes of bench/nn_ops_bench.cpp.

Forward plus backward as in training (attention with is_causal=True, layer norm
with weight and bias, softmax, mean cross-entropy), float32 on the CPU with
torch.set_num_threads(2) unless --threads says otherwise. Prints one JSON line:
{"peer": "torch", "version": ..., "threads": ..., "ms": {name: median ms}}, with
names matching the Google Benchmark names of nn_ops_bench (without /real_time).

    /root/.cache/ember/peers-venv/bin/python bench/torch_nn_ops.py
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F


def median_ms(fn, repeats, min_time=0.2):
    fn()  # warm-up (allocations, kernel selection)
    samples = []
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        samples.append(elapsed / n * 1e3)
    return statistics.median(samples)


def rnd(*shape, grad=True):
    return torch.randn(*shape, dtype=torch.float32, requires_grad=grad)


def attention(B, H, T, D, backward):
    q, k, v, g = rnd(B, H, T, D), rnd(B, H, T, D), rnd(B, H, T, D), rnd(B, H, T, D, grad=False)

    def run():
        if backward:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            torch.autograd.grad(o, (q, k, v), g)
        else:
            with torch.no_grad():
                F.scaled_dot_product_attention(q, k, v, is_causal=True)

    return run


def layer_norm(N, C):
    x, w, b, g = rnd(N, C), rnd(C), rnd(C), rnd(N, C, grad=False)

    def run():
        y = F.layer_norm(x, (C,), w, b, 1e-5)
        torch.autograd.grad(y, (x, w, b), g)

    return run


def softmax(N, C, backward):
    x, g = rnd(N, C), rnd(N, C, grad=False)

    def run():
        if backward:
            torch.autograd.grad(F.softmax(x, -1), (x,), g)
        else:
            with torch.no_grad():
                F.softmax(x, -1)

    return run


def cross_entropy(N, C):
    z = rnd(N, C)
    t = torch.randint(0, C, (N,))

    def run():
        torch.autograd.grad(F.cross_entropy(z, t), (z,))

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cases = {}
    for H in (4, 6):
        for bwd in (0, 1):
            cases[f"BM_Attention/B:8/H:{H}/T:256/D:64/causal:1/bwd:{bwd}"] = attention(8, H, 256, 64, bwd)
    for C in (256, 384):
        cases[f"BM_LayerNorm/N:2048/C:{C}"] = layer_norm(2048, C)
    for bwd in (0, 1):
        cases[f"BM_Softmax/N:2048/C:8192/bwd:{bwd}"] = softmax(2048, 8192, bwd)
    cases["BM_CrossEntropy/N:2048/C:8192"] = cross_entropy(2048, 8192)
    ms = {name: round(median_ms(fn, args.repeats), 4) for name, fn in cases.items()}
    print(json.dumps({"peer": "torch", "version": torch.__version__, "threads": args.threads, "ms": ms}))


if __name__ == "__main__":
    main()
