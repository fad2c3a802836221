#!/usr/bin/env bash
# `make verify-package`: checks the arm64 Lambda zip that `make package` made
# and runs it. The bootstrap must be an aarch64 ELF, need no glibc newer than
# provided.al2023's 2.34 (read from its ELF version needs), be under 7 MiB,
# and answer real events under qemu-user (tests/package.rs).
#
# Needs binutils (readelf), unzip, qemu-user-static and libc6-arm64-cross
# (the aarch64 loader and libc that qemu runs the binary against).
set -euo pipefail
cd "$(dirname "$0")/.."

zip=${CARGO_TARGET_DIR:-target}/lambda/meshhook-health/bootstrap.zip
max_glibc=2.34
max_bytes=$((7 * 1024 * 1024))

[ -f "$zip" ] || { echo "verify-package: $zip missing; run make package" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
unzip -q "$zip" -d "$dir"
bin="$dir/bootstrap"

machine=$(readelf -h "$bin" | awk -F: '/Machine:/ {gsub(/^ +/, "", $2); print $2}')
[ "$machine" = "AArch64" ] || { echo "verify-package: bootstrap is $machine, not AArch64" >&2; exit 1; }

glibc=$(readelf -V "$bin" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
if [ "$(printf '%s\n%s\n' "$glibc" "$max_glibc" | sort -V | tail -1)" != "$max_glibc" ]; then
    echo "verify-package: bootstrap needs glibc $glibc, newer than provided.al2023's $max_glibc" >&2
    exit 1
fi

bytes=$(stat -c %s "$bin")
zip_bytes=$(stat -c %s "$zip")
[ "$bytes" -lt "$max_bytes" ] || { echo "verify-package: bootstrap is $bytes bytes, not under 7 MiB" >&2; exit 1; }

echo "arm64 package: AArch64, needs glibc $glibc (≤ $max_glibc), bootstrap $bytes bytes, zip $zip_bytes bytes"

runner="qemu-aarch64-static -L /usr/aarch64-linux-gnu"
command -v qemu-aarch64-static >/dev/null ||
    { echo "verify-package: qemu-aarch64-static missing (apt-get install qemu-user-static libc6-arm64-cross)" >&2; exit 1; }
MESHHOOK_BOOTSTRAP="$bin" MESHHOOK_RUNNER="$runner" \
    cargo test --locked --test package -- --ignored
