#!/usr/bin/env bash
# `make test` (and `make test-image`): cargo test over the given targets,
# then one closing line, "N passed, N failed, N skipped". A test that cannot
# run for a missing tool calls support::skip, which writes to the file named
# by MESHHOOK_HEALTH_SKIPPED: it counts as skipped, not passed, and is
# listed. With FAIL_ON_SKIP=1 (CI, which provisions every tool) a skip fails
# the run, except a skip of a test named in ALLOWED_SKIPS (comma list: what
# the caller knows cannot run there, e.g. `make test-pg17`'s standby test,
# whose pg_basebackup npm's PostgreSQL 17 lacks). Usage: scripts/test.sh
# CARGO-TEST-ARGS...
set -uo pipefail
cd "$(dirname "$0")/.."
skipped=$(mktemp)
log=$(mktemp)
trap 'rm -f "$skipped" "$log"' EXIT

MESHHOOK_HEALTH_SKIPPED="$skipped" cargo test --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

skips=$(grep -c . "$skipped")
awk -v skips="$skips" '/^test result:/ {p += $4; f += $6}
    END {printf "%d passed, %d failed, %d skipped\n", p - skips, f, skips}' "$log"
if [ "$skips" -gt 0 ]; then
    sed 's/^/  skipped: /' "$skipped"
    unexpected=$(sed "s/: .*//" "$skipped" | awk -v allowed=",${ALLOWED_SKIPS:-}," \
        'index(allowed, "," $0 ",") == 0' | grep -c . || true)
    if [ "${FAIL_ON_SKIP:-}" = 1 ] && [ "$unexpected" -gt 0 ]; then
        echo "FAIL_ON_SKIP=1: every tool should be here, yet a test was skipped" >&2
        status=1
    fi
fi
exit "$status"
