#!/usr/bin/env python3
"""Quantized checkpoints against the official `safetensors` package and numpy.

A float32 checkpoint with random weights is written here (numpy + safetensors, the
scripted checkpoint's byte tokenizer, a GPT config whose widths are not multiples of
the int4 groups), `ember quantize` turns it into int8, int4 and f16 copies, and then:
  - the official package reads each model.safetensors (so every dtype and offset is
    valid per the spec): quantized weights are I8 / U8 / F16, scales F32 (none for
    f16), with the shapes and metadata docs/SERVING.md gives;
  - numpy dequantizes them by the documented layout alone (codes, nibble order, scale
    per row or per group) and every weight is within half a scale step of the float
    one; f16 weights equal numpy's own float32 -> float16 rounding bit for bit;
    every other tensor is unchanged;
  - `ember sample` runs the quantized copies.

Usage: quantized_safetensors.py --ember EMBER --tool MAKE_SCRIPTED_CHECKPOINT --dir DIR
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

CONFIG = {"n_layer": 2, "n_head": 2, "n_kv_head": 2, "n_embd": 48, "vocab_size": 259, "block_size": 64,
          "norm": "layernorm", "position": "learned", "mlp": "gelu", "bias": True, "tied_embeddings": True,
          "dropout": 0.0, "rope_theta": 10000.0, "norm_eps": 1e-5, "batch_size": 8}
LINEARS = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]


def float_weights(rng):
    C, V, L = CONFIG["n_embd"], CONFIG["vocab_size"], CONFIG["n_layer"]
    w = {"transformer.wte.weight": (V, C), "transformer.wpe.weight": (CONFIG["block_size"], C),
         "transformer.ln_f.weight": (C,), "transformer.ln_f.bias": (C,), "lm_head.weight": (V, C)}
    for i in range(L):
        p = f"transformer.h.{i}."
        for n in ("ln_1", "ln_2"):
            w[p + n + ".weight"], w[p + n + ".bias"] = (C,), (C,)
        for name, shape in (("attn.c_attn", (3 * C, C)), ("attn.c_proj", (C, C)), ("mlp.c_fc", (4 * C, C)),
                            ("mlp.c_proj", (C, 4 * C))):
            w[p + name + ".weight"], w[p + name + ".bias"] = shape, shape[:1]
    out = {k: (rng.standard_normal(s) * 0.05).astype(np.float32) for k, s in w.items()}
    out["lm_head.weight"] = out["transformer.wte.weight"]  # tied: state_dict names both
    out["transformer.h.0.attn.c_attn.weight"][5, :] = 0.0  # a zero row: scale 0
    return out


def check(path, scheme, group, ref):
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata()
    assert meta["quantization"] == scheme, meta
    assert meta["quantization_head"] == scheme, meta
    if scheme == "int4":
        assert meta["quantization_group_size"] == str(group), meta
    t = load_file(path)
    quantized = ["lm_head.weight"] + [f"transformer.h.{i}.{n}.weight" for i in range(CONFIG["n_layer"]) for n in LINEARS]
    expected = set(ref) | ({q + "_scale" for q in quantized} if scheme != "f16" else set())
    assert set(t) == expected, sorted(set(t) ^ expected)
    worst = 0.0
    for name in quantized:
        w = ref[name]
        rows, cols = w.shape
        if scheme == "f16":
            q = t[name]
            assert q.dtype == np.float16 and q.shape == (rows, cols), (name, q.dtype, q.shape)
            assert np.array_equal(q.view(np.uint16), w.astype(np.float16).view(np.uint16)), name
            worst = max(worst, float((np.abs(q.astype(np.float32) - w) / np.abs(w).max()).max()))
            continue
        q, s = t[name], t[name + "_scale"]
        if scheme == "int8":
            assert q.dtype == np.int8 and q.shape == (rows, cols), (name, q.dtype, q.shape)
            assert s.dtype == np.float32 and s.shape == (rows,), (name, s.shape)
            deq = q.astype(np.float32) * s[:, None]
            step = np.repeat(s[:, None], cols, axis=1)
        else:
            groups = -(-cols // group)
            assert q.dtype == np.uint8 and q.shape == (rows, -(-cols // 2)), (name, q.dtype, q.shape)
            assert s.dtype == np.float32 and s.shape == (rows, groups), (name, s.shape)
            codes = np.empty((rows, q.shape[1] * 2), np.int32)
            codes[:, 0::2], codes[:, 1::2] = q & 0x0F, q >> 4  # the even column in the low nibble
            if cols % 2:
                assert np.all(codes[:, cols] == 8), name  # the pad nibble holds value 0
            step = np.repeat(s, group, axis=1)[:, :cols]
            deq = (codes[:, :cols] - 8).astype(np.float32) * step
        err = np.abs(deq - w)
        assert np.all(err <= step * 0.5 * (1 + 1e-5) + 1e-12), (name, float(err.max()))
        worst = max(worst, float((err / np.maximum(np.abs(w).max(axis=1, keepdims=True), 1e-30)).max()))
    for name in ref:
        if name not in quantized:
            assert t[name].dtype == np.float32 and np.array_equal(t[name], ref[name]), name
    how = f"groups of {group}" if group else "per row" if scheme == "int8" else "IEEE half"
    print(f"{scheme} ({how}): layout, dtypes and metadata as documented; "
          f"max |dequantized - float| / max|row| = {worst:.4f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ember", required=True)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    a.ember, a.tool = os.path.abspath(a.ember), os.path.abspath(a.tool)
    shutil.rmtree(a.dir, ignore_errors=True)
    os.makedirs(a.dir)
    os.chdir(a.dir)
    subprocess.run([a.tool, "scripted"], check=True, stdout=subprocess.DEVNULL)
    os.makedirs("float")
    shutil.copytree("scripted/latest/tokenizer", "float/tokenizer")
    with open("float/trainer.json", "w") as f:
        json.dump({"kind": "sft", "step": 0, "config": CONFIG}, f)
    ref = float_weights(np.random.default_rng(7))
    save_file(ref, "float/model.safetensors", metadata={"format": "pt"})
    for scheme, group in (("int8", 0), ("int4", 32), ("f16", 0)):
        out = f"{scheme}"
        cmd = [a.ember, "quantize", "--checkpoint", "float", "--to", scheme, "--out", out]
        if group:
            cmd += ["--group-size", str(group)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        check(f"{out}/model.safetensors", scheme, group, ref)
        r = subprocess.run([a.ember, "sample", "--checkpoint", out, "--prompt", "hi", "--max-tokens", "4",
                            "--temperature", "0"], capture_output=True)  # random bytes: not UTF-8
        assert r.returncode == 0, r.stderr.decode(errors="replace")
    print("quantized safetensors: ok")


if __name__ == "__main__":
    sys.exit(main())
