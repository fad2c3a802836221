#!/usr/bin/env bash
# `make invoke EVENT=events/…json`: one event through the real binary in
# Lambda mode, with cargo-lambda's Runtime API emulator (`pip install
# cargo-lambda`), and the function's answer printed. Without DATABASE_URL in
# the environment, a throwaway Postgres with the heartbeat table and a fresh
# heartbeat stands in. Supabase is checked only when SUPABASE_URL is set
# (HEALTH_COMPONENTS overrides), whichever database is used.
set -euo pipefail
cd "$(dirname "$0")/.."
event=${1:?usage: make invoke EVENT=events/http-api-default-stage.json}
[ -f "$event" ] || { echo "make invoke: no such event file: $event" >&2; exit 2; }
scripts/need.sh invoke cargo-lambda="pip install cargo-lambda"
source scripts/lib.sh

dir=$(mktemp -d /tmp/meshhook-health-invoke.XXXXXX)
watch_pid=""
cleanup() {
    [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null
    stop_throwaway_postgres "$dir"
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

cargo build --locked --quiet
HEALTH_COMPONENTS=$(default_components)
export HEALTH_COMPONENTS
if [ -z "${DATABASE_URL:-}" ]; then
    start_throwaway_postgres "$dir"
    "${CARGO_TARGET_DIR:-target}"/debug/meshhook-health migrate 2>/dev/null
    "${CARGO_TARGET_DIR:-target}"/debug/meshhook-health heartbeat --worker-id invoke-demo 2>/dev/null
fi

port=$(free_port 9200)
cargo lambda watch --quiet --ignore-changes --invoke-address 127.0.0.1 --invoke-port "$port" \
    >"$dir/watch.log" 2>&1 &
watch_pid=$!
for _ in $(seq 1 300); do
    listening 127.0.0.1 "$port" && break
    sleep 0.1
done
echo "==> invoking meshhook-health with $event"
cargo lambda invoke meshhook-health --invoke-address 127.0.0.1 --invoke-port "$port" \
    --data-file "$event" --output-format json
echo
