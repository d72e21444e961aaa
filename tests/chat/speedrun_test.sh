#!/bin/sh
# `ember speedrun --preset tiny` end to end through the binary: every stage runs
# and writes the report card and the chat model; a rerun skips finished stages;
# a removed stage is redone alone; the same seed in another folder gives the
# same report numbers (determinism); a run stopped by real signals in the
# middle of SFT (SIGINT), the reward model and DPO (SIGTERM), and killed
# (SIGKILL) in the middle of PPO, resumes each stage from its checkpoint on the
# rerun (not from its start) and reports the figures of the uninterrupted run;
# a folder of another preset or other --set settings is refused.
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
# The reward model's held-out pairs by kind and by pair of replies, DPO's and
# the SFT model's likelihood ranking beside them.
grep -Eq '^\| replies: ideal>rude \| [0-9]+ \| [0-9.]+% \| [0-9.]+% \| [0-9.]+% \|$' a/report.md ||
  fail "report.md has no reward-model breakdown with DPO and the SFT likelihood beside it"
# The reward model adds the SFT model's likelihood (the default): the head's own accuracy is stated.
grep -Eq 'the head alone ranks [0-9.]+% of the pairs right' a/report.md ||
  fail "report.md does not state the reward model's head-alone accuracy"

# The reward model judged on the SFT policy's own replies to held-out prompts:
# the lists are written, and when they hold a pair the report states the figure.
[ -e a/reward/heldout_policy_lists.jsonl ] || fail "no a/reward/heldout_policy_lists.jsonl"
if [ -s a/reward/heldout_policy_lists.jsonl ]; then
  grep -Eq 'the choice PPO asks of it\) \| no goal \| [0-9.]+% of [0-9]+ pairs' a/report.md ||
    fail "report.md does not state the reward model's accuracy on the policy's own replies"
fi

# The reward model's answer against a refusal on every harmless held-out prompt.
[ -s a/reward/heldout_answer_or_refusal.jsonl ] || fail "no a/reward/heldout_answer_or_refusal.jsonl"
grep -Eq 'refuse everything\) \| no goal \| [0-9.]+% of [0-9]+ pairs' a/report.md ||
  fail "report.md does not state how often the reward model ranks the answer above a refusal"

# A rerun finds every stage done.
"$ember" speedrun --preset tiny --out a --quiet --chat none > rerun.log 2>&1 || { cat rerun.log; fail "rerun"; }
[ "$(grep -c 'skipped' rerun.log)" -ge 10 ] || { cat rerun.log; fail "rerun did not skip the finished stages"; }

# A stage without stage.json runs again alone; DPO's checkpoint holds its last
# step, so it is not retrained, only evaluated again. Its pictures, and PPO's,
# are drawn again from metrics.jsonl (as after a hard kill that came between
# the last checkpoint and the pictures).
rm a/dpo/stage.json a/dpo/dpo.svg a/ppo/stage.json a/ppo/reward.svg a/ppo/kl.svg
"$ember" speedrun --preset tiny --out a --quiet --chat none > redo.log 2>&1 || { cat redo.log; fail "redo"; }
grep -q "dpo:.*planned" redo.log || { cat redo.log; fail "dpo was not redone"; }
grep -q "dpo finished training before (checkpoint at step 10 of 10)" redo.log || { cat redo.log; fail "dpo was retrained"; }
grep -q "sft: done before" redo.log || { cat redo.log; fail "sft was redone"; }
for f in dpo/dpo.svg ppo/reward.svg ppo/kl.svg; do
  grep -q "<svg" "a/$f" || fail "a/$f was not drawn again"
done

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

