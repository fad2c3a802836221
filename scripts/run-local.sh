#!/usr/bin/env bash
# `make run`: a throwaway local Postgres with the heartbeat table and a demo
# worker heartbeat, `meshhook-health serve` on 127.0.0.1:3000, one answer
# printed; Ctrl-C stops everything this script started and removes its files.
#
# Needs only the Rust toolchain and the PostgreSQL server package (Debian
# keeps initdb in /usr/lib/postgresql/<version>/bin, off PATH: looked up here).
# Set SUPABASE_URL and SUPABASE_ANON_KEY to include the Supabase check.
# With DATABASE_URL set it checks that database instead, as it is: no
# throwaway Postgres, no migrate, no demo heartbeat (it says so).
# MESHHOOK_HEALTH_BIN runs that binary instead of building one.
# HEALTH_LISTEN (an address) or PORT (a port on 127.0.0.1) moves it off
# 3000; a port already taken stops it at once, before anything starts.
set -euo pipefail
cd "$(dirname "$0")/.."

listen="${HEALTH_LISTEN:-127.0.0.1:${PORT:-3000}}"
host=${listen%:*}
lport=${listen##*:}
# Cargo builds into CARGO_TARGET_DIR when set (a shared target directory).
bin=${MESHHOOK_HEALTH_BIN:-${CARGO_TARGET_DIR:-target}/release/meshhook-health}

source scripts/lib.sh
if listening "$host" "$lport"; then
    echo "make run: $listen is already taken by another process; pick another port: PORT=3001 make run (or HEALTH_LISTEN=127.0.0.1:3001)" >&2
    exit 1
fi
own_database=true
if [ -n "${DATABASE_URL:-}" ]; then
    own_database=false
else
    find_pg_bin >/dev/null || exit 1
fi

if [ -z "${MESHHOOK_HEALTH_BIN:-}" ]; then
    echo "==> building meshhook-health (release)"
    cargo build --release --locked --quiet
fi

dir=$(mktemp -d /tmp/meshhook-health-run.XXXXXX)
pids=()
cleanup() {
    local status=${1:-0}
    trap - EXIT INT TERM
    echo
    echo "==> stopping"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    stop_throwaway_postgres "$dir"
    rm -rf "$dir"
    exit "$status"
}
trap 'cleanup $?' EXIT
trap 'cleanup 0' INT TERM

HEALTH_COMPONENTS=$(default_components)
export HEALTH_COMPONENTS
if [ "$own_database" = true ]; then
    start_throwaway_postgres "$dir"
    "$bin" migrate
    "$bin" heartbeat --worker-id demo-worker-1 --kind worker --every 15 &
    pids+=($!)
else
    echo "==> checking DATABASE_URL from the environment as it is: no throwaway Postgres, no migrate, no demo heartbeat"
fi
"$bin" serve --listen "$listen" &
serve=$!
pids+=("$serve")

# Listening, or gone: only our own server's answer is printed.
for _ in $(seq 1 200); do
    if ! kill -0 "$serve" 2>/dev/null; then
        wait "$serve" || true
        echo "make run: meshhook-health serve did not start on $listen (its error is above); PORT=3001 make run picks another port" >&2
        exit 1
    fi
    if listening "$host" "$lport"; then break; fi
    sleep 0.05
done
sleep 0.2 # let the demo heartbeat land
echo "==> GET http://$listen/health"
exec 3<>"/dev/tcp/$host/$lport"
printf 'GET /health HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$listen" >&3
cat <&3
exec 3<&-
echo
echo
echo "==> serving on http://$listen/health (components: $HEALTH_COMPONENTS); Ctrl-C stops everything"
wait "${pids[-1]}"
