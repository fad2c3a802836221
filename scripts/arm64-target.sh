#!/usr/bin/env bash
# Makes sure the aarch64-unknown-linux-gnu standard library is installed, for
# `make build` / `make package`. It comes from the Rust toolchain server (not
# a package registry), whose download has hung on some machines, so it gets
# at most ARM64_TARGET_TIMEOUT seconds (default 300). Exit 0 when the target
# is there; otherwise exit 3 with one line saying why on stderr.
set -uo pipefail
target=aarch64-unknown-linux-gnu
limit=${ARM64_TARGET_TIMEOUT:-300}

if ! command -v rustup >/dev/null 2>&1; then
    echo "rustup not found: install the $target target by other means" >&2
    exit 3
fi
if rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    exit 0
fi
echo "--- installing the $target standard library (rustup, at most ${limit}s)" >&2
timeout "$limit" rustup target add "$target" >&2
status=$?
case $status in
0) exit 0 ;;
124) echo "rustup target add $target timed out after ${limit}s" >&2 ;;
*) echo "rustup target add $target failed (exit $status)" >&2 ;;
esac
exit 3
