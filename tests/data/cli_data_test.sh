#!/bin/sh
# CLI-level test of `ember data` (CTest: data.cli, label unit): builtin corpus ->
# tokenizer train -> data prepare -> data inspect, and the command-line errors:
# exit status 1, one line on stderr naming the problem, nothing left behind.
#   cli_data_test.sh path/to/ember
set -u
EMBER=$1
DIR=$(mktemp -d "${TMPDIR:-/tmp}/ember_data_cli.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
cd "$DIR" || exit 1
failures=0
check() {  # check NAME EXPECTED_STATUS STDERR_PATTERN -- command...
  name=$1 want=$2 pattern=$3
  shift 4
  "$@" >out.txt 2>err.txt
  got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL $name: exit $got, expected $want; stderr: $(cat err.txt)"; failures=$((failures + 1)); return
  fi
  if [ -n "$pattern" ]; then
    if ! grep -q -- "$pattern" err.txt || [ "$(grep -c . err.txt)" -ne 1 ]; then
      echo "FAIL $name: stderr should be one line matching '$pattern': $(cat err.txt)"; failures=$((failures + 1)); return
    fi
  fi
  echo "ok   $name"
}
check builtin 0 "" -- "$EMBER" data builtin --out a.txt --megabytes 0.3 --seed 4
check builtin-again 0 "" -- "$EMBER" data builtin --out b.txt --megabytes 0.3 --seed 4
if cmp -s a.txt b.txt; then echo "ok   builtin is deterministic"; else echo "FAIL builtin differs"; failures=$((failures + 1)); fi
check train 0 "" -- "$EMBER" tokenizer train --input a.txt --vocab-size 600 --out tok
check prepare 0 "" -- "$EMBER" data prepare --tokenizer tok --input a.txt --out data --val-fraction 0.1 --shard-tokens 20000
grep -q '"train_tokens"' out.txt || { echo "FAIL prepare printed no JSON line"; failures=$((failures + 1)); }
[ -f data/meta.json ] && [ -f data/train_00000.bin ] && [ -f data/val_00000.bin ] || { echo "FAIL prepare output missing"; failures=$((failures + 1)); }
check inspect 0 "" -- "$EMBER" data inspect --data data
check exists 1 "ember: error: \[data\] data: folder exists and is not empty" -- \
  "$EMBER" data prepare --tokenizer tok --input a.txt --out data
check no-tokenizer 1 "ember: error: \[tokenizer\] nope: not a tokenizer folder" -- \
  "$EMBER" data prepare --tokenizer nope --input a.txt --out d2
check no-input 1 "ember: error: \[data\] missing.txt: no such input file" -- \
  "$EMBER" data prepare --tokenizer tok --input missing.txt --out d2
: > empty.txt
check empty-input 1 "the input files hold no text" -- "$EMBER" data prepare --tokenizer tok --input empty.txt --out d2
[ ! -e d2 ] || { echo "FAIL a failed prepare left d2 behind"; failures=$((failures + 1)); }
ls -d d2.partial-* >/dev/null 2>&1 && { echo "FAIL a failed prepare left a partial folder"; failures=$((failures + 1)); }
head -c 100 data/train_00000.bin > t.bin && mv t.bin data/train_00000.bin
check truncated-shard 1 "train_00000.bin: header says" -- "$EMBER" data inspect --data data
check no-meta 1 "meta.json: missing" -- "$EMBER" data inspect --data tok
if [ "$failures" -ne 0 ]; then echo "$failures failures"; exit 1; fi
echo "all ok"
