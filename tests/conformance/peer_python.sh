#!/bin/sh
# Runs a conformance peer script with the Python of the peers virtual environment
# (torch, numpy, safetensors). EMBER_PEERS_PYTHON is read when the test runs, not
# when CMake configures, so one build works with any venv; ./scripts/test.sh sets it.
if [ -z "${EMBER_PEERS_PYTHON:-}" ]; then
  problem="EMBER_PEERS_PYTHON is not set"
elif [ ! -x "${EMBER_PEERS_PYTHON}" ]; then
  problem="EMBER_PEERS_PYTHON='${EMBER_PEERS_PYTHON}' is not an executable"
fi
if [ -n "${problem:-}" ]; then
  echo "conformance: ${problem}: run ./scripts/test.sh, which creates the peers venv" \
       "(tests/conformance/requirements.txt) and points EMBER_PEERS_PYTHON at its python." >&2
  exit 1
fi
exec "${EMBER_PEERS_PYTHON}" "$@"
