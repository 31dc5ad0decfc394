#!/usr/bin/env bash
# a2o side by side with LiteLLM and anyllm_proxy, in one command: installs the peers if they
# are missing (LiteLLM in a venv, anyllm_proxy with cargo install, both under
# ~/.cache/a2o-bench; a peer whose install fails is skipped with a message), builds a2o, and
# runs scripts/bench/peers.py in a private network namespace (`unshare -n`) with 198.18.0.1 on
# `lo`. Prints the table and writes target/bench/peers.md. Takes about ten minutes.
#
# Environment: BENCH_DURATION (seconds per wrk run, default 3), BENCH_TTFT_PROBES (30),
# BENCH_STREAMS (1000), A2O_BENCH_CACHE (where the peers are installed).
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${A2O_BENCH_CACHE:-$HOME/.cache/a2o-bench}"
mkdir -p "$cache"
say() { echo "[bench-peers] $*" >&2; }

bench_pid=""
cleanup() {
  if [[ -n "$bench_pid" ]] && kill -0 "$bench_pid" 2>/dev/null; then
    kill -TERM "$bench_pid" 2>/dev/null || true
    wait "$bench_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v unshare >/dev/null && command -v ip >/dev/null || {
  say "unshare and ip (util-linux, iproute2) are required"; exit 1; }
if ! command -v wrk >/dev/null; then
  say "installing wrk (Debian package)"
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi

# LiteLLM: its proxy extra, in a venv of its own.
litellm="$cache/litellm-venv/bin/litellm"
if [[ ! -x "$litellm" ]]; then
  say "installing LiteLLM into $cache/litellm-venv"
  if ! { python3 -m venv "$cache/litellm-venv" &&
         "$cache/litellm-venv/bin/pip" install -q 'litellm[proxy]'; } >"$cache/litellm-install.log" 2>&1; then
    say "LiteLLM could not be installed (see $cache/litellm-install.log): it is skipped"
    litellm=""
  fi
fi

# anyllm_proxy from crates.io; the build directory is removed afterwards (it is large).
anyllm="$(command -v anyllm-proxy || true)"
if [[ -z "$anyllm" && -x "$cache/anyllm/bin/anyllm-proxy" ]]; then
  anyllm="$cache/anyllm/bin/anyllm-proxy"
fi
if [[ -z "$anyllm" ]]; then
  say "installing anyllm_proxy with cargo install (several minutes)"
  if CARGO_TARGET_DIR="$cache/anyllm-target" cargo install anyllm_proxy --locked --root "$cache/anyllm" \
       >"$cache/anyllm-install.log" 2>&1; then
    anyllm="$cache/anyllm/bin/anyllm-proxy"
  else
    say "anyllm_proxy could not be installed (see $cache/anyllm-install.log): it is skipped"
  fi
  rm -rf "$cache/anyllm-target"
fi

say "building the release binary and the probe"
cargo build --release --locked --bin a2o --example bench_probe

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
export LITELLM_BIN="$litellm" ANYLLM_BIN="$anyllm"
unshare -n bash -c '
  set -e
  ip link set lo up
  ip addr add 198.18.0.1/15 dev lo
  exec python3 scripts/bench/peers.py "$@"
' peers "$@" &
bench_pid=$!
wait "$bench_pid"
