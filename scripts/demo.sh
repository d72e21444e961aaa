#!/usr/bin/env bash
# ember's main job in one command, on a fresh Debian 12 as on a dev machine:
#
#   ./scripts/demo.sh [DEMO_ARGS...]
#
# installs the Debian packages it needs (apt-get, through sudo when not root),
# builds the `ember` binary incrementally in build/, and runs `ember demo`:
# a small transformer learns to sort digits from generated data, printing the
# loss as it falls, then sorts held-out sequences. Metrics, a loss curve and the
# model land in runs/demo/. Extra arguments go to `ember demo` (see
# `build/ember demo --help`, e.g. --steps 800 --threads 2).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib/deps.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib/build.sh"

case "${1:-}" in
  -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
cd "$EMBER_ROOT"
ember_log "checking Debian packages"
ember_install_debian_packages
ember_log "building build/ember"
ember_build "$EMBER_ROOT/build" ember
ember_log "running: build/ember demo $*"
exec "$EMBER_ROOT/build/ember" demo "$@"
