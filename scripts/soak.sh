#!/usr/bin/env bash
# Load and leak test: 500 concurrent streams plus 20,000 mixed requests through a release
# `a2o serve` against `a2o mock-upstream`, all on loopback, repeated SOAK_ROUNDS times (3) so
# a leak shows as growth from round to round. Then checks that
#   - the client saw no error the mock did not inject (scripts/soak/load.py judges each answer);
#   - a2o_open_streams (from --metrics) is back to 0: no stuck stream tasks;
#   - the file-descriptor count is back to its baseline (idle upstream connections expire
#     after the upstream client's 90 s pool timeout, so this waits for up to SOAK_FD_WAIT seconds);
#   - RSS is back near its baseline (within SOAK_RSS_SLACK_MB), and grew by at most
#     SOAK_LEAK_MB from the end of the first round to the end of the last;
#   - a2o logged no panic.
# and prints the figures. Not part of scripts/test.sh: the build takes a few minutes, the run
# itself well under one (it stops by itself after SOAK_DEADLINE seconds in any case).
#
# Usage: scripts/soak.sh            (defaults below; override with the environment)
#   SOAK_STREAMS=500 SOAK_REQUESTS=20000 SOAK_CONCURRENCY=64 SOAK_ROUNDS=3 SOAK_FD_WAIT=120
#   SOAK_RSS_SLACK_MB=64 SOAK_LEAK_MB=16 SOAK_FD_SLACK=8 SOAK_DEADLINE=290
set -euo pipefail
cd "$(dirname "$0")/.."

STREAMS=${SOAK_STREAMS:-500}
REQUESTS=${SOAK_REQUESTS:-20000}
CONCURRENCY=${SOAK_CONCURRENCY:-64}
ROUNDS=${SOAK_ROUNDS:-3}
LEAK_MB=${SOAK_LEAK_MB:-16}
FD_WAIT=${SOAK_FD_WAIT:-120}
RSS_SLACK_MB=${SOAK_RSS_SLACK_MB:-64}
FD_SLACK=${SOAK_FD_SLACK:-8}
# The whole run, build excluded, stops after this many seconds whatever happens.
DEADLINE=${SOAK_DEADLINE:-290}

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "soak: building a2o (release)"
build_start=$SECONDS
cargo build --release --locked --bin a2o >"$work/build.log" 2>&1 || {
    cat "$work/build.log"
    exit 2
}
echo "soak: built in $((SECONDS - build_start)) s"
bin=target/release/a2o
start=$SECONDS
ulimit -n 20000 2>/dev/null || true

# Waits for a line matching $2 in file $1 and prints the first URL on it.
url_from() {
    local file=$1 pattern=$2 i
    for i in $(seq 100); do
        if grep -q "$pattern" "$file" 2>/dev/null; then
            grep "$pattern" "$file" | head -1 | grep -o 'http://[0-9.:]*'
            return 0
        fi
        sleep 0.1
    done
    echo "soak: timed out waiting for '$pattern' in $file:" >&2
    cat "$file" >&2
    return 1
}

"$bin" mock-upstream --host 127.0.0.1 --port 0 >"$work/mock.out" 2>"$work/mock.err" &
pids+=($!)
mock=$(url_from "$work/mock.out" "listening")

# One a2o serving every route: `mock-openai` goes to the mock as an OpenAI upstream
# (model_list, the client's keys), every other model to the default Anthropic upstream.
cat >"$work/a2o.yaml" <<EOF
model_list:
  - model_name: mock-openai
    litellm_params:
      model: openai/gpt-mock-1
      api_base: $mock/v1
a2o:
  upstream: $mock
  upstream_protocol: anthropic
EOF
"$bin" serve --no-dotenv --config "$work/a2o.yaml" --host 127.0.0.1 --anthropic-port 0 \
    --openai-port 0 --metrics --http-timeout 10 --max-retry-wait 0.05 \
    >"$work/a2o.out" 2>"$work/a2o.err" &
a2o_pid=$!
pids+=("$a2o_pid")
anthropic_front=$(url_from "$work/a2o.out" "anthropic front")
openai_front=$(url_from "$work/a2o.out" "openai front")
echo "soak: mock $mock, a2o pid $a2o_pid on $anthropic_front (anthropic) and $openai_front (openai)"

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$a2o_pid/status"; }
fds() { ls "/proc/$a2o_pid/fd" | wc -l; }
open_streams() {
    python3 - "$anthropic_front" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1] + "/metrics", timeout=5).read().decode()
