#!/usr/bin/env bash
# Reliability checks of issue 7 that do not need libFuzzer (see also
# scripts/fuzz.sh and scripts/check-deep.sh). Run from anywhere:
#   bash tests/reliability/run.sh quick   the make-test budget (~1.5 min)
#   bash tests/reliability/run.sh deep    longer soak, every fault point
# Uses target/release/libpocketvec0.so, libpocketvec.a and libpocketvec.so
# (make build), or $POCKETVEC_EXT / $POCKETVEC_LIB_DIR. Each step prints
# PASS/FAIL with its time and its figures; the exit status is non-zero when
# any step failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
MODE=${1:-quick}
PY=${PY:-$ROOT/.venv/bin/python}
LIBDIR=${POCKETVEC_LIB_DIR:-$ROOT/target/release}
export POCKETVEC_EXT=${POCKETVEC_EXT:-$LIBDIR/libpocketvec0.so}
case "$MODE" in
    quick) SOAK_SECONDS=${SOAK_SECONDS:-20}; FAULT_ARGS=(--points 8) ;;
    # every call is --all: 5,715 points before the index, ~75,000 with
    # flat + ivf tables (hours); deep samples 300 per mode and kind
    deep) SOAK_SECONDS=${SOAK_SECONDS:-180}; FAULT_ARGS=(--points 300) ;;
    *) echo "usage: $0 quick|deep" >&2; exit 2 ;;
esac

passed=0
failed=0
LOG=$(mktemp -d)
trap 'rm -rf "$LOG"' EXIT
step() {
    local name=$1 start=$SECONDS
    shift
    if "$@" >"$LOG/step.log" 2>&1; then
        passed=$((passed + 1))
        echo "PASS  $name ($((SECONDS - start)) s)"
        grep -E '^(soak|faults|injection|asan|valgrind):' "$LOG/step.log" | grep -v 'skipping' | sed 's/^/      /'
    else
        failed=$((failed + 1))
        echo "FAIL  $name ($((SECONDS - start)) s)"
        sed 's/^/      /' "$LOG/step.log" | tail -n 60
    fi
}

for f in "$POCKETVEC_EXT" "$LIBDIR/libpocketvec.a"; do
    [ -e "$f" ] || { echo "reliability: $f not found (run make build)" >&2; exit 1; }
done

step "SQL injection through every vtab option and name" "$PY" tests/reliability/injection.py
step "fault injection (apsw VFS: read/write/sync/truncate/full/busy; ${FAULT_ARGS[*]})" \
    "$PY" tests/reliability/faults.py "${FAULT_ARGS[@]}"
step "WAL concurrency soak, $SOAK_SECONDS s (threads + processes)" \
    "$PY" tests/reliability/soak.py --duration "$SOAK_SECONDS" $([ "$MODE" = deep ] && echo --procs 3)

# ---- the C consumers (tests/c) under AddressSanitizer + UBSan ---------------
ASAN_CFLAGS=(-std=c99 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
    -Wall -Wextra -Werror -Iinclude)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
VERSION=$(cargo pkgid -p pocketvec-capi 2>/dev/null | sed 's/.*[#@]//')
# A private copy of libpocketvec.a without the SQLite that sqlite3ext-sys
# bundles (same symbol-based rule as scripts/capi-build.sh; a plain cargo
# build leaves it in target/), so the programs link Debian's libsqlite3.
A="$LOG/libpocketvec.a"
cp "$LIBDIR/libpocketvec.a" "$A"
members=$(nm -A --defined-only "$A" 2>/dev/null |
    awk '{ sym = $NF; split($1, p, ":"); if (sym ~ /^(sqlite3_|sqlite3[A-Z]|Sqlite)/ && sym != "sqlite3_pocketvec_init") print p[2] }' |
    sort -u)
[ -z "$members" ] || ar d "$A" $members >/dev/null 2>&1
asan_kernels() {
    gcc "${ASAN_CFLAGS[@]}" -DPOCKETVEC_EXPECTED_VERSION="\"$VERSION\"" tests/c/kernels_test.c \
        "$A" -lm -lpthread -ldl -o "$LOG/kernels_asan" || return 1
    for isa in "" scalar avx2; do
        if [ -n "$isa" ]; then
            grep -q avx2 /proc/cpuinfo || [ "$isa" = scalar ] || continue
            POCKETVEC_ISA=$isa POCKETVEC_EXPECT_ISA=$isa "$LOG/kernels_asan" >"$LOG/k.out" 2>&1 || { cat "$LOG/k.out"; return 1; }
        else
            "$LOG/kernels_asan" >"$LOG/k.out" 2>&1 || { cat "$LOG/k.out"; return 1; }
        fi
        echo "asan: kernels_test ${isa:-default ISA}: $(tail -n 1 "$LOG/k.out")"
    done
}
step "C program 1 (tests/c/kernels_test.c) + libpocketvec.a under -fsanitize=address,undefined (leaks on)" asan_kernels
asan_sqlite() {
    gcc "${ASAN_CFLAGS[@]}" tests/c/sqlite_test.c "$A" -lsqlite3 -lm -lpthread -ldl \
        -o "$LOG/sqlite_asan" || return 1
    for m in auto register mixed; do
        "$LOG/sqlite_asan" "$m" >"$LOG/s.out" 2>&1 || { cat "$LOG/s.out"; return 1; }
        echo "asan: sqlite_test $m: $(tail -n 1 "$LOG/s.out")"
    done
}
step "C program 2 (tests/c/sqlite_test.c: auto, register, mixed) under -fsanitize=address,undefined" asan_sqlite

# ---- the seed demo through the sqlite3 shell under valgrind -----------------
valgrind_demo() {
    command -v valgrind >/dev/null || { echo "valgrind not installed (apt-get install valgrind)"; return 1; }
    sed "s#@EXT@#${POCKETVEC_EXT%.so}#" tests/reliability/seed_demo.sql >"$LOG/demo.sql"
    # the shell exits 1: the demo ends with a statement that fails on purpose
    valgrind --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --error-exitcode=99 \
        --suppressions=tests/reliability/valgrind.supp \
        sqlite3 -batch :memory: <"$LOG/demo.sql" >"$LOG/demo.out" 2>"$LOG/vg.txt"
    local rc=$?
    cat "$LOG/demo.out"
    [ $rc -ne 99 ] || { cat "$LOG/vg.txt"; return 1; }
    grep -q 'expected 128 dimensions' "$LOG/vg.txt" || { echo "the demo's error case did not run"; return 1; }
    [ "$(sed -n 5p "$LOG/demo.out")" = 7 ] || { echo "top hit of vector 7 is not 7"; return 1; }
    grep -q 'ERROR SUMMARY: 0 errors' "$LOG/vg.txt" || { cat "$LOG/vg.txt"; return 1; }
    echo "valgrind: $(grep -E 'in use at exit' "$LOG/vg.txt" | sed 's/^==[0-9]*== *//'); $(grep -E 'ERROR SUMMARY' "$LOG/vg.txt" | sed 's/^==[0-9]*== *//')"
}
step "seed demo (1000 x 128) through sqlite3 CLI under valgrind --leak-check=full" valgrind_demo

echo "reliability ($MODE): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
