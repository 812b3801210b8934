#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) and prints, per target, the
# executions done and whether it crashed; exits 1 when any target crashed (the crashing
# input is kept under fuzz/artifacts/<target>/). Needs the nightly toolchain; installs
# cargo-fuzz when missing. The committed seeds (fuzz/seeds/<target>/) are read, never
# written: what the fuzzer finds goes to fuzz/target/corpus/<target>/.
#
#   fuzz/run.sh [SECONDS]
set -uo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
cargo +nightly fuzz build -O || exit 2

targets=$(cargo +nightly fuzz list)
failed=0
printf '%-24s %14s %10s  %s\n' target executions 'exec/s' result
for target in $targets; do
    corpus="fuzz/target/corpus/$target"
    mkdir -p "$corpus" "fuzz/seeds/$target"
    log="fuzz/target/$target.log"
    cargo +nightly fuzz run "$target" -O "$corpus" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
    status=$?
    runs=$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' | tail -1)
    if [ -z "$runs" ]; then
        runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
    fi
    runs="${runs:-0}"
    if [ "$status" -eq 0 ]; then
        result=ok
    else
        result="CRASHED (see $log and fuzz/artifacts/$target/)"
        failed=1
    fi
    printf '%-24s %14s %10s  %s\n' "$target" "$runs" "$((runs / seconds))" "$result"
done
exit "$failed"
