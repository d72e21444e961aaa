#!/bin/sh
# 2-D parallelism: `mpirun -np 4 ember pretrain --tensor-parallel 2 --batch 4`
# makes two tensor-parallel groups of 2 ranks (each group one model split by
# heads and MLP width), data parallel to each other: each group trains its own
# 4 rows of a global batch of 8, the groups' gradients are averaged. That is one
# process with --batch 8 to float32 rounding (logged losses, gradient norms and
# validation loss; measured: 4.3e-8, 1.1e-7 and 2.2e-8 relative; bound 1e-6).
# Checkpoints are single-process ones: TP2xDP2 resumes on 1 process, 1 process
# resumes as TP2xDP2. Errors: rank counts that do not split into groups.
# Usage: pretrain_tp_dp_test.sh MPIEXEC EMBER_BINARY WORK_DIR
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/mpi_test_dir.sh"
. "$here/tiny_data.sh"

mpi="$mpirun --oversubscribe -np"
common="--config config.json --data data --tokenizer tok --seq-len 64 --steps 6 --eval-every 3 --peak-gflops 100 --lr 3e-3"
"$ember" pretrain $common --batch 8 --sample-tokens 0 --out one >/dev/null 2>&1
# Samples on: rank 0's group samples, its two ranks agreeing token by token.
$mpi 4 "$ember" pretrain $common --batch 4 --tensor-parallel 2 --sample-tokens 8 --out tpdp >/dev/null 2>&1
$mpi 4 "$ember" pretrain $common --batch 4 --tensor-parallel 2 --sample-tokens 0 --stop-after 3 --out tpdp_to_one \
  >/dev/null 2>&1
"$ember" pretrain $common --resume --out tpdp_to_one >/dev/null 2>&1
"$ember" pretrain $common --batch 8 --sample-tokens 0 --stop-after 3 --out one_to_tpdp >/dev/null 2>&1
$mpi 4 "$ember" pretrain $common --tensor-parallel 2 --resume --out one_to_tpdp >/dev/null 2>&1

# One-line errors (expect_error.sh).
. "$here/expect_error.sh"
expect_error split3 "--tensor-parallel 2: 3 ranks do not split into groups of 2 (run a multiple of 2 ranks)" \
  $mpi 3 "$ember" pretrain $common --batch 4 --tensor-parallel 2 --out bad3
expect_error bigger "--tensor-parallel 4: groups of 4 ranks need at least 4 ranks, the run has 2" \
  $mpi 2 "$ember" pretrain $common --batch 4 --tensor-parallel 4 --out bad4
expect_error accum "--grad-accum 2 with 2 tensor-parallel groups is not supported" \
  $mpi 4 "$ember" pretrain $common --batch 2 --grad-accum 2 --tensor-parallel 2 --out bada

python3 - "$work" "$here" <<'PY'
import functools, json, sys
sys.path.insert(0, sys.argv[2])
import run_metrics
from run_metrics import rel
records = functools.partial(run_metrics.records, sys.argv[1])
tol = 1e-6
d, dn, de = run_metrics.assert_parallel_matches(sys.argv[1], "one", "tpdp", 6, tol, "TP2 x DP2 (batch 4 per group)")
one, tpdp = records("one", "train"), records("tpdp", "train")
with open(f"{sys.argv[1]}/tpdp/latest/trainer.json") as f:
    t = json.load(f)
assert (t["world"], t["tensor_parallel"], t["data_parallel"], t["global_batch"]) == (4, 2, 2, 8), t
print(f"ok: 6 steps, TP2 x DP2 x batch 4 = 1 process x batch 8 within {d:.1e} (loss), {dn:.1e} (grad norm), "
      f"{de:.1e} (val loss)")
for run, how in (("tpdp_to_one", "TP2 x DP2 -> 1 process"), ("one_to_tpdp", "1 process -> TP2 x DP2")):
    got = records(run, "train")
    assert len(got) == 6, (run, len(got))
    d = max(rel(one, got), rel(tpdp, got))
    assert d < tol, f"{how}: differs from the uninterrupted runs by {d:.2e} (relative)"
    print(f"ok: resumed at step 3, {how}: within {d:.1e} of the uninterrupted runs")
PY
