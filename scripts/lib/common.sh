# shellcheck shell=bash
# Shared helpers for ember's scripts (test.sh, demo.sh, ...): repository root,
# messages, timing of phases, and running a command as root. Source it:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

EMBER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EMBER_CACHE_DIR="${EMBER_CACHE_DIR:-$HOME/.cache/ember}"
export EMBER_ROOT EMBER_CACHE_DIR

ember_log() { printf '==> %s\n' "$*"; }
ember_warn() { printf 'warning: %s\n' "$*" >&2; }
ember_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, else through sudo.
ember_as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    ember_die "'$*' needs root, and sudo is not installed: run this script as root"
  fi
}

# Phase timing: ember_phase NAME starts a phase (ending the previous one);
# ember_phase_end ends it; ember_phase_report prints one line with all of them.
EMBER_PHASES=()
EMBER_PHASE_NAME=""
EMBER_PHASE_START=0
EMBER_RUN_START=$SECONDS
ember_phase() {
  ember_phase_end
  EMBER_PHASE_NAME="$1"
  EMBER_PHASE_START=$SECONDS
  ember_log "$1"
}
ember_phase_end() {
  if [ -n "$EMBER_PHASE_NAME" ]; then
    EMBER_PHASES+=("${EMBER_PHASE_NAME%% *} $((SECONDS - EMBER_PHASE_START))s")
    EMBER_PHASE_NAME=""
  fi
}
ember_phase_report() {
  ember_phase_end
  local line="" p
  for p in "${EMBER_PHASES[@]}"; do line+="${line:+, }$p"; done
  printf 'time: %s; total %ss\n' "$line" "$((SECONDS - EMBER_RUN_START))"
}
