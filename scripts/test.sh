#!/usr/bin/env bash
# ember's whole test suite in one command, on a fresh Debian 12 as on a dev machine:
#
#   ./scripts/test.sh [--sanitize] [CTEST_ARGS...]
#
# 1. installs the Debian packages it needs (apt-get, through sudo when not root),
# 2. creates or reuses the peers venv (${EMBER_CACHE_DIR:-~/.cache/ember}/peers-venv) with
#    tests/conformance/requirements.txt (PyTorch, numpy, safetensors),
# 3. builds incrementally in build/ (Release, Ninja),
# 4. runs every CTest test (labels unit and conformance) with EMBER_PEERS_PYTHON set.
# Extra arguments go to ctest, e.g. `-L unit` or `-R conformance`.
# --sanitize builds in build-asan/ with AddressSanitizer and UBSan and runs the unit tests there.
# Exits non-zero when anything fails; the last line says how it went.
# shellcheck source-path=SCRIPTDIR disable=SC2119
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib/deps.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib/peers_venv.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib/build.sh"

sanitize=0
ctest_args=()
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=1 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ctest_args+=("$arg") ;;
  esac
done
cd "$EMBER_ROOT"

# Whatever stops the script early, the last line says so.
finished=0
on_exit() {
  local rc=$?
  if [ "$finished" -eq 0 ] && [ "$rc" -ne 0 ]; then
    local phase="${EMBER_PHASE_NAME:-setup}"
    ember_phase_report
    echo "ember tests: FAILED during '$phase' (exit $rc; see the error above)"
  fi
}
trap on_exit EXIT

ember_phase "deps: Debian packages"
ember_install_debian_packages

if [ "$sanitize" -eq 1 ]; then
  build_dir="$EMBER_ROOT/build-asan"
  ember_phase "build: build-asan (AddressSanitizer + UBSan)"
  # The unit label also covers shell tests that drive the `ember` binary.
  ember_build "$build_dir" ember_tests ember -- -DEMBER_SANITIZE=ON -DEMBER_BUILD_BENCH=OFF
  # Not the mpirun tests (label dist), for time: `ctest -L dist` in a sanitized
  # build runs them with suppressions for OpenMPI's own allocations
  # (tests/dist/openmpi.lsan.supp, docs/TESTING.md).
  labels=(-L unit -LE dist)
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
else
  ember_phase "venv: peers (PyTorch, numpy, safetensors)"
  ember_peers_venv "$EMBER_ROOT/tests/conformance/requirements.txt"
  build_dir="$EMBER_ROOT/build"
  ember_phase "build: build/ (Release)"
  ember_build "$build_dir"
  labels=()
fi

ember_phase "test: ctest"
# ctest runs two tests at a time on a machine that may have two cores: OpenMP
# threads that spin while waiting would then fight each other for the CPUs
# (measured: a 2-thread test 40x slower), so they sleep instead.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
log="$build_dir/test-sh.log"
set +e
ctest --test-dir "$build_dir" --output-on-failure -j2 "${labels[@]}" "${ctest_args[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
finished=1
ember_phase_report

# Counts from ctest's summary ("97% tests passed, 2 tests failed out of 64").
summary="$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1 || true)"
# The PyTorch conformance binary prints its own counts (one CTest test runs all its cases).
conf="$(grep -hE '^torch conformance: [0-9]+ passed' "$build_dir/Testing/Temporary/LastTest.log" 2>/dev/null | tail -1 || true)"
[ -n "$conf" ] && echo "$conf"
if [ -z "$summary" ]; then
  echo "ember tests: FAILED (ctest exit $rc, no test summary: was anything run?)"
  exit 1
fi
failed="$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$summary")"
total="$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$summary")"
if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
  echo "ember tests: FAILED (see the failures above; full log in ${log#"$EMBER_ROOT"/})"
  echo "tests: $((total - failed)) passed, $failed failed"
  exit 1
fi
echo "ember tests: all passed in ${build_dir#"$EMBER_ROOT"/}/"
echo "tests: $total passed, 0 failed"
