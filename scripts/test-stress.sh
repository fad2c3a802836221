#!/usr/bin/env bash
# `make test-stress`: the whole `make test`, RUNS times in a row (default
# 10), while stress-ng keeps two CPU-bound workers busy on the same machine —
# what a user's small, busy machine does to the suite. Prints one line per
# run and a closing tally; exits 1 if any run failed (its log is kept).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-10}
scripts/provision.sh test stress
logs=$(mktemp -d)

# Compile once before the load starts; every run then tests, not builds.
cargo test --locked --lib --bins --test it --no-run >"$logs/build.log" 2>&1 ||
    { cat "$logs/build.log" >&2; exit 1; }

stress-ng --cpu 2 --timeout "$((runs * 900))s" --quiet &
stress=$!
trap 'kill "$stress" 2>/dev/null || true; wait "$stress" 2>/dev/null || true' EXIT
echo "test-stress: $runs runs of make test beside stress-ng --cpu 2 (pid $stress) on $(nproc) cores"

passed=0
failed=0
for run in $(seq 1 "$runs"); do
    started=$SECONDS
    log="$logs/run-$run.log"
    if make test >"$log" 2>&1; then
        passed=$((passed + 1))
        outcome=passed
    else
        failed=$((failed + 1))
        outcome="FAILED (log: $log)"
    fi
    tests=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -1)
    printf 'run %2d/%d: %s in %4d s (%s)\n' "$run" "$runs" "$outcome" $((SECONDS - started)) "$tests"
    if [ "$outcome" != passed ]; then grep -E '^test .* FAILED$|panicked at' "$log" | head -20 || true; fi
done
echo "test-stress: $passed of $runs runs passed under load"
[ "$failed" -eq 0 ] && rm -rf "$logs"
[ "$failed" -eq 0 ]
