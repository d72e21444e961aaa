#!/bin/sh
# `ember pretrain` under `mpirun -np 2` with 4 sequences per rank takes the same
# steps as one process with 8 sequences: the logged losses agree to float32
# rounding (the ranks' gradients are averaged in a different order), rank 0
# alone writes the run folder, and the 2-rank run resumes from its checkpoint.
# A checkpoint resumes on another number of ranks with the same global batch
# (8 sequences per step): 2 ranks -> 1 rank x 8, 2 ranks -> 1 rank x 4 x
# grad-accum 2, 1 rank -> 2 ranks x 4, each following the uninterrupted run to
# float32 rounding; 3 ranks cannot keep 8 sequences per step: a one-line error.
# --zero (ZeRO-1) follows plain data parallel with half the optimizer state per
# rank, and its checkpoints resume without --zero and the other way round.
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
# Another number of ranks: the per-rank batch and grad-accum are derived from (or checked against) the global batch.
mpirun --oversubscribe -np 2 "$ember" pretrain $common --batch 4 --stop-after 6 --out shrink >/dev/null 2>&1
cp -R shrink shrink_accum
"$ember" pretrain $common --resume --out shrink >/dev/null 2>&1
"$ember" pretrain $common --resume --grad-accum 2 --out shrink_accum >/dev/null 2>&1
"$ember" pretrain $common --batch 8 --stop-after 6 --out grow >/dev/null 2>&1
cp -R grow grow3
mpirun --oversubscribe -np 2 "$ember" pretrain $common --resume --out grow >/dev/null 2>&1
if mpirun --oversubscribe -np 3 "$ember" pretrain $common --resume --out grow3 >out3.txt 2>&1; then
  echo "FAIL: 3 ranks resumed a checkpoint of 8 sequences per step"; exit 1
fi
grep -q "trains 8 sequences per step, which 3 ranks x --grad-accum 1 cannot divide" out3.txt ||
  { echo "FAIL: no clear error for 3 ranks:"; cat out3.txt; exit 1; }
# ZeRO-1: the same trajectory; checkpoints cross between ZeRO and plain runs and rank counts.
mpirun --oversubscribe -np 2 "$ember" pretrain $common --batch 4 --zero --out zero >/dev/null 2>&1
mpirun --oversubscribe -np 2 "$ember" pretrain $common --batch 4 --zero --stop-after 6 --out zero_to_plain >/dev/null 2>&1
cp -R zero_to_plain zero_accum
"$ember" pretrain $common --resume --out zero_to_plain >/dev/null 2>&1
mpirun --oversubscribe -np 2 "$ember" pretrain $common --resume --zero --grad-accum 2 --out zero_accum >/dev/null 2>&1
cp -R grow3 plain_to_zero
mpirun --oversubscribe -np 2 "$ember" pretrain $common --resume --zero --out plain_to_zero >/dev/null 2>&1
if "$ember" pretrain $common --resume --batch 3 --out grow3 >out1.txt 2>&1; then
  echo "FAIL: --batch 3 resumed a checkpoint of 8 sequences per step"; exit 1
fi
[ "$(grep -c . out1.txt)" = 1 ] && grep -q "1 rank x --batch 3 x --grad-accum 1 does not make" out1.txt ||
  { echo "FAIL: no one-line error for --batch 3:"; cat out1.txt; exit 1; }

python3 - "$work" <<'PY'
import json, sys
def records(run, kind):
    with open(f"{sys.argv[1]}/{run}/metrics.jsonl") as f:
        return [r for r in map(json.loads, f) if r["kind"] == kind]
def rel(a, b):
    return max(abs(x["loss"] - y["loss"]) / abs(x["loss"]) for x, y in zip(a, b))
one, two, res = (records(r, "train") for r in ("one", "two", "resumed"))
assert len(one) == len(two) == len(res) == 12, (len(one), len(two), len(res))
worst = rel(one, two)
assert worst < 1e-6, f"2 ranks x 4 differ from 1 rank x 8 by {worst:.2e} (relative)"
assert [r["loss"] for r in two] == [r["loss"] for r in res], "the resumed 2-rank run differs from the uninterrupted one"
ev1, ev2 = records("one", "eval")[-1]["val_loss"], records("two", "eval")[-1]["val_loss"]
assert abs(ev1 - ev2) / ev1 < 1e-5, (ev1, ev2)
print(f"ok: 12 steps, 2 ranks x 4 = 1 rank x 8 within {worst:.1e}; val {ev2:.5f}; 2-rank resume bit-identical")
for run, ref, how in (("shrink", two, "2 ranks x 4 -> 1 rank x 8"), ("shrink_accum", two, "2 ranks x 4 -> 1 x 4 x accum 2"),
                      ("grow", one, "1 rank x 8 -> 2 ranks x 4")):
    got = records(run, "train")
    assert len(got) == 12, (run, len(got))
    assert [r["loss"] for r in got[:6]] == [r["loss"] for r in ref[:6]], run
    d = rel(ref, got)
    assert d < 1e-6, f"{how}: differs from the uninterrupted run by {d:.2e} (relative)"
    ev = records(run, "eval")[-1]["val_loss"]
    assert abs(ev - ev1) / ev1 < 1e-5, (run, ev, ev1)
    print(f"ok: resumed at step 6, {how}: within {d:.1e} of the uninterrupted run; val {ev:.5f}")
zero = records("zero", "train")
d = rel(two, zero)
assert len(zero) == 12 and d < 1e-6, f"ZeRO-1 differs from plain data parallel by {d:.2e} (relative)"
mib = zero[-1]["optimizer_state_mib"], two[-1]["optimizer_state_mib"]
assert abs(mib[0] - mib[1] / 2) < 1e-3, f"ZeRO-1 on 2 ranks keeps {mib[0]} MiB of optimizer state per rank, plain {mib[1]}"
print(f"ok: ZeRO-1 x 2 ranks = plain data parallel within {d:.1e}; optimizer state {mib[0]:.3f} vs {mib[1]:.3f} MiB per rank")
for run, ref, how in (("zero_to_plain", two, "ZeRO-1 x 2 ranks -> plain 1 rank x 8"),
                      ("zero_accum", two, "ZeRO-1 x 2 ranks x 4 -> ZeRO-1 x 2 ranks x 2 x accum 2"),
                      ("plain_to_zero", one, "plain 1 rank x 8 -> ZeRO-1 x 2 ranks x 4")):
    got = records(run, "train")
    d = rel(ref, got)
    assert len(got) == 12 and d < 1e-6, f"{how}: differs from the uninterrupted run by {d:.2e} (relative)"
    print(f"ok: resumed at step 6, {how}: within {d:.1e} of the uninterrupted run")
PY
