#!/bin/sh
# `ember speedrun --preset tiny` end to end through the binary: every stage runs
# and writes the report card and the chat model; a rerun skips finished stages;
# a removed stage is redone alone; the same seed in another folder gives the
# same report numbers (determinism); a folder of another preset is refused.
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

# Redo one stage only.
rm a/dpo/stage.json
"$ember" speedrun --preset tiny --out a --quiet --chat none > redo.log 2>&1 || { cat redo.log; fail "redo"; }
grep -q "dpo:.*planned" redo.log || { cat redo.log; fail "dpo was not redone"; }
grep -q "sft: done before" redo.log || { cat redo.log; fail "sft was redone"; }

# Same seed, another folder: the same figures (times and paths aside).
"$ember" speedrun --preset tiny --out b --quiet --chat none > b.log 2>&1 || { cat b.log; fail "speedrun b"; }
python3 - a/report.json b/report.json <<'PY' || fail "reports differ"
import json, sys
SKIP = {"seconds", "total_seconds", "tokens_per_s", "mfu", "checkpoint", "step_ms", "time_s", "files", "from"}
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

# Another preset in the same folder is refused with a clear message.
if "$ember" speedrun --preset default --out a --quiet --chat none > wrong.log 2>&1; then fail "preset change accepted"; fi
grep -q 'holds a run of preset "tiny"' wrong.log || { cat wrong.log; fail "unclear error"; }
echo "speedrun test: ok"
