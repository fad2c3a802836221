#!/usr/bin/env bash
# need.sh TARGET TOOL=HOW ...: for a Make target, checks that each tool is
# on PATH; for the first one missing, prints one line saying what is missing
# and how to get it, and exits 1. (Debian packages are installed by
# scripts/provision.sh instead; this is for tools from PyPI and rustup.)
target=$1
shift
for want in "$@"; do
    tool=${want%%=*}
    how=${want#*=}
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "make $target: $tool is missing ($how)" >&2
        exit 1
    fi
done
