#!/usr/bin/env bash
# Benchmarks tower-bearer side by side with its peers (see BENCHMARKS.md).
#
#   bench/run.sh           full run (about 15-20 minutes): criterion, 5 rounds of every mode,
#                          issuance beside raw Argon2id, live tokens (1k/100k/1M), worker
#                          threads (1/2/4), Redis memory per token, revocation propagation;
#                          writes bench/results.json, bench/issuance.json, bench/chart.svg
#                          and the results part of BENCHMARKS.md
#   bench/run.sh --quick   under 5 minutes: 2 short rounds, 1 issuance round, every other step
#                          short, no criterion; writes to target/bench-quick/ (the published
#                          results stay as they are). The target directory is cargo's
#                          (CARGO_TARGET_DIR when set).
#
# Any other argument goes to bench-driver (bench-driver --help). It needs wrk (installed here
# from Debian's packages when missing), redis-server and taskset (util-linux), and 2 cores:
# the server and its redis-server run on CPU 0, wrk on CPU 1.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

quick=false
for arg in "$@"; do
  [[ "$arg" == --quick ]] && quick=true
done

install_packages() {
  if ! command -v apt-get >/dev/null; then
    echo "run.sh: please install: $*" >&2
    exit 1
  fi
  echo "run.sh: installing $* with apt-get" >&2
  apt-get install -y "$@" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$@" >/dev/null; }
}
command -v wrk >/dev/null || install_packages wrk
command -v redis-server >/dev/null || install_packages redis-server
command -v taskset >/dev/null || install_packages util-linux

if (( $(nproc) < 2 )); then
  echo "run.sh: needs at least 2 CPUs (server on CPU 0, wrk on CPU 1)" >&2
  exit 1
fi

echo "run.sh: building (cargo build --release -p bench)" >&2
cargo build --release -p bench
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="$target_dir/release"

if $quick; then
  exec "$bin/bench-driver" --lockfile "$root/Cargo.lock" --out "$target_dir/bench-quick" "$@"
fi

# criterion first, while nothing else runs; its figures go into the report.
export CRITERION_HOME="$target_dir/criterion"
rm -rf "$CRITERION_HOME/hot_paths"
cargo bench -p bench --bench hot_paths -- --warm-up-time 1 --measurement-time 3 --noplot

exec "$bin/bench-driver" --lockfile "$root/Cargo.lock" --out "$root/bench" \
  --markdown "$root/BENCHMARKS.md" --criterion "$CRITERION_HOME" "$@"
