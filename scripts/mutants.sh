#!/usr/bin/env bash
# Mutation testing of the request path and the security-critical code with cargo-mutants:
# every mutant of a file is built and the test suite run against it (nextest, a timeout per
# mutant); a mutant the tests do not catch is a test to write, or an equivalent mutant to
# explain in MUTANTS.md. A whole run is hours on 2 cores, so it goes one file at a time and
# resumes: a file whose results are already in target/mutants/<file>/ is skipped (delete
# that directory, or pass --again, to run it anew). Not part of CI.
#
#   scripts/mutants.sh                  every file of the list below
#   scripts/mutants.sh src/bearer/header.rs src/sign_in/totp.rs
#   scripts/mutants.sh --again FILE     run FILE again
#
# MUTANTS_ARGS passes options to cargo mutants, e.g. MUTANTS_ARGS=--in-place in a worktree
# of its own, to build in place with a warm target directory instead of a fresh copy.
# MUTANT_TIMEOUT (seconds, default 300) bounds each mutant's tests. Only the targets that hold
# the tests of the filters below are built (the library's unit tests and `tests/it`, not the
# examples), without debug info: each mutant is a rebuild, and linking is most of it.
#
# Prints, per file, caught / missed / timeout / unviable; the missed mutants are listed in
# target/mutants/<file>/mutants.out/missed.txt.
set -uo pipefail
cd "$(dirname "$0")/.."

files=(
    src/bearer/header.rs
    src/bearer/service.rs
    src/bearer/future.rs
    src/bearer/extract.rs
    src/registry/mod.rs
    src/registry/issue.rs
    src/registry/sessions.rs
    src/store/memory.rs
    src/store/redis/tokens.rs
    src/store/redis/cache.rs
    src/store/redis/codec.rs
    src/store/redis/expiring_hashes.rs
    src/sign_in/lockout.rs
    src/sign_in/mod.rs
    src/sign_in/totp.rs
    src/token/secret.rs
    src/token/caller.rs
    src/token/scope.rs
    src/token/hash_state.rs
)
again=false
if [[ "${1:-}" == --again ]]; then
    again=true
    shift
fi
if [[ $# -gt 0 ]]; then
    files=("$@")
fi

command -v cargo-mutants >/dev/null 2>&1 || cargo install cargo-mutants --locked
command -v cargo-nextest >/dev/null 2>&1 || cargo install cargo-nextest --locked
if ! command -v redis-server >/dev/null 2>&1; then
    echo "redis-server is not on PATH: run ./scripts/test.sh once (it installs it)" >&2
    exit 1
fi

# The tests that exercise each part (nextest filtersets): a mutant is judged by them and the
# unit tests, not by the whole suite, so that one mutant costs seconds, not minutes.
tests_for() {
    case "$1" in
        src/bearer/*) echo 'kind(lib) | test(/^layer::|^scopes::|^graphql_scopes::/)' ;;
        src/registry/*) echo 'kind(lib) | test(/^conformance::memory|^session_conformance::memory|^sessions::|^events::|^scopes::|^token_format::|^introspection::/)' ;;
        src/store/memory.rs) echo 'kind(lib) | test(/^conformance::memory|^session_conformance::memory|^memory_store::|^graphql_ws::/)' ;;
        # With the cluster's suites (its own code paths: one key per command) and the
        # sockets closed by the revocation feed: about a minute more per mutant.
        src/store/redis/*) echo 'kind(lib) | test(/^conformance::(redis|cluster)|^session_conformance::(redis|cluster)|^redis_store::|^cache::|^redis_idle::|^replication::|^cluster::|^graphql_ws::/)' ;;
        src/sign_in/*) echo 'kind(lib) | test(/^routes::|^two_factor::|^events::|^client_details::/)' ;;
        *) echo 'kind(lib) | test(/^layer::|^token_format::|^conformance::memory/)' ;;
    esac
}

timeout="${MUTANT_TIMEOUT:-300}"
printf '%-32s %7s %7s %8s %9s\n' file caught missed timeout unviable
for file in "${files[@]}"; do
    out="target/mutants/${file//\//_}"
    if [[ -f "$out/mutants.out/outcomes.json" && "$again" == false ]]; then
        : # done before: print its figures again
    else
        rm -rf "$out"
        mkdir -p "$out"
        CARGO_PROFILE_DEV_DEBUG=0 cargo mutants ${MUTANTS_ARGS:-} --file "$file" \
            --test-tool nextest --all-features --timeout "$timeout" --output "$out" \
            --no-shuffle --cargo-arg=--lib --cargo-arg=--test=it \
            -- -E "$(tests_for "$file")" >"$out/run.log" 2>&1
    fi
    count() { wc -l <"$out/mutants.out/$1.txt" 2>/dev/null | tr -d ' ' || echo 0; }
    printf '%-32s %7s %7s %8s %9s\n' "$file" "$(count caught)" "$(count missed)" \
        "$(count timeout)" "$(count unviable)"
done
