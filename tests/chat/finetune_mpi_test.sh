#!/bin/sh
# The fine-tuning stages under `mpirun -np 2` (data parallel, train/data_parallel_run.h):
# - `ember sft`, `reward` and `dpo` with --batch B on 2 ranks (B/2 each) log the
#   same losses and evaluations as one process with --batch B, and end with the
#   same weights, to float32 rounding; rank 0 alone writes the run folder;
# - the oracle evaluation (greedy replies to held-out prompts, split over the
#   ranks and gathered) gives exactly the one-process figures and samples;
# - a 2-rank checkpoint resumes on 1 rank and a 1-rank one on 2 ranks, following
#   the uninterrupted run; a --batch that does not divide by the ranks and ranks
#   started with different options are one-line errors;
# - `ember ppo` (with PPO-ptx) on 2 ranks (each samples half the rollouts, with the rollouts'
#   own seeds) follows the one-process run, and resumes on 1 rank.
# Usage: finetune_mpi_test.sh MPIEXEC EMBER_BINARY WORK_DIR
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../train/mpi_test_dir.sh"
export EMBER_DIST_TIMEOUT_S=120
mpi="$mpirun --oversubscribe"
fail() { echo "FAIL: $*"; exit 1; }
run() {  # run LOG COMMAND...: quiet unless it fails
  log=$1; shift
  "$@" >"$log" 2>&1 || { cat "$log"; fail "$*"; }
}

# A tiny chat curriculum and a 2-layer GPT pretrained for a few steps.
"$ember" chat-data --preset tiny --out cur --seed 3 >/dev/null
run tok.log "$ember" tokenizer train --input cur/pretrain.txt --vocab-size 400 --out tok
run data.log "$ember" data prepare --tokenizer tok --input cur/pretrain.txt --out data --val-fraction 0.1 --paragraphs
cat > config.json <<'JSON'
{"n_layer": 2, "n_head": 2, "n_kv_head": 2, "n_embd": 64, "vocab_size": 400, "block_size": 256,
 "norm": "layernorm", "position": "learned", "mlp": "gelu", "bias": true, "tied_embeddings": true,
 "dropout": 0.0, "batch_size": 4, "rope_theta": 10000.0, "norm_eps": 1e-5}
JSON
run pre.log "$ember" pretrain --config config.json --data data --tokenizer tok --steps 20 --batch 8 --lr 3e-3 \
  --eval-every 20 --peak-gflops 100 --sample-tokens 0 --out pre

# SFT: one process x 4 rows = 2 ranks x 2 rows; resume across rank counts.
# The oracle on 9 held-out prompts: shares of 4 and 5, rank 0 holding fewer than the 6 samples.
sft="$ember sft --init pre --data cur/sft_train.jsonl --val cur/sft_val.jsonl --steps 8 --batch 4 --eval-every 4 --lr 2e-3"
oracle="--prompts cur/prompts_heldout.jsonl --eval-prompts 9 --max-new-tokens 12"
run sft1.log $sft $oracle --out sft1
run sft2.log $mpi -np 2 $sft $oracle --out sft2
run sft21a.log $mpi -np 2 $sft --stop-after 4 --out sft21
run sft21b.log $sft --resume --out sft21
run sft12a.log $sft --stop-after 4 --out sft12
run sft12b.log $mpi -np 2 $sft --resume --out sft12
. "$here/../train/expect_error.sh"  # each a one-line error, and no other error line
expect_error sft3 "\[sft\] --batch 4 does not divide by the 3 ranks" $mpi -np 3 $sft --out sft3
# Resumed on 3 ranks: the batch comes from the checkpoint, so the error names it, not the flag.
run sft3r.log $sft --stop-after 2 --out sft3r
expect_error sft3r "\[sft\] --resume: the run's --batch 4 (from its trainer.json) does not divide by the 3 ranks" \
  $mpi -np 3 $sft --resume --out sft3r
expect_error mixed "\[sft\] rank 1 runs with other options than rank 0" \
  $mpi -np 1 $sft --out mixed : -np 1 $sft --seed 5 --out mixed

# The reward model and DPO from the SFT checkpoint.
rw="$ember reward --init sft1 --data cur/preferences_train.jsonl --val cur/preferences_val.jsonl --steps 6 --batch 4 \
  --eval-every 3 --lr 1e-3"
