#!/usr/bin/env bash
# `make run`: a throwaway local Postgres with the heartbeat table and a demo
# worker heartbeat, `meshhook-health serve` on 127.0.0.1:3000, one answer
# printed; Ctrl-C stops everything this script started and removes its files.
#
# Needs only the Rust toolchain and the PostgreSQL server package (Debian
# keeps initdb in /usr/lib/postgresql/<version>/bin, off PATH: looked up here).
# Set SUPABASE_URL and SUPABASE_ANON_KEY to include the Supabase check.
set -euo pipefail
cd "$(dirname "$0")/.."

listen="${HEALTH_LISTEN:-127.0.0.1:3000}"
bin=target/release/meshhook-health

pg_bin=""
if command -v initdb >/dev/null 2>&1; then
    pg_bin=$(dirname "$(readlink -f "$(command -v initdb)")")
else
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ]; then pg_bin=$dir; break; fi
    done
fi
if [ -z "$pg_bin" ]; then
    echo "make run: PostgreSQL server binaries not found; install them (Debian: apt-get install postgresql)" >&2
    exit 1
fi

# Postgres refuses to run as root: run it as the postgres OS user then.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

echo "==> building meshhook-health (release)"
cargo build --release --locked --quiet

dir=$(mktemp -d /tmp/meshhook-health-run.XXXXXX)
chmod 755 "$dir"
[ "$(id -u)" -eq 0 ] && chown postgres "$dir"
pids=()
cleanup() {
    trap - EXIT INT TERM
    echo
    echo "==> stopping"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    as_pg "$pg_bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    exit 0
}
trap cleanup EXIT INT TERM

port=""
for p in $(seq 54329 54429); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "make run: no free port for Postgres" >&2; exit 1; }

echo "==> starting a throwaway Postgres on 127.0.0.1:$port ($dir)"
as_pg "$pg_bin/initdb" --no-sync -A trust -U postgres -D "$dir/data" >/dev/null
as_pg "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null

export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
if [ -n "${SUPABASE_URL:-}" ]; then
    export HEALTH_COMPONENTS="${HEALTH_COMPONENTS:-database,supabase,workers}"
else
    export HEALTH_COMPONENTS="${HEALTH_COMPONENTS:-database,workers}"
fi

"$bin" migrate
"$bin" heartbeat --worker-id demo-worker-1 --kind worker --every 15 &
pids+=($!)
"$bin" serve --listen "$listen" &
pids+=($!)

host=${listen%:*}
lport=${listen##*:}
for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/$host/$lport") 2>/dev/null; then break; fi
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
