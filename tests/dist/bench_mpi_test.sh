#!/bin/sh
# `mpirun -np 2 ember bench train`: one JSON line with the data-parallel
# all-reduce figures (allreduce_overlap and allreduce_hidden are fractions,
# the times are positive, gradient_mb is every parameter in float32), and with
# --zero the same final loss with half the optimizer state per rank; with
# --tensor-parallel the final loss of one process on the same batch, with
# about half the optimizer state per rank (the embeddings stay whole).
# usage: bench_mpi_test.sh MPIRUN EMBER WORK_DIR
set -eu
mpirun=$1; ember=$(realpath "$2"); work="$3"
rm -rf "$work"; mkdir -p "$work"; cd "$work"
fail() { echo "FAIL: $*"; exit 1; }

args="--preset tiny --steps 2 --warmup 1 --batch 2 --seq-len 32 --peak-gflops 100 --threads 1"
$mpirun --allow-run-as-root --oversubscribe -np 2 "$ember" bench train $args > dp.json || fail "bench train, 2 ranks"
$mpirun --allow-run-as-root --oversubscribe -np 2 "$ember" bench train $args --zero > zero.json || fail "bench train --zero"
$mpirun --allow-run-as-root --oversubscribe -np 2 "$ember" bench train $args --tensor-parallel > tp.json ||
  fail "bench train --tensor-parallel"
"$ember" bench train $args > one.json || fail "bench train, 1 process"
python3 - dp.json zero.json tp.json one.json <<'PY' || fail "bench train fields"
import json, sys
lines = [open(p).read().strip().splitlines() for p in sys.argv[1:5]]
assert all(len(l) == 1 for l in lines), lines  # one line, from rank 0
dp, zero, tp, one = (json.loads(l[0]) for l in lines)
assert dp["ranks"] == 2 and dp["zero"] is False and zero["zero"] is True
for k in ("allreduce_overlap", "allreduce_hidden"):
    assert 0 <= dp[k] <= 1, (k, dp[k])
assert dp["allreduce_exposed_ms"] >= 0 and dp["allreduce_alone_ms"] > 0, dp
assert abs(dp["gradient_mb"] - dp["params"] * 4 / 2**20) < 1e-6, dp
assert dp["buckets"] >= 1
assert "allreduce_overlap" not in zero
assert abs(zero["optimizer_state_mib"] - dp["optimizer_state_mib"] / 2) < 1e-3, (zero, dp)
assert abs(zero["final_loss"] - dp["final_loss"]) <= 1e-5, (zero["final_loss"], dp["final_loss"])
assert tp["tensor_parallel"] is True and tp["params"] == one["params"] and "allreduce_overlap" not in tp
assert abs(tp["final_loss"] - one["final_loss"]) <= 1e-5 * abs(one["final_loss"]), (tp["final_loss"], one["final_loss"])
assert tp["optimizer_state_mib"] < 0.8 * one["optimizer_state_mib"], (tp, one)
print(f"ok: overlap {dp['allreduce_overlap']:.2f}, exposed {dp['allreduce_exposed_ms']:.1f} ms, "
      f"alone {dp['allreduce_alone_ms']:.1f} ms; ZeRO-1 {zero['optimizer_state_mib']:.2f} MiB per rank; tensor parallel "
      f"{tp['optimizer_state_mib']:.2f} MiB per rank, final loss {tp['final_loss']:.6f} vs {one['final_loss']:.6f}")
PY
