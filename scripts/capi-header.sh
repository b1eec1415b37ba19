#!/usr/bin/env bash
# Generates include/pocketvec.h from capi/ with cbindgen (config capi/cbindgen.toml).
#   scripts/capi-header.sh            regenerate include/pocketvec.h
#   scripts/capi-header.sh --check    regenerate into a temp file and fail if the committed header differs
# cbindgen is pinned (CBINDGEN_VERSION) and installed with `cargo install --locked`
# into ~/.cache/pocketvec/tools (or $POCKETVEC_TOOLS) on first use, so every
# machine generates byte-identical output and fresh clones reuse the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
CBINDGEN_VERSION=0.29.4
TOOLS="${POCKETVEC_TOOLS:-${POCKETVEC_CACHE:-$HOME/.cache/pocketvec}/tools}"
CBINDGEN="$TOOLS/bin/cbindgen"

if ! { [ -x "$CBINDGEN" ] && "$CBINDGEN" --version 2>/dev/null | grep -qx "cbindgen $CBINDGEN_VERSION"; }; then
    echo "capi-header: installing cbindgen $CBINDGEN_VERSION into $TOOLS (one-time, a few minutes)" >&2
    CARGO_TARGET_DIR="$TOOLS/build" cargo install cbindgen --version "$CBINDGEN_VERSION" --locked \
        --root "$TOOLS" -j 2 --quiet
    rm -rf "$TOOLS/build"
fi

generate() {
    "$CBINDGEN" --quiet --config capi/cbindgen.toml --output "$1" capi
}

if [ "${1:-}" = "--check" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    generate "$tmp/pocketvec.h"
    if ! diff -u include/pocketvec.h "$tmp/pocketvec.h"; then
        echo "include/pocketvec.h is stale: run scripts/capi-header.sh and commit it" >&2
        exit 1
    fi
    echo "include/pocketvec.h is up to date"
else
    generate include/pocketvec.h
    echo "wrote include/pocketvec.h"
fi
