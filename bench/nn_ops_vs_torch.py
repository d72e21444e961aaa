"""ember's fused nn ops against PyTorch, measured in the same run.

Runs bench/nn_ops_bench (ember, Google Benchmark) and bench/torch_nn_ops.py
(PyTorch) alternately for --rounds rounds on the same shapes and thread count,
and prints one JSON line: per benchmark the median over rounds of each side's
median milliseconds and the speed-up torch_ms / ember_ms (> 1: ember faster).

    /root/.cache/ember/peers-venv/bin/python bench/nn_ops_vs_torch.py \
        --ember build/bench/nn_ops_bench --threads 2 --rounds 3
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_ember(binary, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run([binary, "--benchmark_format=json", "--benchmark_repetitions=5",
                          "--benchmark_report_aggregates_only=true", "--benchmark_min_time=0.2"],
                         env=env, check=True, capture_output=True, text=True).stdout
    ms = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name = b["run_name"].removesuffix("/real_time").removesuffix("/min_time:0.200")
        scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]]
        ms[name.replace("/min_time:0.200", "")] = b["real_time"] * scale
    return ms


def run_torch(threads):
    out = subprocess.run([sys.executable, os.path.join(HERE, "torch_nn_ops.py"), "--threads", str(threads)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ember", required=True, help="path to the nn_ops_bench binary")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    ember_runs, torch_runs, version = [], [], None
    for _ in range(a.rounds):
        ember_runs.append(run_ember(a.ember, a.threads))
        t = run_torch(a.threads)
        version = t["version"]
        torch_runs.append(t["ms"])
    result = {}
    for name in torch_runs[0]:
        if not all(name in r for r in ember_runs):
            continue
        e = statistics.median(r[name] for r in ember_runs)
        t = statistics.median(r[name] for r in torch_runs)
        result[name] = {"ember_ms": round(e, 4), "torch_ms": round(t, 4), "speedup": round(t / e, 3)}
    print(json.dumps({"bench": "nn_ops_vs_torch", "torch": version, "threads": a.threads, "rounds": a.rounds,
                      "results": result}))


if __name__ == "__main__":
    main()
