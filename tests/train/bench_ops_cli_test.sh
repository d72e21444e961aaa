#!/bin/sh
# `ember bench ops` on the CPU: one JSON line with the copy bandwidth, every op's
# time and its fraction of the copy, the linear rate and the attention times;
# `--device cuda` without a GPU (or a CUDA build) is one error line.
set -eu
ember=$1
fail() { echo "bench_ops_cli_test: $*" >&2; exit 1; }
out=$("$ember" bench ops --preset tiny --batch 1 --seq-len 32 --repeats 2 --threads 1) || fail "bench ops failed"
for field in '"bench":"ops"' '"device":"cpu"' '"copy_gbps":' '"layer_norm [N, C]":' '"adamw_update [4C, C]":' \
             '"cross_entropy forward+backward [N, V]":' '"of_copy":' '"linear_gflops":' '"attention_forward_backward_ms":'; do
  echo "$out" | grep -qF "$field" || fail "missing $field in: $out"
done
[ "$(echo "$out" | wc -l)" -eq 1 ] || fail "more than one line: $out"
if "$ember" bench ops --preset tiny --device cuda:7 --repeats 1 > /dev/null 2> err.txt; then
  # A machine with 8 GPUs may run it; otherwise it must fail with one line.
  :
else
  [ "$(wc -l < err.txt)" -eq 1 ] || fail "cuda:7 without such a GPU: expected one error line, got: $(cat err.txt)"
  grep -q "cuda:7 is not available\|built without\|no backend for cuda" err.txt || fail "unclear error: $(cat err.txt)"
fi
echo "bench_ops_cli_test: ok"
