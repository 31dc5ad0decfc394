#!/usr/bin/env bash
# Runs every conformance suite in conformance/ against `a2o serve` in front of the project's
# deterministic mock upstream: one mock, and two proxies (one per upstream dialect), all on
# loopback with free ports. Everything started here is stopped on exit, even on failure.
#
# Usage: bash scripts/conformance.sh [extra `a2o check` arguments, e.g. --jobs 8 or --tag tools]
#   A2O_BUILD_PROFILE=release  build and run the release binary (default: the debug build,
#                              which reuses what `cargo test` already compiled)
#   A2O_CONFORMANCE_REPORTS=DIR  also write DIR/<upstream>-upstream.xml (JUnit) and .json
# Every case must pass, `should` ones included (--strict).
# Exit code: the worst of the `a2o check` runs (0 pass, 1 a case failed, 2 could not run).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${A2O_BUILD_PROFILE:-debug}
if [[ $profile == release ]]; then
    cargo build --release --locked --bin a2o
else
    cargo build --locked --bin a2o
fi
bin=target/$profile/a2o

workdir=$(mktemp -d)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME ARGS...: runs the binary in the background, output in $workdir/NAME.{out,err}.
start() {
    local name=$1
    shift
    "$bin" "$@" >"$workdir/$name.out" 2>"$workdir/$name.err" &
    pids+=($!)
}

# address NAME PATTERN: waits (10 s at most) for a line `PATTERN http://ADDR` on NAME's stdout
# and prints the URL.
address() {
    local name=$1 pattern=$2 line
    for _ in $(seq 1 100); do
        line=$(grep -m1 -- "$pattern" "$workdir/$name.out" 2>/dev/null || true)
        if [[ -n $line ]]; then
            echo "http://${line##*http://}"
            return 0
        fi
        sleep 0.1
    done
    echo "conformance: $name did not start; its output:" >&2
    cat "$workdir/$name.out" "$workdir/$name.err" >&2
    return 1
}

start mock mock-upstream --host 127.0.0.1 --port 0
mock=$(address mock "listening on")

for upstream in anthropic openai; do
    start "serve-$upstream" serve --no-dotenv --host 127.0.0.1 --anthropic-port 0 --openai-port 0 \
        --upstream "$mock" --upstream-protocol "$upstream" --log-format json
done
declare -A anthropic_front openai_front
for upstream in anthropic openai; do
    anthropic_front[$upstream]=$(address "serve-$upstream" "anthropic front:")
    openai_front[$upstream]=$(address "serve-$upstream" "openai front:")
done

# The mock accepts any key; the failover cases put a failing key in front of this one.
export A2O_CHECK_API_KEY=${A2O_CHECK_API_KEY:-sk-conformance-mock-key}

status=0
passed=0
failed=0
skipped=0
for upstream in anthropic openai; do
    echo "== conformance: both fronts, $upstream upstream (mock at $mock)"
    reports=()
    if [[ -n ${A2O_CONFORMANCE_REPORTS:-} ]]; then
        mkdir -p "$A2O_CONFORMANCE_REPORTS"
        reports=(--report junit "$A2O_CONFORMANCE_REPORTS/$upstream-upstream.xml"
                 --report json "$A2O_CONFORMANCE_REPORTS/$upstream-upstream.json")
    fi
    set +e
    "$bin" check "conformance/openai-front/$upstream-upstream" \
        "conformance/anthropic-front/$upstream-upstream" \
        --target-openai "${openai_front[$upstream]}" \
        --target-anthropic "${anthropic_front[$upstream]}" \
        --strict "${reports[@]}" "$@" | tee "$workdir/check-$upstream.out"
    code=${PIPESTATUS[0]}
    set -e
    if ((code > status)); then
        status=$code
    fi
    summary=$(tail -n 1 "$workdir/check-$upstream.out")
    if [[ $summary =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
        passed=$((passed + BASH_REMATCH[1]))
        failed=$((failed + BASH_REMATCH[2]))
        skipped=$((skipped + ${BASH_REMATCH[4]:-0}))
    fi
done

if ((status == 2)); then
    # The check could not run: the servers' own words may say why.
    for name in mock serve-anthropic serve-openai; do
        echo "-- $name log (last 10 lines)" >&2
        tail -n 10 "$workdir/$name.err" >&2 || true
    done
fi
line="$passed passed, $failed failed"
if ((skipped > 0)); then
    line+=", $skipped skipped"
fi
echo "conformance: $line"
exit "$status"
