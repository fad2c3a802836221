#!/usr/bin/env bash
# `make image`: a small container image of meshhook-health for Railway, Fly.io,
# Cloud Run or any container host. No base image: `FROM scratch` plus the
# release binary and the few glibc objects it links (libc, libm, libgcc_s,
# the loader), found with ldd; root certificates are compiled in. Runs as
# uid 65532 (non-root) and starts `meshhook-health serve`, which listens on
# 0.0.0.0:$PORT.
#
#   scripts/image.sh stage   build the binary and stage the image's files in
#                            target/image/rootfs (what the Containerfiles copy)
#   scripts/image.sh [build] stage, then build the image with podman (or
#                            docker: CONTAINER=docker) as meshhook-health:<version>
set -euo pipefail
cd "$(dirname "$0")/.."

rootfs=target/image/rootfs

stage() {
    cargo build --release --locked --bin meshhook-health
    local binary=${CARGO_TARGET_DIR:-target}/release/meshhook-health
    rm -rf "$rootfs"
    mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc" "$rootfs/tmp"
    cp "$binary" "$rootfs/usr/local/bin/meshhook-health"
    # Every shared object the binary needs, at the path the loader expects.
    local lib
    for lib in $(ldd "$binary" | awk '/=> \// {print $3} /^\s*\/.*ld-linux/ {print $1}'); do
        mkdir -p "$rootfs$(dirname "$lib")"
        cp -L "$lib" "$rootfs$lib"
    done
    printf 'root:x:0:0::/:/nonexistent\nnonroot:x:65532:65532::/nonexistent:/nonexistent\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
    chmod 1777 "$rootfs/tmp"
    echo "image: staged $(du -sh "$rootfs" | cut -f1) in $rootfs" >&2
}

build() {
    local tool=${CONTAINER:-}
    if [ -z "$tool" ]; then
        if command -v podman >/dev/null 2>&1; then tool=podman
        elif command -v docker >/dev/null 2>&1; then tool=docker
        else
            echo "image: neither podman nor docker is installed (scripts/provision.sh image installs podman)" >&2
            exit 1
        fi
    fi
    stage
    local version
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
    "$tool" build --tag "meshhook-health:$version" --tag meshhook-health:latest --file Containerfile .
    echo "image: meshhook-health:$version ($("$tool" image inspect --format '{{.Size}}' "meshhook-health:$version") bytes)" >&2
}

case "${1:-build}" in
stage) stage ;;
build) build ;;
*)
    echo "usage: scripts/image.sh [stage|build]" >&2
    exit 2
    ;;
esac
