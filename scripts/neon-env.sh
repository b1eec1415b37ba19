#!/usr/bin/env bash
# Source this file to get an environment that cross-builds and runs aarch64
# (NEON) tests under qemu with -Zbuild-std on the stable toolchain.
#
#   source scripts/neon-env.sh && neon_env_ok && cargo test -Zbuild-std --target aarch64-unknown-linux-gnu ...
#
# It fetches Debian's `rust-src` package at exactly the version of the local
# rustc (from <suite>-backports of the next Debian release, derived from the
# machine's own apt sources; no host name is written here), extracts it into a
# cache directory, and exports the variables build-std needs. RUSTC_BOOTSTRAP
# is set only so that -Zbuild-std works; the code itself stays on stable
# (every crate has #![deny(unstable_features)]).
#
# On failure NEON_SKIP_REASON is set and neon_env_ok returns 1; callers must
# print "NEON tests SKIPPED: $NEON_SKIP_REASON" loudly.

NEON_SKIP_REASON=""
neon_env_ok() { [ -z "$NEON_SKIP_REASON" ]; }

_neon_setup() {
    local ver cache srcroot sources uri suite tmp deb
    ver=$(rustc --version | awk '{print $2}')
    cache="${POCKETVEC_CACHE:-$HOME/.cache/pocketvec}/rust-src-$ver"
    srcroot="$cache/usr/src/rustc-$ver/library"
    for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            NEON_SKIP_REASON="$tool not installed (run scripts/setup.sh)"
            return 1
        fi
    done
    if [ ! -d "$srcroot" ]; then
        sources=/etc/apt/sources.list.d/debian.sources
        if [ ! -r "$sources" ]; then
            NEON_SKIP_REASON="no $sources to derive the backports suite from"
            return 1
        fi
        # First URIs entry of the main Debian archive stanza.
        uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' "$sources")
        suite="${NEON_BACKPORTS_SUITE:-trixie-backports}"
        tmp=$(mktemp -d)
        mkdir -p "$tmp/lists/partial" "$tmp/archives/partial"
        echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main" >"$tmp/src.list"
        local aptopts=(-o "Dir::Etc::SourceList=$tmp/src.list" -o "Dir::Etc::SourceParts=/nonexistent"
            -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache::Archives=$tmp/archives"
            -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Get::List-Cleanup=0")
        if ! apt-get "${aptopts[@]}" update >"$tmp/update.log" 2>&1; then
            NEON_SKIP_REASON="apt-get update of $suite failed: $(tail -n 2 "$tmp/update.log" | tr '\n' ' ')"
            rm -rf "$tmp"
            return 1
        fi
        # Exact version match with the local rustc, any Debian revision.
        deb=$(apt-cache "${aptopts[@]}" madison rust-src 2>/dev/null | awk -v v="$ver" '$3 ~ "^([0-9]+:)?"v"[+~-]" {print $3; exit}')
        if [ -z "$deb" ]; then
            NEON_SKIP_REASON="no rust-src $ver in $suite (available: $(apt-cache "${aptopts[@]}" madison rust-src 2>/dev/null | awk '{print $3}' | tr '\n' ' '))"
            rm -rf "$tmp"
            return 1
        fi
        if ! (cd "$tmp/archives" && apt-get "${aptopts[@]}" download "rust-src=$deb" >"$tmp/dl.log" 2>&1); then
            NEON_SKIP_REASON="download of rust-src=$deb failed: $(tail -n 2 "$tmp/dl.log" | tr '\n' ' ')"
            rm -rf "$tmp"
            return 1
        fi
        mkdir -p "$cache"
        dpkg-deb -x "$tmp"/archives/rust-src_*.deb "$cache"
        rm -rf "$tmp"
        if [ ! -d "$srcroot" ]; then
            NEON_SKIP_REASON="rust-src $deb did not contain usr/src/rustc-$ver/library"
            return 1
        fi
    fi
    export RUSTC_BOOTSTRAP=1
    export __CARGO_TESTS_ONLY_SRC_ROOT="$srcroot"
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
    export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
    export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
    return 0
}

_neon_setup || true
