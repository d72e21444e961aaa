#!/bin/sh
# The compiled paths of the command line: `ember bench train --compile` (the
# whole step, AdamW included, as one graph) ends with the eager run's loss;
# `ember bench generate --compile` reports the compiled and eager prefill;
# `ember graph dump --what step --stats` shows every mutation of the step
# (parameters, moments, step counters) computed in place; `--what prefill`
# runs the last block on the last position only (slice sinking).
# usage: compile_cli_test.sh EMBER WORK_DIR
set -eu
ember=$(realpath "$1"); work="$2"
rm -rf "$work"; mkdir -p "$work"; cd "$work"
export OMP_NUM_THREADS=1
fail() { echo "FAIL: $*"; exit 1; }

args="--preset tiny --steps 2 --warmup 1 --batch 2 --seq-len 32 --peak-gflops 100"
"$ember" bench train $args > eager.json || fail "bench train"
"$ember" bench train $args --compile > compiled.json || fail "bench train --compile"
python3 - eager.json compiled.json <<'PY' || fail "compiled and eager training differ"
import json, sys
e, c = (json.load(open(p)) for p in sys.argv[1:3])
assert c["compile"] is True and e["compile"] is False
assert set(e) == set(c), set(e) ^ set(c)
assert abs(e["final_loss"] - c["final_loss"]) <= 1e-5, (e["final_loss"], c["final_loss"])
PY

"$ember" bench generate --preset tiny --compile --prompt-len 16 --tokens 2 --runs 1 > gen.json || fail "bench generate --compile"
python3 - gen.json <<'PY' || fail "bench generate --compile fields"
import json, sys
g = json.load(open(sys.argv[1]))
for k in ("prefill_tokens_per_s", "decode_tokens_per_s", "weight_bytes", "prefill_eager_tokens_per_s",
          "prefill_compiled_vs_eager", "prefill_runner_tokens_per_s", "prefill_compiled_live_weights_tokens_per_s",
          "prefill_compiled_live_weights_vs_eager"):
    assert k in g and g[k] > 0, k
assert g["compile"] is True
PY
"$ember" bench generate --preset tiny --compile --quant int8 --prompt-len 16 --tokens 2 --runs 1 > q.out 2> q.err &&
  fail "--compile with --quant should be refused"
grep -q "drop --quant" q.err || { cat q.err; fail "no clear error for --compile --quant"; }

"$ember" graph dump --preset tiny --what step --batch 1 --seq-len 16 --stats > step.json || fail "graph dump --what step"
python3 - step.json <<'PY' || fail "step graph"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["grads"] == 0, s["grads"]
assert s["mutations"] > 0 and s["mutations"] == s["plan_mutations_in_place"], (s["mutations"], s["plan_mutations_in_place"])
PY
# The prefill graph: slice sinking runs the last block on the last position.
"$ember" graph dump --preset tiny --what prefill --seq-len 16 --stats > prefill.json || fail "graph dump --what prefill"
python3 - prefill.json <<'PY' || fail "prefill graph"
import json, sys
s = json.load(open(sys.argv[1]))
sunk = [p["changed"] for p in s["passes"] if p["pass"] == "slice_sinking"]
assert sunk and sunk[0] > 0, s["passes"]
PY
"$ember" graph dump --preset tiny --what prefill --seq-len 16 > prefill.txt || fail "graph dump --what prefill (IR)"
[ "$(grep -c 'linear(.*: float32\[1, 1, ' prefill.txt)" -eq 4 ] || { cat prefill.txt; fail "the last block does not run on one row"; }
# Frozen weights: every linear reads its weight packed once (when this build
# has the packed GEMM: AVX2 + FMA, which every host this runs on has).
"$ember" graph dump --preset tiny --what prefill --seq-len 16 --freeze > frozen.txt || fail "graph dump --freeze"
[ "$(grep -c ' linear(' frozen.txt)" -eq 0 ] && [ "$(grep -c ' linear_prepacked(' frozen.txt)" -eq 17 ] ||
  { cat frozen.txt; fail "--freeze left linears unpacked"; }
"$ember" graph dump --preset tiny --what step --freeze > frozen_step.out 2> frozen_step.err &&
  fail "--freeze of a training step should be refused"
grep -q "inference graphs" frozen_step.err || { cat frozen_step.err; fail "no clear error for --freeze --what step"; }

echo "compile CLI: ok"
