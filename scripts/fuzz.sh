#!/usr/bin/env bash
# Fuzzes ember's parsers of untrusted input with libFuzzer (clang, ASan + UBSan):
#
#   ./scripts/fuzz.sh [-t SECONDS] [--merge] [TARGET...]
#
# Targets (tests/fuzz/<name>_fuzz.cpp; all when none are given): safetensors,
# tiktoken_ranks, bpe_roundtrip, pretokenizer, api_request, chat_jsonl, saved_graph.
# 1. installs clang-14 and its libFuzzer runtime when missing,
# 2. configures and builds build-fuzz/ (-DEMBER_FUZZ=ON with clang++-14),
# 3. runs each target for SECONDS (default 60) with its dictionary
#    tests/fuzz/<name>.dict, growing build-fuzz/corpus/<name>/ from the seeds in
#    tests/fuzz/corpus/<name>/ (which it only reads),
# 4. with --merge, adds the inputs that reach new code to tests/fuzz/corpus/<name>/
#    (libFuzzer -merge=1 keeps only those), for committing.
# A crash, leak, UB report or timeout leaves its input in build-fuzz/artifacts/<name>/
# and the log in build-fuzz/logs/<name>.log. Exits non-zero when any target failed.
# Replay a found input with: build-fuzz/tests/fuzz/<name>_fuzz <file>; once fixed,
# copy it into tests/fuzz/corpus/<name>/ so CTest (label fuzz) keeps checking it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib/deps.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib/build.sh"

all_targets=(safetensors tiktoken_ranks bpe_roundtrip pretokenizer api_request chat_jsonl saved_graph)
seconds=60
merge=0
targets=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    -t|--time) seconds="${2:?-t needs a number of seconds}"; shift ;;
    --merge) merge=1 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) ember_die "unknown option $1 (see --help)" ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[ "${#targets[@]}" -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [ -f "$EMBER_ROOT/tests/fuzz/${t}_fuzz.cpp" ] || ember_die "no fuzz target '$t' (known: ${all_targets[*]})"
done
cd "$EMBER_ROOT"

ember_install_debian_packages clang-14 libclang-rt-14-dev libomp-14-dev
build_dir="$EMBER_ROOT/build-fuzz"
# Tests and benchmarks are off: this folder only holds the fuzz executables. The compiler
# comes from CXX (read when the folder is first configured; EMBER_FUZZ refuses any but clang).
export CXX=clang++-14
ember_build "$build_dir" "${targets[@]/%/_fuzz}" -- -DEMBER_FUZZ=ON -DEMBER_BUILD_TESTS=OFF -DEMBER_BUILD_BENCH=OFF

# One OpenMP thread: libFuzzer runs one input at a time, and threads only add noise.
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
for t in "${targets[@]}"; do
  work="$build_dir/corpus/$t" artifacts="$build_dir/artifacts/$t/" log="$build_dir/logs/$t.log"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  ember_log "fuzz $t for ${seconds}s (log: ${log#"$EMBER_ROOT"/})"
  rc=0
  "$build_dir/tests/fuzz/${t}_fuzz" "$work" "tests/fuzz/corpus/$t" -dict="tests/fuzz/$t.dict" \
    -max_total_time="$seconds" -max_len=8192 -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$artifacts" >"$log" 2>&1 || rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -5 || true
    echo "fuzz $t: FAILED after ${execs:-?} runs (exit $rc; inputs in ${artifacts#"$EMBER_ROOT"/})"
  else
    echo "fuzz $t: ${execs:-?} runs in ${seconds}s, no failures; corpus $(find "$work" -type f | wc -l) inputs"
    if [ "$merge" -eq 1 ]; then
      before="$(find "tests/fuzz/corpus/$t" -type f | wc -l)"
      "$build_dir/tests/fuzz/${t}_fuzz" -merge=1 -max_len=8192 "tests/fuzz/corpus/$t" "$work" >>"$log" 2>&1
      echo "fuzz $t: merged into tests/fuzz/corpus/$t: $before -> $(find "tests/fuzz/corpus/$t" -type f | wc -l) inputs"
    fi
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "ember fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "ember fuzz: ${#targets[@]} targets, ${seconds}s each, no failures"
