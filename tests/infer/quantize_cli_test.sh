#!/bin/sh
# `ember quantize` end to end through the binary: int8, int4 and f16 copies of the
# scripted chat checkpoint (tests/serve/scripted_model.h; its weights quantize
# exactly, so the replies are known) are served over HTTP, chatted with, sampled
# and benchmarked; --val-data reports the loss before and after; bad input
# (unknown --to, a missing checkpoint, an existing --out, damaged scales, a
# quantized checkpoint given to training) is one error line and exit 1.
# usage: quantize_cli_test.sh EMBER MAKE_SCRIPTED_CHECKPOINT WORK_DIR
set -eu
ember=$(realpath "$1"); tool=$(realpath "$2"); work="$3"
rm -rf "$work"; mkdir -p "$work"; cd "$work"
export OMP_NUM_THREADS=1
fail() { echo "FAIL: $*"; exit 1; }
nl='
'

"$tool" src "OK <script>" --block 64 > /dev/null
for q in int8 int4 f16; do
  "$ember" quantize --checkpoint src --to $q --group-size 32 --out $q > $q.log 2>&1 || { cat $q.log; fail "quantize $q"; }
  for f in model.safetensors trainer.json tokenizer/tokenizer.json; do [ -e "$q/$f" ] || fail "no $q/$f"; done
  grep -q "\"scheme\": \"$q\"" $q/trainer.json || fail "$q/trainer.json does not record the scheme"
  ls -a | grep -q '\.tmp\.' && fail "a temporary folder was left behind"

  out="$(printf 'hello\n/quit\n' | "$ember" chat --checkpoint $q --threads 1)"
  [ "$out" = "OK <script>" ] || fail "chat on $q replied: $out"

  out="$("$ember" sample --checkpoint $q --prompt "$nl" --max-tokens 11 --temperature 0)"
  [ "$out" = "${nl}OK <script>" ] || fail "sample on $q gave: $out"

  "$ember" bench generate --checkpoint $q --prompt-len 8 --tokens 4 --runs 1 > bench.json
  grep -q "\"quant\":\"$q\"" bench.json || { cat bench.json; fail "bench generate does not report $q"; }
  # The decode's ceiling is measured in the same command: the machine's memory
  # bandwidth, and the weights' read rate as a fraction of it.
  for key in memory_read_gb_per_s memory_copy_gb_per_s decode_weight_gb_per_s decode_bandwidth_fraction; do
    grep -Eq "\"$key\":([1-9]|0\.0*[1-9])" bench.json || { cat bench.json; fail "bench generate has no positive $key"; }
  done

  # One log per server: the shell truncates a redirect target only once the
  # background child runs, so a shared serve.out could still show the previous
  # server's address to the wait loop below.
  "$ember" serve --checkpoint $q --port 0 --threads 1 --quiet > serve-$q.out 2> serve-$q.err &
  pid=$!
  i=0
  while ! grep -q "^serving on http://.*:[0-9][0-9]*$" serve-$q.out 2> /dev/null; do
    i=$((i + 1)); [ $i -lt 300 ] || { kill $pid; cat serve-$q.err; fail "serve on $q did not start"; }
    sleep 0.1
  done
  url=$(sed -n 's/^serving on //p' serve-$q.out)
  python3 - "$url" $q <<'PY' || { kill $pid; fail "serve on $q"; }
import json, sys, urllib.request
body = {"model": sys.argv[2], "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
req = urllib.request.Request(sys.argv[1] + "/v1/chat/completions", data=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})
reply = json.load(urllib.request.urlopen(req, timeout=30))["choices"][0]["message"]["content"]
assert reply == "OK <script>", reply
PY
  kill -TERM $pid; wait $pid || true
done

# --val-data: the loss of the float and the quantized weights on the same windows.
i=0; : > text.txt
while [ $i -lt 200 ]; do printf 'OK <script> number %s.\n\n' $i >> text.txt; i=$((i + 1)); done
"$ember" data prepare --tokenizer src/latest/tokenizer --input text.txt --out data --paragraphs --val-fraction 0.3 > /dev/null 2>&1
"$ember" quantize --checkpoint src --to int4 --out v4 --val-data data --val-windows 2 --val-seq-len 32 --json > val.json
python3 - val.json <<'PY' || fail "val loss report"
import json, math, sys
v = json.load(open(sys.argv[1]))["val"]
assert v["tokens"] == 64 and math.isfinite(v["loss_float32"]) and math.isfinite(v["loss"]), v
assert abs(v["loss_delta"]) < 1e-3, v  # the scripted weights quantize exactly
PY
# f16 keeps 11 significant bits: the float and f16 losses agree to rounding.
"$ember" quantize --checkpoint src --to f16 --out v16 --val-data data --val-windows 2 --val-seq-len 32 --json > val16.json
python3 - val16.json <<'PY' || fail "f16 val loss report"
import json, sys
q = json.load(open(sys.argv[1]))
assert q["scheme"] == "f16" and q["group_size"] == 0 and q["head"] == "f16", q
assert 0.49 < q["weight_bytes"] / q["weight_bytes_float32"] < 0.55, q
assert abs(q["val"]["loss_delta"]) < 1e-3, q
PY

# Bad input: one line on stderr, exit 1, nothing written.
expect_error() {  # expect_error TEXT COMMAND...
  text="$1"; shift
  if "$@" > err.out 2> err.txt; then fail "succeeded: $*"; fi
  [ "$(wc -l < err.txt)" -eq 1 ] || { cat err.txt; fail "not one line: $*"; }
  grep -q "^ember: error: .*$text" err.txt || { cat err.txt; fail "unexpected error for $*"; }
}
expect_error "unknown weight format 'int3' (known: int8, int4, f16)" "$ember" quantize --checkpoint src --to int3 --out bad
expect_error "int4 group size must be 32, 64 or 128, got 48" "$ember" quantize --checkpoint src --to int4 --group-size 48 --out bad
expect_error "missing: no such folder" "$ember" quantize --checkpoint missing --to int8 --out bad
[ -e bad ] && fail "a failed quantize wrote --out"
expect_error "--out int8 already exists" "$ember" quantize --checkpoint src --to int8 --out int8
expect_error "is already int8-quantized" "$ember" quantize --checkpoint int8 --to int4 --out bad
expect_error "holds int8-quantized weights; quantized checkpoints are for inference" \
  "$ember" sft --init int8 --data nothing.jsonl --out bad

cp -r int8 damaged
scale=$(python3 - damaged/model.safetensors <<'PY'
import json, struct, sys
p = sys.argv[1]
b = open(p, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
name = next(k for k in sorted(h) if k.startswith("transformer") and k.endswith("_scale"))
rows = h[name]["shape"][0]
h[name]["shape"] = [rows // 2, 2]  # same bytes, wrong shape
hb = json.dumps(h, separators=(",", ":")).encode()
hb += b" " * (-len(hb) % 8)
open(p, "wb").write(struct.pack("<Q", len(hb)) + hb + b[8 + n:])
print(name)
PY
)
expect_error "scales $scale are F32 \[.*, 2\], expected F32 \[" "$ember" sample --checkpoint damaged --prompt hi
expect_error "scales $scale are F32" "$ember" chat --checkpoint damaged
echo "quantize cli: ok"
