#!/usr/bin/env bash
# ember's main job in one command, on a fresh Debian 12 as on a dev machine:
#
#   ./scripts/demo.sh [SPEEDRUN_ARGS...]
#
# installs the Debian packages it needs (apt-get, through sudo when not root),
# builds the `ember` binary incrementally in build/, and runs the whole ChatGPT
# recipe on built-in data with `ember speedrun --out runs/speedrun`: curriculum,
# tokenizer, pretraining, SFT, reward model, PPO and DPO, evaluation, the report
# card runs/speedrun/report.md, and then the chat: from a terminal it serves the
# web chat page and OpenAI API at http://127.0.0.1:8080/ (Ctrl-C stops it).
# Rerunning continues from the last finished stage. Extra arguments go to
# `ember speedrun` (see `build/ember speedrun --help`, e.g. --preset tiny,
# --chat terminal, --out DIR).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib/deps.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib/build.sh"

case "${1:-}" in
  -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
cd "$EMBER_ROOT"
ember_log "checking Debian packages"
ember_install_debian_packages
ember_log "building build/ember"
ember_build "$EMBER_ROOT/build" ember
out=runs/speedrun
for a in "$@"; do case "$a" in --out|--out=*) out="";; esac; done
ember_log "running: build/ember speedrun ${out:+--out $out }$*"
exec "$EMBER_ROOT/build/ember" speedrun ${out:+--out "$out"} "$@"
