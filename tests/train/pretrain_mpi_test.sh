#!/bin/sh
# `ember pretrain` under `mpirun -np 2` with 4 sequences per rank takes the same
# steps as one process with 8 sequences: the logged losses agree to float32
# rounding (the ranks' gradients are averaged in a different order), rank 0
# alone writes the run folder, and the 2-rank run resumes from its checkpoint.
# Usage: pretrain_mpi_test.sh EMBER_BINARY WORK_DIR
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ember=$(realpath "$1")
work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
. "$here/tiny_data.sh"

export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
common="--config config.json --data data --tokenizer tok --seq-len 64 --steps 12 --eval-every 6 \
  --peak-gflops 100 --sample-tokens 0 --lr 3e-3"
"$ember" pretrain $common --batch 8 --out one >/dev/null 2>&1
mpirun --oversubscribe -np 2 "$ember" pretrain $common --batch 4 --out two >/dev/null 2>&1
mpirun --oversubscribe -np 2 "$ember" pretrain $common --batch 4 --stop-after 6 --out resumed >/dev/null 2>&1
mpirun --oversubscribe -np 2 "$ember" pretrain $common --batch 4 --resume --out resumed >/dev/null 2>&1

python3 - "$work" <<'PY'
import json, sys
def records(run, kind):
    with open(f"{sys.argv[1]}/{run}/metrics.jsonl") as f:
        return [r for r in map(json.loads, f) if r["kind"] == kind]
one, two, res = (records(r, "train") for r in ("one", "two", "resumed"))
assert len(one) == len(two) == len(res) == 12, (len(one), len(two), len(res))
worst = max(abs(a["loss"] - b["loss"]) / abs(a["loss"]) for a, b in zip(one, two))
assert worst < 1e-4, f"2 ranks x 4 differ from 1 rank x 8 by {worst:.2e} (relative)"
assert [r["loss"] for r in two] == [r["loss"] for r in res], "the resumed 2-rank run differs from the uninterrupted one"
ev1, ev2 = records("one", "eval")[-1]["val_loss"], records("two", "eval")[-1]["val_loss"]
assert abs(ev1 - ev2) / ev1 < 1e-4, (ev1, ev2)
print(f"ok: 12 steps, 2 ranks x 4 = 1 rank x 8 within {worst:.1e}; val {ev2:.5f}; 2-rank resume bit-identical")
PY
