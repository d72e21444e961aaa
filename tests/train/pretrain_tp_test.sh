#!/bin/sh
# `mpirun -np 2 ember pretrain --tensor-parallel`: both ranks train one model
# split across them (heads and MLP) on the same 8 sequences per step, and take
# the same steps as one process: logged losses and gradient norms agree to
# float32 rounding (the row-parallel sums and the norm add up in another
# order; measured at 10 steps: losses identical, gradient norms within 1.8e-7
# relative; bound 1e-6). Checkpoints are ordinary single-process ones: a tensor-parallel
# checkpoint resumes on 1 rank, a 1-rank checkpoint resumes under
# --tensor-parallel, and a tensor-parallel run resumes itself bit for bit.
# A second config (RMSNorm, RoPE, SwiGLU, grouped-query attention, no biases)
# checks the split of q | k | v and of SwiGLU's gate | value, optimizer state
# included. Errors: heads that do not divide by the ranks, --zero, --compile.
# Usage: pretrain_tp_test.sh MPIEXEC EMBER_BINARY WORK_DIR
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/mpi_test_dir.sh"
. "$here/tiny_data.sh"
cat > modern.json <<'JSON'
{"n_layer": 2, "n_head": 4, "n_kv_head": 2, "n_embd": 64, "vocab_size": 400, "block_size": 64,
 "norm": "rmsnorm", "position": "rope", "mlp": "swiglu", "bias": false, "tied_embeddings": false,
 "dropout": 0.0, "batch_size": 4, "rope_theta": 10000.0, "norm_eps": 1e-5}
JSON

mpi="$mpirun --oversubscribe -np"
common="--data data --tokenizer tok --seq-len 64 --steps 10 --eval-every 5 --peak-gflops 100 --lr 3e-3 --batch 8"
# Samples on: under tensor parallelism every rank samples (the ranks must agree token by token).
gpt2="--config config.json $common --sample-tokens 8"
modern="--config modern.json $common --sample-tokens 0"
"$ember" pretrain $gpt2 --out one >/dev/null 2>&1
$mpi 2 "$ember" pretrain $gpt2 --tensor-parallel --out tp >/dev/null 2>&1
$mpi 2 "$ember" pretrain $gpt2 --tensor-parallel --stop-after 5 --out tp_self >/dev/null 2>&1
cp -R tp_self tp_to_one
$mpi 2 "$ember" pretrain $gpt2 --tensor-parallel --resume --out tp_self >/dev/null 2>&1
"$ember" pretrain $gpt2 --resume --out tp_to_one >/dev/null 2>&1
"$ember" pretrain $gpt2 --stop-after 5 --out one_to_tp >/dev/null 2>&1
$mpi 2 "$ember" pretrain $gpt2 --tensor-parallel --resume --out one_to_tp >/dev/null 2>&1
"$ember" pretrain $modern --out m_one >/dev/null 2>&1
$mpi 2 "$ember" pretrain $modern --tensor-parallel --stop-after 5 --out m_tp >/dev/null 2>&1
"$ember" pretrain $modern --resume --out m_tp >/dev/null 2>&1

# One-line errors (expect_error.sh).
. "$here/expect_error.sh"
expect_error heads3 "--tensor-parallel on 3 ranks: n_head = 2 does not divide by 3" \
  $mpi 3 "$ember" pretrain $gpt2 --tensor-parallel --out bad3
expect_error kv4 "--tensor-parallel on 4 ranks: n_kv_head = 2 does not divide by 4" \
  $mpi 4 "$ember" pretrain $modern --tensor-parallel --out bad4
expect_error zero "--tensor-parallel does not combine with --zero" \
  $mpi 2 "$ember" pretrain $gpt2 --tensor-parallel --zero --out badz
expect_error compile "--tensor-parallel does not combine with --compile" \
  "$ember" pretrain $gpt2 --tensor-parallel --compile --out badc

python3 - "$work" "$here" <<'PY'
import functools, sys
sys.path.insert(0, sys.argv[2])
import run_metrics
from run_metrics import rel
records = functools.partial(run_metrics.records, sys.argv[1])
tol = 1e-6
d, dn, de = run_metrics.assert_parallel_matches(sys.argv[1], "one", "tp", 10, tol, "2 tensor-parallel ranks")
one, tp = records("one", "train"), records("tp", "train")
print(f"ok: 10 steps, 2 tensor-parallel ranks = 1 process within {d:.1e} (loss), {dn:.1e} (grad norm), "
      f"{de:.1e} (val loss)")
assert [r["loss"] for r in records("tp_self", "train")] == [r["loss"] for r in tp], "TP resume is not bit-identical"
print("ok: a tensor-parallel run resumed under --tensor-parallel is bit-identical to the uninterrupted one")
for run, ref, how in (("tp_to_one", tp, "2 tensor-parallel ranks -> 1 process"),
                      ("one_to_tp", one, "1 process -> 2 tensor-parallel ranks")):
    got = records(run, "train")
    assert len(got) == 10 and [r["loss"] for r in got[:5]] == [r["loss"] for r in ref[:5]], run
    d = max(rel(ref, got), rel(one, got))
    assert d < tol, f"{how}: differs from the uninterrupted runs by {d:.2e} (relative)"
    print(f"ok: resumed at step 5, {how}: within {d:.1e} of the uninterrupted runs")
m_one, m_tp = records("m_one", "train"), records("m_tp", "train")
d = rel(m_one, m_tp)
assert len(m_tp) == 10 and d < tol, f"RMSNorm/RoPE/SwiGLU/GQA: tensor-parallel then 1 process differs by {d:.2e}"
print(f"ok: RMSNorm/RoPE/SwiGLU/GQA, 5 steps on 2 tensor-parallel ranks then 5 on 1 process = 1 process within {d:.1e}")
PY