# Interrupted in the middle of training stages, folder c: each attempt starts
# the run (again) and, once stage $2's trainer is inside its loop (the test
# `ready` holds: a training step logged, or a checkpoint written), sends
# signal $3. SIGINT/SIGTERM: the trainer finishes its step, writes a
# checkpoint and the run exits 128 + signal. $1 names the attempt's log.
interrupt() {
  "$ember" speedrun --preset tiny --out c --quiet --chat none > "$1" 2>&1 &
  pid=$!
  i=0
  until ready "$2"; do
    i=$((i + 1))
    if [ -e "c/$2/stage.json" ] || [ $i -gt 6000 ]; then
      kill -9 $pid 2>/dev/null; cat "$1"; fail "$2 finished (or 60 s passed) before it could be interrupted"
    fi
    kill -0 $pid 2>/dev/null || { cat "$1"; fail "the run ended before $2 could be interrupted"; }
    sleep 0.01
  done
  kill "-$3" $pid
  rc=0
  wait $pid || rc=$?
}
ready() { grep -q '"kind":"train"' "c/$1/metrics.jsonl" 2>/dev/null; }
# After a signal: sets $step to the step stage $1 stopped at (its
# interrupted.json), which must lie in [1, $2), and checks exit code $3.
stopped_at() {
  grep -q "interrupted during $1" "$log" || { cat "$log"; fail "the signal did not stop $1"; }
  [ $rc -eq "$3" ] || fail "$1: exit code $rc, expected $3"
  step=$(python3 -c "import json; print(json.load(open('c/$1/interrupted.json'))['step'])")
  [ "$step" -ge 1 ] && [ "$step" -lt "$2" ] || fail "$1 stopped at step $step, outside [1, $2)"
}
log=c1.log
interrupt $log sft INT
stopped_at sft 30 130
sft_at=$step
log=c2.log
interrupt $log reward TERM
grep -q "sft resumes at step $sft_at of 30" $log || { cat $log; fail "sft did not resume at step $sft_at"; }
stopped_at reward 20 143
reward_at=$step
# A hard kill once PPO's first periodic checkpoint exists (any later moment
# will do): the rerun continues from the latest checkpoint there is.
# (Waits on `latest`: older checkpoints are pruned, so one checkpoint's folder may
# come and go between two looks.)
ready() { [ -e c/ppo/latest/trainer.json ]; }
interrupt c3.log ppo KILL
grep -q "reward resumes at step $reward_at of 20" c3.log || { cat c3.log; fail "reward did not resume at step $reward_at"; }
[ $rc -eq 137 ] && [ ! -e c/ppo/stage.json ] || { cat c3.log; fail "SIGKILL came too late (exit code $rc)"; }
ppo_at=$(python3 -c "import json; print(json.load(open('c/ppo/latest/trainer.json'))['step'])")
log=c4.log
ready() { grep -q '"kind":"train"' "c/$1/metrics.jsonl" 2>/dev/null; }
interrupt $log dpo TERM
grep -Eq "ppo (resumes at step $ppo_at of 3|finished training before \(checkpoint at step $ppo_at of 3\))" $log ||
  { cat $log; fail "ppo did not resume at step $ppo_at"; }
stopped_at dpo 10 143
dpo_at=$step
"$ember" speedrun --preset tiny --out c --quiet --chat none > c5.log 2>&1 || { cat c5.log; fail "speedrun c, last attempt"; }
grep -q "dpo resumes at step $dpo_at of 10" c5.log || { cat c5.log; fail "dpo did not resume at step $dpo_at"; }
grep -q "sft: done before" c5.log || { cat c5.log; fail "sft was redone"; }
python3 - c/report.json "$sft_at" "$reward_at" "$ppo_at" "$dpo_at" <<'PY' || fail "report.json does not record where the stages resumed"
import json, sys
stages = json.load(open(sys.argv[1]))["stages"]
resumed = {"sft": int(sys.argv[2]), "reward": int(sys.argv[3]), "ppo": int(sys.argv[4]), "dpo": int(sys.argv[5])}
for name, st in stages.items():
    assert st.get("resumed_at_steps") == ([resumed[name]] if name in resumed else None), (name, st)
PY
grep -q "| sft | .* (resumed at step $sft_at) |" c/report.md || fail "report.md does not say that sft resumed"
ls c/*/interrupted.json 2>/dev/null && fail "interrupted.json left behind"
same_figures a/report.json c/report.json || fail "the interrupted run's figures differ from the uninterrupted run's"
echo "ok: stopped in sft at step $sft_at (SIGINT), in reward at step $reward_at (SIGTERM), killed in ppo after step" \
  "$ppo_at, stopped in dpo at step $dpo_at (SIGTERM); each resumed there; same figures as the uninterrupted run"

# Another preset in the same folder is refused with a clear message.
if "$ember" speedrun --preset default --out a --quiet --chat none > wrong.log 2>&1; then fail "preset change accepted"; fi
grep -q 'holds a run of preset "tiny"' wrong.log || { cat wrong.log; fail "unclear error"; }
# Another version's ETA estimates (plan_s) are no other setting: the folder continues.
python3 - a/speedrun.json <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
plan["settings"]["plan_s"]["pretrain"] += 100
json.dump(plan, open(sys.argv[1], "w"))
PY
"$ember" speedrun --preset tiny --out a --quiet --chat none > plan.log 2>&1 || { cat plan.log; fail "changed plan_s refused"; }
# So is another setting, and a --set that names no setting creates no folder.
if "$ember" speedrun --preset tiny --out a --set ppo.iterations=4 --quiet --chat none > wrong.log 2>&1; then
  fail "settings change accepted"
fi
grep -q 'was started with other settings' wrong.log || { cat wrong.log; fail "unclear error for --set"; }
if "$ember" speedrun --preset tiny --out d --set ppo.iteratoins=4 --quiet --chat none > wrong.log 2>&1; then
  fail "unknown setting accepted"
fi
grep -q 'the preset has no setting "ppo.iteratoins"' wrong.log || { cat wrong.log; fail "unclear error for a typo"; }
[ ! -e d ] || fail "a refused --set created its folder"
echo "speedrun test: ok"
