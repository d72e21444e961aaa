#!/bin/sh
# `ember export --format emb` and the deployment runtime through the binaries:
# `ember run` and the standalone `ember-run` give the same logits; the export
# at another --seq-len gives the same last-position logits (causal padding);
# `ember-run` links no training-stack library; damaged files, long or bad
# input are one error line and exit 1.
# usage: export_run_cli_test.sh EMBER EMBER_RUN MAKE_SCRIPTED_CHECKPOINT WORK_DIR
set -eu
ember=$(realpath "$1"); runner=$(realpath "$2"); tool=$(realpath "$3"); work="$4"
rm -rf "$work"; mkdir -p "$work"; cd "$work"
export OMP_NUM_THREADS=1
fail() { echo "FAIL: $*"; exit 1; }

"$tool" ckpt "OK" --block 64 > /dev/null
"$ember" export --checkpoint ckpt --format emb --out m32.emb --seq-len 32 > export.log || { cat export.log; fail "export"; }
"$ember" export --checkpoint ckpt --format emb --out m64.emb > /dev/null || fail "export at block_size"
ls | grep -q '\.tmp\.' && fail "a temporary file was left behind"

echo '[1, 2, 3, 4, 5]' | "$ember" run m32.emb > a.json || fail "ember run"
echo '[1, 2, 3, 4, 5]' | "$runner" m32.emb > b.json || fail "ember-run"
cmp -s a.json b.json || fail "ember run and ember-run differ"
echo '[1, 2, 3, 4, 5]' | "$runner" m64.emb > c.json || fail "ember-run at 64"
python3 - a.json c.json <<'PY' || fail "logits differ between seq-len 32 and 64"
import json, sys
a, c = (json.load(open(p)) for p in sys.argv[1:3])
assert len(a) == len(c) > 0, (len(a), len(c))
d = max(abs(x - y) for x, y in zip(a, c))
assert d <= 1e-5, d
PY

if ldd "$runner" | grep -Eq 'libmpi|libpcre2|httplib|libonnx|libprotobuf'; then
  ldd "$runner"; fail "ember-run links training-stack libraries"
fi

expect_error() {  # expect_error PATTERN CMD...
  pattern="$1"; shift
  if "$@" > out.txt 2> err.txt; then fail "$* succeeded"; fi
  [ "$(wc -l < err.txt)" -eq 1 ] || { cat err.txt; fail "$*: not one error line"; }
  grep -q "$pattern" err.txt || { cat err.txt; fail "$*: expected '$pattern'"; }
}
python3 -c "import sys; print(list(range(40)))" > long.json
expect_error "exported for at most 32 tokens" sh -c "\"$runner\" m32.emb < long.json"
echo 'hello' > bad.json
expect_error "JSON array of token ids" sh -c "\"$runner\" m32.emb < bad.json"
cp m32.emb broken.emb
printf 'XX' | dd of=broken.emb bs=1 seek=2000 conv=notrunc 2> /dev/null
expect_error "checksum mismatch" sh -c "echo '[1]' | \"$ember\" run broken.emb"
expect_error "not an ember saved graph" sh -c "echo '[1]' | \"$runner\" export.log"
echo "export_run_cli_test: ok"
