#!/bin/sh
# SIGTERM delivered to one rank of `mpirun -np 2 ember pretrain` (rank 1 itself,
# not mpirun, as a scheduler or an operator on one node may do): the ranks agree
# to stop after the step in progress, rank 0 writes a complete checkpoint of
# that step, both ranks exit 143 and so does mpirun, within a bound (no hang);
# `--resume` then continues to the end with exactly the losses of an
# uninterrupted 2-rank run.
# Usage: pretrain_mpi_sigterm_test.sh MPIEXEC EMBER_BINARY WORK_DIR
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/mpi_test_dir.sh"
. "$here/tiny_data.sh"
export EMBER_DIST_TIMEOUT_S=30
fail() { echo "FAIL: $*"; exit 1; }
train="$mpirun --oversubscribe -np 2 $ember pretrain --config config.json --data data --tokenizer tok --seq-len 64
  --steps 300 --eval-every 100 --checkpoint-every 2 --peak-gflops 100 --sample-tokens 0 --batch 2"
# 300 steps (about 4 s): a 60-step run sometimes ended before the test saw a
# checkpoint on a quiet host.
. "$here/latest_step.sh"

$train --out full >full.log 2>&1 || { cat full.log; fail "the uninterrupted run"; }

$train --out term >term.log 2>&1 &  # a simple command: $! is mpirun itself
mpi_pid=$!
# Once a checkpoint exists the ranks are in the training loop.
i=0
until [ "$(latest_step term)" -ge 4 ]; do
  i=$((i + 1))
  [ $i -le 600 ] || { kill -9 $mpi_pid; fail "no checkpoint after 60 s"; }
  kill -0 $mpi_pid 2>/dev/null || { cat term.log; fail "the run ended before a checkpoint"; }
  sleep 0.1
done
victim=
for pid in $(pgrep -P $mpi_pid); do  # mpirun starts the local ranks as its children
  if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1; then victim=$pid; fi
done
[ -n "$victim" ] || { kill -9 $mpi_pid; fail "rank 1's process not found among mpirun's children"; }
kill -TERM "$victim"
# Bounded: a rank left waiting in a collective would hang until EMBER_DIST_TIMEOUT_S (30 s).
i=0
while kill -0 $mpi_pid 2>/dev/null; do
  i=$((i + 1))
  [ $i -le 200 ] || { kill -9 $mpi_pid; cat term.log; fail "the run did not stop within 20 s of SIGTERM"; }
  sleep 0.1
done
rc=0
wait $mpi_pid || rc=$?
[ $rc -eq 143 ] || { cat term.log; fail "mpirun exit code $rc after SIGTERM to rank 1, expected 143"; }
step=$(python3 -c "import json;print(json.load(open('term/latest/trainer.json'))['step'])")
[ "$step" -lt 300 ] || fail "the run finished (step $step) before SIGTERM reached it: make it longer"
grep -q "stopped at step $step by a signal; checkpoint .*ckpt-0*$step (continue with --resume)" term.log ||
  { cat term.log; fail "rank 0 did not report the stop at step $step"; }
ls -A term | grep -q '^\.ckpt-' && { ls -A term; fail "a temporary checkpoint folder was left behind"; }
[ -e "term/ckpt-$(printf %08d "$step")/model.safetensors" ] || fail "no model in the checkpoint of step $step"
echo "ok: SIGTERM to rank 1 stopped both ranks at step $step (exit 143, $((i / 10)).$((i % 10)) s), checkpoint written"

$train --out term --resume >resume.log 2>&1 || { cat resume.log; fail "--resume after SIGTERM"; }
python3 - "$step" <<'PY'
import json, sys
def losses(run):
    with open(f"{run}/metrics.jsonl") as f:
        return [(r["step"], r["loss"]) for r in map(json.loads, f) if r["kind"] == "train"]
a, b = losses("full"), losses("term")
assert len(a) == len(b) == 300, (len(a), len(b))
assert a == b, "resumed losses differ: " + str([(x, y) for x, y in zip(a, b) if x != y][:3])
print(f"ok: resumed at step {sys.argv[1]}, 300 steps identical to the uninterrupted 2-rank run")
PY
