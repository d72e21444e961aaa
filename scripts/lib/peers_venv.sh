# shellcheck shell=bash
# The peers virtual environment: PyPI packages the conformance tests (and demos)
# compare ember against. Needs common.sh.
#
#   ember_peers_venv REQUIREMENTS...   creates or reuses $EMBER_PEERS_VENV, installs the
#                                      requirements files when their content changed, and
#                                      exports EMBER_PEERS_PYTHON.

EMBER_PEERS_VENV="${EMBER_PEERS_VENV:-$EMBER_CACHE_DIR/peers-venv}"

ember_peers_venv() {
  local venv="$EMBER_PEERS_VENV" stamp="$EMBER_PEERS_VENV/.ember-requirements.sha256" want have=""
  [ "$#" -gt 0 ] || ember_die "ember_peers_venv: give at least one requirements file"
  local f
  for f in "$@"; do [ -f "$f" ] || ember_die "requirements file $f not found"; done
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    ember_log "peers venv: creating $venv"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" || ember_die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  fi
  # The stamp covers the requirements' content and their order.
  want="$(cat "$@" | sha256sum | cut -d' ' -f1)"
  [ -f "$stamp" ] && have="$(cat "$stamp")"
  if [ "$want" != "$have" ]; then
    ember_log "peers venv: installing $* (this downloads PyTorch the first time)"
    local pip_args=(--disable-pip-version-check --no-input --progress-bar off --quiet)
    "$venv/bin/python" -m pip install "${pip_args[@]}" --upgrade pip >/dev/null \
      || ember_warn "could not upgrade pip in $venv; going on with the one it has"
    local reqs=()
    for f in "$@"; do reqs+=(-r "$f"); done
    "$venv/bin/python" -m pip install "${pip_args[@]}" "${reqs[@]}" \
      || ember_die "pip install ${reqs[*]} into $venv failed"
    printf '%s\n' "$want" >"$stamp"
  else
    ember_log "peers venv: $venv is up to date"
  fi
  export EMBER_PEERS_PYTHON="$venv/bin/python"
}