run rw1.log $rw --out rw1
run rw2.log $mpi -np 2 $rw --out rw2
run rw21a.log $mpi -np 2 $rw --stop-after 3 --out rw21
run rw21b.log $rw --resume --out rw21
dpo="$ember dpo --init sft1 --data cur/preferences_train.jsonl --val cur/preferences_val.jsonl --steps 6 --batch 4 \
  --eval-every 3 --lr 1e-4"
run dpo1.log $dpo $oracle --out dpo1
run dpo2.log $mpi -np 2 $dpo $oracle --out dpo2
run dpo12a.log $dpo --stop-after 3 --out dpo12
run dpo12b.log $mpi -np 2 $dpo --resume --out dpo12

# PPO: 8 rollouts per iteration, minibatches of 4.
ppo="$ember ppo --policy sft1 --reward rw1 --prompts cur/prompts_rl.jsonl --rollout-batch 8 --minibatch 4 \
  --ppo-epochs 2 --max-new-tokens 12 --lr 1e-4 --critic-lr 1e-4 --ptx-coef 0.5 --ptx-data cur/sft_train.jsonl --quiet"
ppo_oracle="--eval-prompts cur/prompts_heldout.jsonl --eval-count 9 --eval-max-new-tokens 12"
run ppo1.log $ppo $ppo_oracle --iterations 4 --out ppo1
run ppo2.log $mpi -np 2 $ppo $ppo_oracle --iterations 4 --out ppo2
run ppo21a.log $mpi -np 2 $ppo --iterations 2 --out ppo21
run ppo21b.log $ppo --iterations 4 --resume --out ppo21
if $mpi -np 3 $ppo --iterations 1 --out ppo3 >ppo3.log 2>&1; then fail "ppo --rollout-batch 8 ran on 3 ranks"; fi
grep -q "\[ppo\] --rollout-batch 8 does not divide by the 3 ranks" ppo3.log || { cat ppo3.log; fail "no clear ppo error"; }

python3 - <<'PY'
import json, struct, array, math

def records(run, kind):
    with open(f"{run}/metrics.jsonl") as f:
        return [r for r in map(json.loads, f) if r["kind"] == kind]

