# Sourced by the mpirun shell tests: expect_error NAME PATTERN COMMAND... runs
# the command, which must fail, and checks that every error line it printed is
# the one-line error PATTERN (each rank prints the same line; mpirun adds its
# own notice, which has no "error" in it). The output is kept in NAME.txt.
expect_error() {
  name=$1 pattern=$2
  shift 2
  if "$@" >"$name.txt" 2>&1; then echo "FAIL: $name succeeded"; exit 1; fi
  grep -q -e "$pattern" "$name.txt" && [ "$(grep 'error' "$name.txt" | grep -c -v -e "$pattern")" = 0 ] ||
    { echo "FAIL: $name: no one-line error \"$pattern\" in:"; cat "$name.txt"; exit 1; }
}
