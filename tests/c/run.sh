#!/usr/bin/env bash
# The C API's consumer tests (issue 4). Run from anywhere:
#   bash tests/c/run.sh            everything
#   bash tests/c/run.sh --quick    skip the cross-build/qemu and portability checks
# Works with the default target dir or $CARGO_TARGET_DIR. Each step prints
# PASS/FAIL/SKIPPED; the last line is "capi: N passed, N failed, N skipped" and
# the exit status is non-zero when any step failed. A SKIPPED step (toolchain
# source missing) is printed loudly with its reason.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1

passed=0
failed=0
skipped=0
LOG=$(mktemp -d)
trap 'rm -rf "$LOG"' EXIT

# step NAME CMD...: runs CMD with output in a log; shows the log on failure.
step() {
    local name=$1 start=$SECONDS
    shift
    if "$@" >"$LOG/step.log" 2>&1; then
        passed=$((passed + 1))
        echo "PASS  $name ($((SECONDS - start))s)"
    else
        failed=$((failed + 1))
        echo "FAIL  $name ($((SECONDS - start))s)"
        sed 's/^/      /' "$LOG/step.log" | tail -n 60
    fi
}
skip() {
    skipped=$((skipped + 1))
    echo "=================================================================="
    echo "SKIPPED: $1"
    echo "=================================================================="
}

TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
OUT="$TARGET_DIR/release"
VERSION=$(cargo pkgid -p pocketvec-capi | sed 's/.*[#@]//')
CFLAGS=(-std=c99 -O1 -Wall -Wextra -Werror -Iinclude)
SYSLIBS=(-lm -lpthread -ldl)
HOST_ISA=""

# ---- the header -------------------------------------------------------------
step "include/pocketvec.h is up to date (cbindgen regenerated into a temp file and compared)" \
    bash scripts/capi-header.sh --check

header_compiles() {
    echo '#include "pocketvec.h"' >"$LOG/h.c"
    gcc -std=c99 -Wall -Wextra -pedantic -Werror -Iinclude -fsyntax-only "$LOG/h.c" &&
        clang -std=c99 -Wall -Wextra -pedantic -Werror -Iinclude -fsyntax-only "$LOG/h.c" &&
        clang -x c++ -std=c++11 -Wall -Wextra -Werror -Iinclude -fsyntax-only "$LOG/h.c" &&
        # with SQLite's own header first: the opaque struct declarations must agree with it
        printf '#include <sqlite3.h>\n#include "pocketvec.h"\nint main(void){return sqlite3_auto_extension((void(*)(void))sqlite3_pocketvec_init);}\n' >"$LOG/h2.c" &&
        gcc -std=c99 -Wall -Wextra -pedantic -Werror -Iinclude -fsyntax-only "$LOG/h2.c"
}
step "header compiles as C99 -Wall -Wextra -pedantic -Werror (gcc, clang), as C++11, and beside sqlite3.h" header_compiles

every_function_documented() {
    # each prototype's previous non-blank line closes a doc comment
    awk '/^[a-z_ ]*[ *](pocketvec_|sqlite3_pocketvec)[a-z0-9_]*\(/ {
             n++; if (prev !~ /\*\/$/) { print "undocumented: " $0; bad++ } }
         NF { prev = $0 }
         END { print n " functions declared"; exit (bad > 0 || n < 40) }' include/pocketvec.h
}
step "every function in the header has a doc comment" every_function_documented

modulemap_check() {
    mkdir -p "$LOG/mod"
    local cache="-fmodules-cache-path=$LOG/mod/cache"
    # C: an explicit module import, and a plain #include that -fmodules turns into one
    printf '#pragma clang module import pocketvec\nint main(void) { const char *v = 0; return pocketvec_version(&v) == POCKETVEC_STATUS_OK ? 0 : 1; }\n' >"$LOG/mod/use.c"
    clang -fmodules "$cache" -Wall -Werror -Iinclude -c "$LOG/mod/use.c" -o "$LOG/mod/use.o" || return 1
    printf '#include <pocketvec.h>\nint main(void) { return POCKETVEC_METRIC_DOT; }\n' >"$LOG/mod/inc.c"
    clang -fmodules "$cache" -Rmodule-import -Wall -Werror -Iinclude -c "$LOG/mod/inc.c" -o "$LOG/mod/inc.o" \
        2>"$LOG/mod/remarks" || { cat "$LOG/mod/remarks"; return 1; }
    grep -q "importing module 'pocketvec'" "$LOG/mod/remarks" || { echo "#include was not turned into a module import"; cat "$LOG/mod/remarks"; return 1; }
    # Objective-C @import, the syntax Swift's clang importer shares
    printf '@import pocketvec;\nint main(void) { size_t n = 0; (void)n; return POCKETVEC_STATUS_OK; }\n' >"$LOG/mod/use.m"
    clang -fmodules "$cache" -Wall -Werror -Iinclude -fsyntax-only "$LOG/mod/use.m"
}
step "include/module.modulemap builds as clang module 'pocketvec' (clang -fmodules)" modulemap_check

