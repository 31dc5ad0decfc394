#!/usr/bin/env bash
# The a2o benchmark in one command: builds the release binary and the probe, installs wrk if it
# is missing, and runs scripts/bench/bench.py, which starts the mock upstream and a2o, checks
# that requests really reach the mock, measures, prints one markdown report and writes it to
# target/bench/results.md. Takes about five minutes; everything it starts is stopped on exit.
#
# Environment: BENCH_DURATION (seconds per wrk run, default 4), BENCH_TTFT_PROBES (80),
# BENCH_STREAMS (1000), BENCH_PIN=1 (a2o on CPU 0, mock and wrk on CPU 1), BENCH_TRANSCRIPT_MB (64).
set -euo pipefail
cd "$(dirname "$0")/.."

bench_pid=""
cleanup() {
  if [[ -n "$bench_pid" ]] && kill -0 "$bench_pid" 2>/dev/null; then
    kill -TERM "$bench_pid" 2>/dev/null || true
    wait "$bench_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! command -v wrk >/dev/null; then
  echo "[bench] installing wrk (Debian package)" >&2
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null
  fi
fi
command -v python3 >/dev/null || { echo "[bench] python3 is required" >&2; exit 1; }

echo "[bench] building the release binary and the probe" >&2
cargo build --release --locked --bin a2o --example bench_probe

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
python3 scripts/bench/bench.py "$@" &
bench_pid=$!
wait "$bench_pid"
