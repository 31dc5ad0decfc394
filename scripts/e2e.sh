#!/usr/bin/env bash
# Runs the end-to-end suites: the official SDKs driving `a2o serve` in front of
# `a2o mock-upstream`, and the converted golden streams fed to the SDKs' stream accumulators.
#   1. tests/e2e (pytest): the `openai` and `anthropic` Python SDKs. Creates or reuses the venv
#      .venv-e2e and installs tests/e2e/requirements.txt (all pinned) from PyPI when it changed.
#   2. tests/e2e_node (node --test): the `openai` and `@anthropic-ai/sdk` Node SDKs, installed
#      with `npm ci` from tests/e2e_node/package-lock.json. Skipped, with a notice, when node
#      or npm is missing, or when E2E_NODE=0.
# Arguments are passed to pytest:
#   bash scripts/e2e.sh                 # everything
#   bash scripts/e2e.sh -k golden -x    # a subset of the Python suite, stop at the first failure
# PYTHON picks the interpreter for the venv (default python3; the SDKs need 3.9 or later).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv-e2e
REQUIREMENTS=tests/e2e/requirements.txt
NODE_DIR=tests/e2e_node

# Prints the hash of a file, so dependencies are reinstalled only when their pins change.
fingerprint() { sha256sum "$1" | cut -d' ' -f1; }

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV" || {
    echo "e2e: could not create $VENV with $PYTHON (on Debian: apt-get install python3-venv)" >&2
    exit 1
  }
fi
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)" != "$(fingerprint "$REQUIREMENTS")" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  fingerprint "$REQUIREMENTS" > "$VENV/.requirements.sha256"
fi

cargo build --locked --quiet --bin a2o
export A2O_BIN="$PWD/target/debug/a2o"

# pytest exits 5 when it collects nothing; that fails this script, as it should.
"$VENV/bin/python" -m pytest -c tests/e2e/pytest.ini --rootdir tests/e2e tests/e2e "$@"

if [ "${E2E_NODE:-1}" = "0" ]; then
  echo "e2e: E2E_NODE=0, Node SDK suite skipped"
elif ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "e2e: node or npm not found, Node SDK suite skipped"
else
  lock="$NODE_DIR/package-lock.json"
  if [ "$(cat "$NODE_DIR/node_modules/.lock.sha256" 2>/dev/null || true)" != "$(fingerprint "$lock")" ]; then
    (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
    fingerprint "$lock" > "$NODE_DIR/node_modules/.lock.sha256"
  fi
  (cd "$NODE_DIR" && node --test --test-concurrency=1 --test-timeout=60000)
fi