# ---- build and artifacts ------------------------------------------------------
step "scripts/capi-build.sh (cargo build --release -p pocketvec-capi, bundled SQLite stripped)" \
    bash scripts/capi-build.sh
A="$OUT/libpocketvec.a"
SO="$OUT/libpocketvec.so"
SQLITE_DEF='^_?(sqlite3_|sqlite3[A-Z]|Sqlite)'

nm_static() {
    local defs
    defs=$(nm -A --defined-only "$A" 2>/dev/null | awk '{print $NF}')
    local bad
    bad=$(grep -E "$SQLITE_DEF" <<<"$defs" | grep -vx sqlite3_pocketvec_init | head)
    [ -z "$bad" ] || { echo "SQLite definitions in libpocketvec.a:"; echo "$bad"; return 1; }
    ! ar t "$A" | grep -E '(^|-)sqlite3\.o$' || { echo "an sqlite3.o member is still in the archive"; return 1; }
    for sym in sqlite3_pocketvec_init pocketvec_register pocketvec_register_with_error pocketvec_dot_f32; do
        grep -qx "$sym" <<<"$defs" || { echo "missing definition: $sym"; return 1; }
    done
    # pocketvec_register's references are left for the application's SQLite
    local undef
    undef=$(nm -A --undefined-only "$A" 2>/dev/null | grep -cE ' U sqlite3_' || true)
    echo "libpocketvec.a: only sqlite3_pocketvec_init defined; $undef sqlite3_* references left undefined for the app's link"
    [ "$undef" -gt 0 ]
}
step "nm libpocketvec.a: no SQLite definition except sqlite3_pocketvec_init" nm_static

nm_shared() {
    local bad
    bad=$(nm "$SO" 2>/dev/null | awk '$2 != "U" && $2 != "w" {print $NF}' | grep -E "$SQLITE_DEF" | grep -vx sqlite3_pocketvec_init | head)
    [ -z "$bad" ] || { echo "SQLite code in libpocketvec.so:"; echo "$bad"; return 1; }
    ! readelf -d "$SO" | grep -i 'NEEDED.*sqlite' || { echo "libpocketvec.so depends on a libsqlite3"; return 1; }
    local exported missing=0
    exported=$(nm -D --defined-only "$SO" | awk '{print $NF}')
    grep -qx sqlite3_pocketvec_init <<<"$exported" || { echo "sqlite3_pocketvec_init not exported"; missing=1; }
    # every kernel function of the header is exported (pocketvec_register* are static-library only)
    for f in $(grep -oE '(pocketvec|sqlite3_pocketvec)_[a-z0-9_]*\(' include/pocketvec.h | tr -d '(' | sort -u); do
        case $f in pocketvec_register | pocketvec_register_with_error) continue ;; esac
        grep -qx "$f" <<<"$exported" || { echo "not exported by libpocketvec.so: $f"; missing=1; }
    done
    local others
    others=$(grep -vE '^(pocketvec_|sqlite3_pocketvec_init$)' <<<"$exported" | head)
    [ -z "$others" ] || { echo "unexpected exports:"; echo "$others"; missing=1; }
    echo "libpocketvec.so: $(grep -c . <<<"$exported") exports, no SQLite code, no libsqlite3 dependency"
    return $missing
}
step "nm libpocketvec.so: no SQLite code, exports exactly the header's functions" nm_shared

