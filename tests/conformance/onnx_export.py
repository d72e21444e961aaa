#!/usr/bin/env python3
"""ONNX export conformance: ember's exported GPT forward pass run by onnxruntime.

The tool (onnx_export_tool.cpp) builds two small random GPTs, GPT-2 style and modern
(rmsnorm, RoPE, SwiGLU, grouped-query attention, no biases, untied), and for each writes
an ONNX file through the library (api.onnx, batch 2 x 24 tokens), a checkpoint, and
ember's logits. This script then, per variant:
  api:     runs api.onnx in onnxruntime on the same ids; checks the input/output names,
           dtypes and shapes, and  max|ort - ember| <= 1e-4 * max(1, max|ember|)
  cli:     `ember export --checkpoint run --out cli.onnx --format onnx --json` (batch 1,
           seq_len = block_size by default); the same check on other ids
  padded:  the first 20 of those ids right-padded with token 0 to block_size through
           cli.onnx: the first 20 positions match ember's logits for the 20 tokens alone
           (causal attention; what docs/COMPILER.md promises for shorter prompts)
  errors:  --seq-len over block_size exits 1 with a one-line error; an unknown --format is refused

Usage: onnx_export.py --tool PATH --ember PATH --dir DIR
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

TOL = 1e-4
VARIANTS = ["gpt2_style", "modern"]


def rel_err(got, want):
    return float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()) / max(1.0, float(np.abs(want).max()))


def session(path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def check_io(sess, batch, seq, vocab, where):
    (inp,) = sess.get_inputs()
    (out,) = sess.get_outputs()
    assert inp.name == "input_ids" and inp.type == "tensor(int64)" and list(inp.shape) == [batch, seq], \
        f"{where}: input {inp.name} {inp.type} {inp.shape}"
    assert out.name == "logits" and out.type == "tensor(float)" and list(out.shape) == [batch, seq, vocab], \
        f"{where}: output {out.name} {out.type} {out.shape}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--ember", required=True)
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()

    from safetensors.numpy import load_file

    os.makedirs(args.dir, exist_ok=True)
    subprocess.run([args.tool, "--dir", args.dir], check=True)
    failures = []
    for name in VARIANTS:
        vdir = os.path.join(args.dir, name)
        io = load_file(os.path.join(vdir, "io.safetensors"))
        vocab = io["logits"].shape[-1]

        sess = session(os.path.join(vdir, "api.onnx"))
        check_io(sess, 2, 24, vocab, f"{name}/api.onnx")
        got = sess.run(["logits"], {"input_ids": io["ids"]})[0]
        err_api = rel_err(got, io["logits"])

        cli_path = os.path.join(vdir, "cli.onnx")
        r = subprocess.run([args.ember, "export", "--checkpoint", os.path.join(vdir, "run"), "--out", cli_path,
                            "--format", "onnx", "--json"], capture_output=True, text=True)
        assert r.returncode == 0, f"{name}: ember export failed ({r.returncode}): {r.stderr}"
        summary = json.loads(r.stdout)
        block = io["ids_cli"].shape[1]
        assert summary["batch"] == 1 and summary["seq_len"] == block and summary["bytes"] == os.path.getsize(cli_path), summary
        sess = session(cli_path)
        check_io(sess, 1, block, vocab, f"{name}/cli.onnx")
        err_cli = rel_err(sess.run(["logits"], {"input_ids": io["ids_cli"]})[0], io["logits_cli"])

        short = io["logits_short"].shape[1]
        padded = np.zeros_like(io["ids_cli"])
        padded[:, :short] = io["ids_cli"][:, :short]
        err_pad = rel_err(sess.run(["logits"], {"input_ids": padded})[0][:, :short], io["logits_short"])

        print(f"{name}: max relative |ort - ember| api {err_api:.2e} cli {err_cli:.2e} padded {err_pad:.2e} "
              f"(tolerance {TOL:g}; max |logit| {float(np.abs(io['logits']).max()):.3f})")
        for what, err in (("api", err_api), ("cli", err_cli), ("padded", err_pad)):
            if not err <= TOL:
                failures.append(f"{name} {what}: {err:.3e} > {TOL}")

        bad = subprocess.run([args.ember, "export", "--checkpoint", os.path.join(vdir, "run"), "--out",
                              os.path.join(vdir, "bad.onnx"), "--seq-len", str(block + 1)], capture_output=True, text=True)
        if bad.returncode != 1 or "exceeds the model's block_size" not in bad.stderr or os.path.exists(
                os.path.join(vdir, "bad.onnx")):
            failures.append(f"{name}: --seq-len {block + 1}: exit {bad.returncode}, stderr {bad.stderr!r}")
        other = subprocess.run([args.ember, "export", "--checkpoint", os.path.join(vdir, "run"), "--out",
                                os.path.join(vdir, "m.tflite"), "--format", "tflite"], capture_output=True, text=True)
        if other.returncode == 0 or "format" not in other.stderr:
            failures.append(f"{name}: --format tflite: exit {other.returncode}, stderr {other.stderr!r}")

    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print(f"onnx export conformance: {len(VARIANTS)} variants x 3 checks passed")


if __name__ == "__main__":
    main()