values = [line.split()[-1] for line in text.splitlines() if line.startswith("a2o_open_streams")]
print(int(float(values[0])) if values else 0)
EOF
}
remaining() { echo $((DEADLINE - (SECONDS - start))); }

load() {
    timeout "$(remaining)" python3 scripts/soak/load.py --anthropic-front "$anthropic_front" \
        --openai-front "$openai_front" "$@"
}

# Warm up (connection pools, allocator arenas, lazily built state), then take the baseline.
load --phase mixed --requests 1000 --concurrency "$CONCURRENCY" --seed 1 >"$work/warmup.json"
sleep 1
base_rss=$(rss_kb)
base_fds=$(fds)
echo "soak: baseline after warm-up: RSS $((base_rss / 1024)) MiB, $base_fds fds"

# Sample the peak RSS and FD count while the load runs.
(
    peak_rss=0 peak_fds=0
    while kill -0 "$a2o_pid" 2>/dev/null; do
        r=$(rss_kb 2>/dev/null || echo 0)
        f=$(fds 2>/dev/null || echo 0)
        ((r > peak_rss)) && peak_rss=$r
        ((f > peak_fds)) && peak_fds=$f
        echo "$peak_rss $peak_fds" >"$work/peak"
        sleep 0.2
    done
) &
pids+=($!)

status=0
round_rss=()
for round in $(seq "$ROUNDS"); do
    load --streams "$STREAMS" --requests "$REQUESTS" --concurrency "$CONCURRENCY" \
        --seed "$((round + 1))" >"$work/load.json" 2>"$work/load.err" || status=$?
    head -40 "$work/load.err"
    round_rss+=("$(rss_kb)")
    echo "soak: round $round: RSS $((${round_rss[-1]} / 1024)) MiB, $(fds) fds: $(cat "$work/load.json")"
    ((status == 0)) || break
done
read -r peak_rss peak_fds <"$work/peak"

# Let streams wind down and idle connections expire, within the deadline.
streams_left=$(open_streams)
waited=0
while { ((streams_left != 0)) || (($(fds) > base_fds + FD_SLACK)); } &&
    ((waited < FD_WAIT)) && (($(remaining) > 5)); do
    sleep 5
    waited=$((waited + 5))
    streams_left=$(open_streams)
done
after_rss=$(rss_kb)
after_fds=$(fds)

panics=$(grep -c "panicked" "$work/a2o.err" || true)
echo
echo "soak figures"
echo "  duration:      $((SECONDS - start)) s (build excluded), waited $waited s for the drain"
echo "  load:          $ROUNDS rounds of $STREAMS concurrent streams + $REQUESTS mixed requests"
echo "  RSS (MiB):     baseline $((base_rss / 1024)), peak $((peak_rss / 1024)), after $((after_rss / 1024))" \
    "(after each round: $(printf '%s ' "${round_rss[@]/%/}" | awk '{for (i = 1; i <= NF; i++) printf "%d ", $i / 1024}'))"
echo "  fds:           baseline $base_fds, peak $peak_fds, after $after_fds"
echo "  open streams:  after $streams_left"
echo "  panics logged: $panics"

failed=()
((status == 0)) || failed+=("the load saw unexpected answers (exit $status)")
((streams_left == 0)) || failed+=("$streams_left streams still open")
((after_fds <= base_fds + FD_SLACK)) || failed+=("fds $after_fds > baseline $base_fds + $FD_SLACK")
((after_rss <= base_rss + RSS_SLACK_MB * 1024)) ||
    failed+=("RSS $((after_rss / 1024)) MiB > baseline $((base_rss / 1024)) + $RSS_SLACK_MB MiB")
((panics == 0)) || failed+=("a2o logged $panics panics")
growth=$((${round_rss[-1]} - ${round_rss[0]}))
((growth <= LEAK_MB * 1024)) ||
    failed+=("RSS grew $((growth / 1024)) MiB from round 1 to round ${#round_rss[@]}: a leak?")
if ((${#failed[@]})); then
    printf 'soak: FAILED: %s\n' "${failed[@]}"
    exit 1
fi
echo "soak: passed"
