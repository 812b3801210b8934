#!/usr/bin/env bash
# Runs the whole test suite (unit, integration against real redis-server processes the
# tests start themselves, doctests). Installs redis-server first when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
    echo "redis-server is not on PATH: installing it" >&2
    if command -v apt-get >/dev/null 2>&1; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
    elif command -v brew >/dev/null 2>&1; then
        brew install redis
    else
        echo "Install redis-server (Redis 7.0 or later) and run this again." >&2
        exit 1
    fi
fi
redis-server --version

cargo test --all-features "$@"