def weights(run):
    with open(f"{run}/latest/model.safetensors", "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        out[name] = array.array("f", data[8 + n + a:8 + n + b])
    return out

def rel(a, b):  # relative, but absolute (x 10) for values near zero (margins, KL, policy losses)
    return abs(a - b) / max(abs(a), 0.1)

def compare(ref, got, what, keys, tol, kind="train", first_step=0):
    r, g = records(ref, kind), records(got, kind)
    assert len(r) == len(g) and r, (what, kind, len(r), len(g))
    worst = max(rel(x[k], y[k]) for x, y in zip(r, g) for k in keys if k in x and x["step"] >= first_step)
    assert worst < tol, f"{what}: {kind} {keys} differ by {worst:.2e} (relative; bound {tol})"
    return worst

# The weights' difference relative to the training's change of them (from `init`):
# ||w_got - w_ref|| / ||w_ref - w_init||. The reward head's bias is left out: the
# Bradley-Terry loss does not depend on it (it cancels in every pair), so its
# gradient is float rounding alone, which AdamW scales up to steps of +-lr in
# one process as much as on two ranks.
def compare_weights(ref, got, init, what, tol):
    a, b, z = weights(ref), weights(got), weights(init)
    assert a.keys() == b.keys(), what
    num = den = 0.0
    for k in a:
        if k == "score.bias":
            continue
        z0 = z.get(k, [0.0] * len(a[k]))
        num += sum((x - y) ** 2 for x, y in zip(a[k], b[k]))
        den += sum((x - w) ** 2 for x, w in zip(a[k], z0))
    worst = math.sqrt(num / den)
    assert worst < tol, f"{what}: weights differ by {worst:.2e} of their change in training (bound {tol})"
    return worst

# Measured: SFT and reward records within 1e-7 relative, evaluations within
# 7e-7; DPO's margin (a difference of two log-ratios) within 3e-6.
TOL = 2e-6
for stage, init, keys, evkeys in (
        ("sft", "pre", ["loss"], ["val_loss"]),
        ("rw", "sft1", ["loss", "accuracy"], ["val_loss", "val_accuracy", "reward_std", "chosen_reward_std"]),
        ("dpo", "sft1", ["loss", "margin"], ["val_loss", "val_accuracy", "val_margin"])):
    tol = 1e-5 if stage == "dpo" else TOL
    one, two = f"{stage}1", f"{stage}2"
    d = compare(one, two, f"{stage}: 2 ranks vs 1", keys, tol)
    if stage == "dpo":  # at step 1 the policy is the reference: the implicit rewards' signs are float rounding
        d = max(d, compare(one, two, f"{stage}: 2 ranks vs 1", ["accuracy"], tol, first_step=2))
    e = compare(one, two, f"{stage}: 2 ranks vs 1", evkeys, tol, "eval")
    w = compare_weights(one, two, init, f"{stage}: 2 ranks vs 1", 1e-4)
    print(f"ok: {stage} 2 ranks = 1 process: train records within {d:.1e}, evaluations within {e:.1e}, "
          f"weights within {w:.1e} of their change")
# The oracle: at the first evaluation both runs hold the same weights (the
# loaded ones), so the split evaluation must give exactly the one-process
# figures, per-kind counts and sample replies. Later ones see weights that
# differ by float rounding (a greedy token may flip on it): counted, not asserted.
ORACLE = ["oracle_accuracy", "oracle_score", "hallucination", "over_refusal", "by_kind", "samples"]
for one, two in (("sft1", "sft2"), ("dpo1", "dpo2"), ("ppo1", "ppo2")):
    r, g = ([x for x in records(run, "eval") if "oracle_accuracy" in x] for run in (one, two))
    assert len(r) == len(g) >= 2 and len(r[0]["samples"]) == 6, (one, len(r), len(g))
    for k in ORACLE:
        assert r[0][k] == g[0][k], f"{two}: oracle {k} at step {r[0]['step']} differs: {r[0][k]} vs {g[0][k]}"
    same = sum(all(x[k] == y[k] for k in ORACLE) for x, y in zip(r, g))
    print(f"ok: {two} oracle (2 ranks) = {one} exactly at step {r[0]['step']} "
          f"(accuracy {r[0]['oracle_accuracy']:.3f}, score {r[0]['oracle_score']:.4f}); "
          f"{same} of {len(r)} evaluations identical")
for run, ref, how in (("sft21", "sft2", "sft 2 ranks -> 1"), ("sft12", "sft1", "sft 1 rank -> 2"),
                      ("rw21", "rw2", "reward 2 ranks -> 1"), ("dpo12", "dpo1", "dpo 1 rank -> 2")):
    d = compare(ref, run, how, ["loss"], TOL)
    print(f"ok: resumed {how}: within {d:.1e} of the uninterrupted run")
# PPO's normalisation: reward_std as one process's; reward_mean only up to the head's bias (see above),
# so it is compared as its distance from the mean over all responses.
rm1, rm2 = (json.load(open(f"{r}/latest/trainer.json")) for r in ("rw1", "rw2"))
assert rel(rm1["reward_std"], rm2["reward_std"]) < TOL, (rm1, rm2)
gap = [t["reward_mean"] - t["response_reward_mean"] for t in (rm1, rm2)]
assert rel(*gap) < TOL, (rm1, rm2)

# PPO: every rollout keeps its seed on any rank, so the runs match unless a
# sampled token flips on float rounding (then the replies differ from there on).
p1, p2 = records("ppo1", "rollout"), records("ppo2", "rollout")
assert len(p1) == len(p2) == 4
for r in p2:
    for k in ("reward", "kl", "policy_loss", "value_loss", "entropy", "ratio", "clip_fraction", "ptx_loss"):
        assert math.isfinite(r[k]), (k, r)
    assert 0 < r["response_length"] <= 12 and abs(r["ratio"] - 1) < 0.1, r
keys = ["reward", "score", "kl", "policy_loss", "value_loss", "entropy", "approx_kl", "response_length", "ptx_loss"]
d = max(rel(x[k], y[k]) for x, y in zip(p1, p2) for k in keys)
assert d < 2e-5, f"ppo: 2 ranks differ from 1 process by {d:.2e}"
print(f"ok: ppo 2 ranks = 1 process over 4 iterations within {d:.1e}")
r21 = records("ppo21", "rollout")
d = max(rel(x[k], y[k]) for x, y in zip(p2, r21) for k in keys)
assert len(r21) == 4 and d < 2e-5, f"ppo resumed 2 ranks -> 1 differs by {d:.2e}"
print(f"ok: ppo resumed 2 ranks -> 1 within {d:.1e} of the uninterrupted run")
PY
echo "finetune mpi test: ok"
