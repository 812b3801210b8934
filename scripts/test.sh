#!/usr/bin/env bash
# Runs the whole test suite (unit, integration against real redis-server processes, a
# local Redis Cluster and Redis Sentinels the tests start themselves, doctests). Installs
# redis-server and redis-cli first when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# redis-cli starts the local Redis Cluster of the cluster tests (`--cluster create`) and
# drives the sentinel tests (`SENTINEL FAILOVER`). Debian ships it in redis-tools, which
# redis-server depends on; Homebrew's redis has both. The sentinels are redis-server itself
# (`redis-server <conf> --sentinel`): no other package is needed.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    echo "redis-server or redis-cli is not on PATH: installing them" >&2
    if command -v apt-get >/dev/null 2>&1; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server redis-tools >/dev/null
    elif command -v brew >/dev/null 2>&1; then
        brew install redis
    else
        echo "Install redis-server and redis-cli (Redis 7.0 or later) and run this again." >&2
        exit 1
    fi
fi
redis-server --version
redis-cli --version

cargo test --all-features "$@"