ext_routines_covered() {
    # every routine ext calls through `call!(name(..))` or `.r.name` is filled in by pocketvec_register
    local header
    header=$(cargo metadata --format-version 1 2>/dev/null | python3 -c '
import json, os, sys
m = json.load(sys.stdin)
p = [p for p in m["packages"] if p["name"] == "sqlite3ext-sys"][0]
print(os.path.join(os.path.dirname(p["manifest_path"]), "sqlite3", "sqlite3ext.h"))')
    local fields used listed missing
    fields=$(grep -oE 'sqlite3_api->[a-z0-9_]+' "$header" | sed 's/.*->//' | sort -u)
    used=$(perl -0777 -ne 'print "$1\n" while /call!\(\s*([a-z0-9_]+)/g; print "$1\n" while /\.r\s*\.\s*([a-z0-9_]+)/g' \
        $(find ext/src -name '*.rs') | sort -u | grep -Fxf <(echo "$fields"))
    listed=$(grep -oE '^\s*(strong|weak) [a-z0-9_]+' capi/src/linked_symbols.rs | awk '{print $2}' | sort -u)
    missing=$(comm -23 <(echo "$used") <(echo "$listed"))
    echo "ext uses $(grep -c . <<<"$used") routines; capi/src/linked_symbols.rs lists $(grep -c . <<<"$listed")"
    [ -z "$missing" ] || { echo "ext calls routines pocketvec_register does not provide: $missing"; return 1; }
}
step "every SQLite routine ext calls is provided by pocketvec_register (capi/src/linked_symbols.rs)" ext_routines_covered

# ---- C consumers ------------------------------------------------------------
kernels_static() {
    cc "${CFLAGS[@]}" -DPOCKETVEC_EXPECTED_VERSION="\"$VERSION\"" tests/c/kernels_test.c "$A" "${SYSLIBS[@]}" \
        -o "$LOG/kernels_test" && "$LOG/kernels_test" | tail -n 3
    return "${PIPESTATUS[0]}"
}
step "C program 1 (every kernel function vs a C reference + error statuses) on libpocketvec.a" kernels_static
HOST_ISA=$("$LOG/kernels_test" 2>/dev/null | sed -n 's/.*kernels: //p')

for lvl in scalar avx2; do
    case "$lvl:$HOST_ISA" in
        scalar:* | avx2:avx512 | avx2:avx2)
            step "C program 1 with POCKETVEC_ISA=$lvl" \
                env POCKETVEC_ISA=$lvl POCKETVEC_EXPECT_ISA=$lvl "$LOG/kernels_test" ;;
    esac
done

kernels_shared() {
    cc "${CFLAGS[@]}" -DPOCKETVEC_EXPECTED_VERSION="\"$VERSION\"" tests/c/kernels_test.c -L"$OUT" -lpocketvec \
        -Wl,-rpath,"$OUT" -lm -o "$LOG/kernels_test_so" && "$LOG/kernels_test_so" | tail -n 1
}
step "C program 1 linked against libpocketvec.so" kernels_shared

sqlite_program() {
    cc "${CFLAGS[@]}" tests/c/sqlite_test.c "$A" -lsqlite3 "${SYSLIBS[@]}" -o "$LOG/sqlite_test" &&
        "$LOG/sqlite_test" "$1"
}
step "C program 2: Debian libsqlite3 + libpocketvec.a, sqlite3_auto_extension, seed query top hit" sqlite_program auto
step "C program 2: Debian libsqlite3 + libpocketvec.a, pocketvec_register(db), seed query top hit" sqlite_program register
step "C program 2: auto_extension and pocketvec_register in one process: the second is refused clearly" sqlite_program mixed

# ---- cross-build and portability --------------------------------------------
if [ "$QUICK" = 1 ]; then
    skip "cross-build/qemu and portability checks (--quick)"
else
    NEON_SKIP_REASON="scripts/neon-env.sh missing"
    if [ -f scripts/neon-env.sh ]; then
        # shellcheck disable=SC1091
        source scripts/neon-env.sh
    fi
    if [ -n "${NEON_SKIP_REASON:-}" ]; then
        skip "aarch64 cross-build + qemu run of C program 1: $NEON_SKIP_REASON"
        skip "cargo check -Zbuild-std for iOS/Android/macOS/Windows: $NEON_SKIP_REASON"
    else
        AARCH=aarch64-unknown-linux-gnu
        cross_qemu() {
            cargo build -Zbuild-std --release --target $AARCH -p pocketvec-capi --no-default-features &&
                aarch64-linux-gnu-gcc "${CFLAGS[@]}" -DPOCKETVEC_EXPECTED_VERSION="\"$VERSION\"" tests/c/kernels_test.c \
                    "$TARGET_DIR/$AARCH/release/libpocketvec.a" "${SYSLIBS[@]}" -o "$LOG/kernels_test_arm64" &&
                readelf -h "$LOG/kernels_test_arm64" | grep -q AArch64 &&
                qemu-aarch64 -L /usr/aarch64-linux-gnu "$LOG/kernels_test_arm64" | tail -n 2 &&
                POCKETVEC_ISA=scalar POCKETVEC_EXPECT_ISA=scalar qemu-aarch64 -L /usr/aarch64-linux-gnu \
                    "$LOG/kernels_test_arm64" | tail -n 1
        }
        step "cross-build kernels+capi static lib for $AARCH, C program 1 under qemu-aarch64 (neon, scalar)" cross_qemu
        for t in aarch64-apple-ios aarch64-linux-android x86_64-apple-darwin x86_64-pc-windows-msvc; do
            step "cargo check -Zbuild-std --target $t -p kernels -p pocketvec-capi --no-default-features" \
                cargo check -Zbuild-std --target $t -p kernels -p pocketvec-capi --no-default-features
        done
    fi
fi

echo "capi: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
