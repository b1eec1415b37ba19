#!/usr/bin/env bash
# Builds libpocketvec.a and libpocketvec.so (crate capi, release) and removes
# the SQLite that sqlite3ext-sys bundles from the static library.
#
#   scripts/capi-build.sh [--target <triple>] [other cargo build args]
#
# Why the strip step: sqlite3ext-sys 0.0.1 (ext's bindings) compiles SQLite
# 3.39's sqlite3.c into a native static library, and a Rust staticlib copies
# every object of every dependency into the .a, referenced or not. Nothing in
# pocketvec references it (every call goes through the API routines table),
# so the member is deleted here; the cdylib never contains it because the
# linker only extracts referenced archive members. See
# ARCHITECTURE.md (capi section). The members to delete are found by what they
# define (any sqlite3_* or sqlite3Xxx symbol other than sqlite3_pocketvec_init),
# not by file name. Afterwards `nm` must find no SQLite definition (checked
# here and in tests/c/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

target=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[$i]}" in
        --target) target="${args[$((i + 1))]}" ;;
        --target=*) target="${args[$i]#--target=}" ;;
    esac
done
out=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
[ -n "$target" ] && out="$out/$target"
out="$out/release"

cargo build --release -p pocketvec-capi "$@"

lib="$out/libpocketvec.a"
[ -f "$lib" ] || { echo "capi-build: $lib was not produced" >&2; exit 1; }
AR="${AR:-ar}"
if [ -n "$target" ]; then
    var="AR_${target//-/_}"
    [ -n "${!var:-}" ] && AR="${!var}"
fi
NM="${NM:-nm}"

# Archive members that define SQLite's own symbols (a read loop, not mapfile:
# macOS still ships bash 3.2).
members=()
while IFS= read -r m; do
    [ -n "$m" ] && members+=("$m")
done < <("$NM" -A --defined-only "$lib" 2>/dev/null |
    awk '{ sym = $NF; split($1, p, ":"); member = p[2]
           if (sym ~ /^_?(sqlite3_|sqlite3[A-Z]|Sqlite)/ && sym !~ /^_?sqlite3_pocketvec_init$/) print member }' |
    sort -u)
if [ ${#members[@]} -gt 0 ]; then
    echo "capi-build: removing bundled SQLite from $lib: ${members[*]}"
    # binutils' LTO plugin prints a line per Rust object it cannot read (harmless):
    # show ar's output only when it fails.
    if ! ar_out=$("$AR" d "$lib" "${members[@]}" 2>&1); then
        grep -v 'bfd plugin' <<<"$ar_out" >&2
        exit 1
    fi
fi
left=$("$NM" -A --defined-only "$lib" 2>/dev/null |
    awk '{ sym = $NF; if (sym ~ /^_?(sqlite3_|sqlite3[A-Z]|Sqlite)/ && sym !~ /^_?sqlite3_pocketvec_init$/) print }' | head -n 5)
if [ -n "$left" ]; then
    echo "capi-build: $lib still defines SQLite symbols:" >&2
    echo "$left" >&2
    exit 1
fi
echo "capi-build: $lib and $out/libpocketvec.so are ready"
