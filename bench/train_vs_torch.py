"""`ember bench train` against the same GPT in PyTorch, measured in the same run.

Alternates `ember bench train` and bench/torch_train.py (eager and, with
--compile, torch.compile) for --rounds rounds at the same preset and thread
count, and prints one JSON line with each side's median tokens/s over the
rounds and the ratios ember / torch (> 1: ember faster). With --compile ember
also runs `bench train --compile` (ember::compile), and the line adds the
compiled step's speed and peak allocator memory against ember's eager step.
Alternating spreads the noise of a shared machine over all sides.

    /root/.cache/ember/peers-venv/bin/python bench/train_vs_torch.py \
        --ember build/ember --preset small --threads 2 --rounds 3 --compile
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def last_json_lines(text):
    return [json.loads(l) for l in text.splitlines() if l.startswith("{")]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ember", required=True, help="path to the ember binary")
    p.add_argument("--preset", default="small")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--compile", action="store_true")
    a = p.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    runs = {"ember": [], "ember-compile": [], "torch-eager": [], "torch-compile": []}
    alloc = {"ember": [], "ember-compile": []}
    extra = {}
    for _ in range(a.rounds):
        for side in ["ember"] + (["ember-compile"] if a.compile else []):
            cmd = [a.ember, "bench", "train", "--preset", a.preset, "--steps", str(a.steps), "--threads", str(a.threads)]
            if "peak_gflops" in extra:
                cmd += ["--peak-gflops", str(extra["gemm_peak_gflops"])]  # measure the peak once
            out = subprocess.run(cmd + (["--compile"] if side == "ember-compile" else []), env=env, check=True,
                                 capture_output=True, text=True)
            e = last_json_lines(out.stdout)[-1]
            runs[side].append(e["tokens_per_s"])
            alloc[side].append(e["peak_alloc_mb"])
            extra["peak_gflops"] = True
            extra["gemm_peak_gflops"] = e["gemm_peak_gflops"]
            if side == "ember":
                extra["ember_mfu"] = e["mfu"]
                extra["ember_peak_rss_mb"] = e["peak_rss_mb"]
        cmd = [sys.executable, os.path.join(HERE, "torch_train.py"), "--preset", a.preset, "--steps", str(a.steps),
               "--threads", str(a.threads)] + (["--compile"] if a.compile else [])
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        for t in last_json_lines(out.stdout):
            if "tokens_per_s" in t:
                runs[t["peer"]].append(t["tokens_per_s"])
                extra["torch"] = t["torch"]
            elif "error" in t:
                extra["torch_compile_error"] = t["error"]
    med = {k: round(statistics.median(v), 1) for k, v in runs.items() if v}
    result = {"bench": "train_vs_torch", "preset": a.preset, "threads": a.threads, "rounds": a.rounds,
              "steps": a.steps, "tokens_per_s_median": med,
              "tokens_per_s_all": {k: [round(x, 1) for x in v] for k, v in runs.items() if v}}
    for peer in ("torch-eager", "torch-compile"):
        if peer in med:
            result[f"ember_over_{peer.replace('-', '_')}"] = round(med["ember"] / med[peer], 3)
    if "ember-compile" in med:
        result["ember_compile_over_ember"] = round(med["ember-compile"] / med["ember"], 3)
        if "torch-compile" in med:
            result["ember_compile_over_torch_compile"] = round(med["ember-compile"] / med["torch-compile"], 3)
        m = {k: statistics.median(v) for k, v in alloc.items()}
        result["peak_alloc_mb_median"] = {k: round(v, 1) for k, v in m.items()}
        result["ember_compile_peak_alloc_over_ember"] = round(m["ember-compile"] / m["ember"], 3)
    extra.pop("peak_gflops", None)
    result.update(extra)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
