#!/usr/bin/env bash
# What TLS adds to start-up: runs examples/startup_cost (release) RUNS times
# per sslmode against a throwaway TLS-enabled Postgres and prints medians.
# Usage: scripts/tls-startup-cost.sh [RUNS]   (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}

pg_bin=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")")
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cargo build --release --locked --quiet --example startup_cost
bin=${CARGO_TARGET_DIR:-target}/release/examples/startup_cost

dir=$(mktemp -d /tmp/meshhook-health-tlscost.XXXXXX)
chmod 755 "$dir"
trap 'as_pg "$pg_bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
as_pg true 2>/dev/null
[ "$(id -u)" -eq 0 ] && chown postgres "$dir"
as_pg "$pg_bin/initdb" --no-sync -A trust -U postgres -D "$dir/data" >/dev/null
# A CA and a server certificate it signs (webpki refuses a CA certificate
# used as the server's own).
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $ec -days 2 -subj /CN=test-ca -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
openssl req $ec -subj /CN=localhost -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\n' > "$dir/ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/ext" -out "$dir/server.crt" 2>/dev/null
chmod 600 "$dir/server.key"
[ "$(id -u)" -eq 0 ] && chown postgres "$dir/server.key" "$dir/server.crt"
port=54391
as_pg "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key" start >/dev/null

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-12s %10s %10s %14s  %s\n' sslmode config_us app_us first_eval_us statuses
for mode in disable require verify-full; do
    url="postgres://postgres@localhost:$port/postgres?sslmode=$mode"
    [ "$mode" = verify-full ] && url="$url&sslrootcert=$dir/ca.crt"
    out=$(for _ in $(seq "$runs"); do
        HEALTH_COMPONENTS=database DATABASE_URL="$url" "$bin"
    done)
    printf '%-12s %10s %10s %14s  %s\n' "$mode" \
        "$(echo "$out" | awk '{print $1}' | median)" \
        "$(echo "$out" | awk '{print $2}' | median)" \
        "$(echo "$out" | awk '{print $3}' | median)" \
        "$(echo "$out" | awk '{print $4}' | sort | uniq -c | tr -s " " | tr "\n" " ")"
done
