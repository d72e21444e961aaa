#!/bin/sh
# `ember speedrun --preset tiny` end to end through the binary: every stage runs
# and writes the report card and the chat model; a rerun skips finished stages;
# a removed stage is redone alone; the same seed in another folder gives the
# same report numbers (determinism); a run stopped by real signals in the
# middle of SFT (SIGINT) and of PPO (SIGTERM) resumes each stage from its
# checkpoint on the rerun (not from its start) and reports the figures of the
# uninterrupted run; a folder of another preset is refused.
# Usage: speedrun_test.sh EMBER_BINARY WORK_DIR
set -eu
ember=$(realpath "$1")
work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
export OMP_NUM_THREADS=1

fail() { echo "FAIL: $*"; exit 1; }

"$ember" speedrun --preset tiny --out a --quiet --chat none > a.log 2>&1 || { cat a.log; fail "speedrun a"; }
for f in report.md report.json chat/model.safetensors chat/trainer.json chat/tokenizer/tokenizer.json; do
  [ -e "a/$f" ] || fail "no a/$f"
done
grep -q "Held-out evaluation" a/report.md || fail "report.md has no evaluation table"

# A rerun finds every stage done.
"$ember" speedrun --preset tiny --out a --quiet --chat none > rerun.log 2>&1 || { cat rerun.log; fail "rerun"; }
[ "$(grep -c 'skipped' rerun.log)" -ge 10 ] || { cat rerun.log; fail "rerun did not skip the finished stages"; }

# A stage without stage.json runs again alone; DPO's checkpoint holds its last
# step, so it is not retrained, only evaluated again.
rm a/dpo/stage.json
"$ember" speedrun --preset tiny --out a --quiet --chat none > redo.log 2>&1 || { cat redo.log; fail "redo"; }
grep -q "dpo:.*planned" redo.log || { cat redo.log; fail "dpo was not redone"; }
grep -q "dpo finished training before (checkpoint at step 10 of 10)" redo.log || { cat redo.log; fail "dpo was retrained"; }
grep -q "sft: done before" redo.log || { cat redo.log; fail "sft was redone"; }

# Two report.json files hold the same figures (times, paths and where stages resumed aside).
same_figures() {
python3 - "$1" "$2" <<'PY'
import json, sys
SKIP = {"seconds", "total_seconds", "tokens_per_s", "mfu", "checkpoint", "step_ms", "time_s", "files", "from",
        "resumed_at_steps"}
def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in SKIP}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x
a, b = (strip(json.load(open(p))) for p in sys.argv[1:3])
if a != b:
    for stage in a.get("stages", {}):
        if a["stages"][stage] != b["stages"].get(stage):
            print("differs:", stage, json.dumps(a["stages"][stage])[:400], json.dumps(b["stages"].get(stage))[:400])
    sys.exit(1)
PY
}

# Same seed, another folder: the same figures.
"$ember" speedrun --preset tiny --out b --quiet --chat none > b.log 2>&1 || { cat b.log; fail "speedrun b"; }
same_figures a/report.json b/report.json || fail "reports differ"

# Stopped by a real signal in the middle of a training stage: in folder c,
# start the run (again) and send signal $3 once the stage's periodic
# checkpoint $2 exists (the trainer is then inside its loop; the tiny preset
# checkpoints SFT every 10 of 30 steps, PPO every iteration of 3). The trainer
# finishes its step, writes a checkpoint and the run exits 128 + signal.
# $1 names the attempt's log.
interrupt() {
  "$ember" speedrun --preset tiny --out c --quiet --chat none > "$1" 2>&1 &
  pid=$!
  stage=${2%%/*}
  i=0
  until [ -e "c/$2" ]; do
    i=$((i + 1))
    if [ -e "c/$stage/stage.json" ] || [ $i -gt 6000 ]; then
      kill -9 $pid 2>/dev/null; cat "$1"; fail "$stage finished (or 60 s passed) before c/$2 appeared"
    fi
    kill -0 $pid 2>/dev/null || { cat "$1"; fail "the run ended before c/$2 appeared"; }
    sleep 0.01
  done
  kill "-$3" $pid
  rc=0
  wait $pid || rc=$?
  grep -q "interrupted during $stage" "$1" || { cat "$1"; fail "the $3 did not stop $stage"; }
}
# Sets $step to the step stage $1 stopped at (its interrupted.json), which must lie in [$2, $3).
stopped_at() {
  step=$(python3 -c "import json; print(json.load(open('c/$1/interrupted.json'))['step'])")
  [ "$step" -ge "$2" ] && [ "$step" -lt "$3" ] || fail "$1 stopped at step $step, outside [$2, $3)"
}
interrupt c1.log sft/ckpt-00000010 INT
[ $rc -eq 130 ] || fail "SIGINT: exit code $rc, expected 130"
stopped_at sft 10 30
sft_at=$step
interrupt c2.log ppo/ckpt-00000001 TERM
[ $rc -eq 143 ] || fail "SIGTERM: exit code $rc, expected 143"
grep -q "sft resumes at step $sft_at of 30" c2.log || { cat c2.log; fail "sft did not resume at step $sft_at"; }
stopped_at ppo 1 3
ppo_at=$step
"$ember" speedrun --preset tiny --out c --quiet --chat none > c3.log 2>&1 || { cat c3.log; fail "speedrun c, last attempt"; }
grep -q "ppo resumes at step $ppo_at of 3" c3.log || { cat c3.log; fail "ppo did not resume at step $ppo_at"; }
grep -q "sft: done before" c3.log || { cat c3.log; fail "sft was redone"; }
python3 - c/report.json "$sft_at" "$ppo_at" <<'PY' || fail "report.json does not record where the stages resumed"
import json, sys
stages = json.load(open(sys.argv[1]))["stages"]
assert stages["sft"]["resumed_at_steps"] == [int(sys.argv[2])], stages["sft"]
assert stages["ppo"]["resumed_at_steps"] == [int(sys.argv[3])], stages["ppo"]
assert all("resumed_at_steps" not in st for name, st in stages.items() if name not in ("sft", "ppo")), stages
PY
grep -q "| sft | .* (resumed at step $sft_at) |" c/report.md || fail "report.md does not say that sft resumed"
[ ! -e c/sft/interrupted.json ] && [ ! -e c/ppo/interrupted.json ] || fail "interrupted.json left behind"
same_figures a/report.json c/report.json || fail "the interrupted run's figures differ from the uninterrupted run's"

# Another preset in the same folder is refused with a clear message.
if "$ember" speedrun --preset default --out a --quiet --chat none > wrong.log 2>&1; then fail "preset change accepted"; fi
grep -q 'holds a run of preset "tiny"' wrong.log || { cat wrong.log; fail "unclear error"; }
echo "speedrun test: ok"
