#!/usr/bin/env bash
# The chaos soak (see BENCHMARKS.md, "Under faults"): Redis (a primary and a replica), two
# instances of the example server with the local cache on, and a load generator that judges
# every answer, while Redis is killed, frozen and cut from its subscribers and an app
# instance is restarted at random moments. Writes target/soak/report.json; exits 1 when an
# invariant fails.
#
#   scripts/soak.sh            10 minutes, 12 faults of each kind
#   scripts/soak.sh --quick    90 seconds, 3 faults of each kind
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
cargo build --release --example server
cargo build --release -p bench --bin soak
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
rm -rf "$target_dir/soak"
exec "$target_dir/release/soak" --server "$target_dir/release/examples/server" \
    --out "$target_dir/soak" "$@"
