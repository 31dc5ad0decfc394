#!/usr/bin/env bash
# Runs every cargo-fuzz target under fuzz/ for a bounded time and prints what each ran and
# found. cargo fuzz needs nightly features; the machine has only stable Rust, so this sets
# RUSTC_BOOTSTRAP=1 (stable then accepts -Zsanitizer and friends). The first run builds the
# targets with AddressSanitizer, which takes about 10 minutes on 2 cores.
#
# Usage: scripts/fuzz.sh [target ...]          (default: every target)
#   FUZZ_SECONDS=60      seconds per target
#   FUZZ_SANITIZER=address   or none (faster, finds panics only)
#   FUZZ_JOBS=1          parallel fuzzing jobs per target
# Seeds come from testdata/ (the golden requests and recorded streams); the corpus grows in
# fuzz/corpus/<target>, crashes land in fuzz/artifacts/<target>, logs in fuzz/<target>.log. Exit 1 if anything crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
SANITIZER=${FUZZ_SANITIZER:-address}
JOBS=${FUZZ_JOBS:-1}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

all_targets=(sse_decoder request_openai_to_anthropic request_anthropic_to_openai
    stream_anthropic_to_openai stream_openai_to_anthropic)
targets=("${@:-${all_targets[@]}}")

# Seeds: each target reads its first byte as split sizes or flags, so stream seeds get one.
seed() {
    local target=$1 dir=fuzz/corpus/$1 file
    mkdir -p "$dir"
    case $target in
    sse_decoder) set -- testdata/stream/*/*.sse ;;
    request_openai_to_anthropic) set -- testdata/request/openai-to-anthropic/*.in.json ;;
    request_anthropic_to_openai) set -- testdata/request/anthropic-to-openai/*.in.json ;;
    stream_anthropic_to_openai) set -- testdata/stream/anthropic-to-openai/*.in.sse ;;
    stream_openai_to_anthropic) set -- testdata/stream/openai-to-anthropic/*.in.sse ;;
    esac
    for file in "$@"; do
        [[ -f $file ]] || continue
        case $target in
        request_*) cp "$file" "$dir/seed-$(basename "$file")" ;;
        *) { printf '\x31'; cat "$file"; } >"$dir/seed-$(basename "$file")" ;;
        esac
    done
}

echo "fuzz: building the targets (sanitizer: $SANITIZER)"
build_start=$SECONDS
cargo fuzz build -O -s "$SANITIZER" >/dev/null 2>fuzz/build.log || {
    tail -40 fuzz/build.log
    exit 2
}
echo "fuzz: built in $((SECONDS - build_start)) s"

summary=()
crashed=0
for target in "${targets[@]}"; do
    seed "$target"
    mkdir -p "fuzz/artifacts/$target"
    log=fuzz/$target.log
    echo "fuzz: $target for $SECONDS_PER_TARGET s"
    parallel=()
    # -jobs writes each job's output to fuzz-N.log; with one job, keep it in $log.
    ((JOBS > 1)) && parallel=(-jobs="$JOBS" -workers="$JOBS")
    status=0
    cargo fuzz run -O -s "$SANITIZER" "$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -dict=fuzz/a2o.dict -timeout=10 \
        -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 "${parallel[@]}" \
        >"$log" 2>&1 || status=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' |
        awk '{s += $1} END {print s + 0}')
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' |
        awk '{s += $1} END {print s + 0}')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
    corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
    found=$(find "fuzz/artifacts/$target" -type f | wc -l)
    if ((status != 0 || found > 0)); then
        crashed=1
        result="FOUND $found (see fuzz/artifacts/$target, log $log)"
        grep -m1 -A12 -E "panicked|ERROR: AddressSanitizer|ERROR: libFuzzer" "$log" || true
    else
        result="nothing"
    fi
    summary+=("$(printf '%-28s %4ss %10s execs %7s/s  cov %6s  corpus %5s  %s' \
        "$target" "$SECONDS_PER_TARGET" "$execs" "$rate" "$cov" "$corpus" "$result")")
done

echo
echo "fuzz summary"
printf '  %s\n' "${summary[@]}"
exit "$crashed"
