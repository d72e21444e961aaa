#!/bin/bash
# Runs on a lent GPU machine (the `device` tool), from the repository root, with
# .device/ made by scripts/device_pack.sh carried along: unpacks the libraries,
# finds the machine's cuBLAS and NCCL, then runs every CUDA test and the GPU
# training benchmarks (eager and the compiled whole step). Logs and the JSON lines land in $OUT.
set -u
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
cd .device || exit 1
tar -xJf lib.tar.xz
xz -d -f ember.xz ember_tests.xz
libdirs=$PWD/lib
for name in libcublas.so.13 libcublasLt.so.13 libnccl.so.2; do
  hit=$(find / -xdev \( -path /proc -o -path /sys \) -prune -o -name "$name" -print 2>/dev/null | head -1)
  if [ -n "$hit" ]; then libdirs=$libdirs:$(dirname "$hit"); else echo "device_check: $name not found" >&2; fi
done
export LD_LIBRARY_PATH=$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"
if ldd ./ember ./ember_tests | grep "not found"; then echo "device_check: libraries missing" >&2; fi
filter=${EMBER_DEVICE_TESTS:-Cuda*}
echo "== ember_tests --gtest_filter=$filter"
timeout 300 ./ember_tests --gtest_filter="$filter" --gtest_brief=1 2>&1 | tee "$OUT/tests.log" | tail -60
echo "== bench ops (cuda): each primitive against the copy bandwidth"
timeout 120 ./ember bench ops --device cuda --preset gpt2 2>&1 | tee -a "$OUT/bench.jsonl"
echo "== bench train (cuda): ember, then PyTorch eager on the same preset (its peer)"
for preset in ${EMBER_DEVICE_PRESETS:-small gpt2}; do
  timeout 120 ./ember bench train --preset "$preset" --device cuda --steps 10 2>&1 | tee -a "$OUT/bench.jsonl"
  timeout 120 ./ember bench train --preset "$preset" --device cuda --steps 10 --compile 2>&1 | tee -a "$OUT/bench.jsonl"
  timeout 120 python3 ../bench/torch_train.py --preset "$preset" --device cuda --steps 10 2>&1 | tee -a "$OUT/bench.jsonl"
done
