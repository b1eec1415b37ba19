#!/usr/bin/env bash
# make check-deep: the reliability checks too slow for make test (issue 7).
#   1. tests/reliability/run.sh deep: every fault point of the apsw VFS
#      workload, a 3-minute WAL soak with 4 processes, the injection
#      attempts, the C consumers under ASan+UBSan, the seed demo under
#      valgrind;
#   2. the Rust test suites under AddressSanitizer (nightly
#      -Zsanitizer=address), ext's integration tests included: the hostile
#      shadow-table cases (ext/tests/hostile.rs) run instrumented on the
#      bundled SQLite (their Debian-SQLite half needs a binary whose bundled
#      SQLite is not exported; see in_child there) (the toolchain has no rust-src, so std itself is
#      not instrumented: heap errors in pocketvec's own code and in the
#      SQLite C code it drives are caught, errors inside std's code are not).
# Fuzzing has its own target: scripts/fuzz.sh long (make fuzz).
# Builds into $CARGO_TARGET_DIR (default target/)/asan. Exit status is
# non-zero when any part failed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
failed=0
t0=$SECONDS

echo "== check-deep 1/2: tests/reliability/run.sh deep"
bash tests/reliability/run.sh deep || failed=1

echo "== check-deep 2/2: Rust tests under AddressSanitizer (cargo +nightly, -Zsanitizer=address)"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
HOST=$(rustc -vV | sed -n 's/^host: //p')
ASAN_DIR=${ASAN_TARGET_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/asan}
start=$SECONDS
# --target keeps build scripts and proc macros uninstrumented.
# --export-dynamic: ext's integration tests dlopen the instrumented
# libpocketvec0.so, which needs the test binary's ASan runtime symbols. Each
# package's unit and integration tests (doc tests need RUSTDOCFLAGS and add
# nothing here). ext's artifact test checks the release .so's symbol
# table, which instrumentation changes (__asan_* imports): skipped here, it
# runs in make test.
if RUSTFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes -Clink-arg=-Wl,--export-dynamic" \
    ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 LSAN_OPTIONS=suppressions=$ROOT/tests/reliability/lsan.supp \
    POCKETVEC_HOSTILE_NO_SYSTEM=1 \
    CARGO_TARGET_DIR=$ASAN_DIR CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2} \
    cargo +nightly test --target "$HOST" -p kernels -p pocketvec -p pocketvec-capi -p pocketvec-ivf --lib --tests --no-fail-fast -- \
    --skip artifact >"$ASAN_DIR.log" 2>&1; then
    echo "PASS  Rust tests under ASan ($((SECONDS - start)) s): $(grep -E '^test result' "$ASAN_DIR.log" |
        awk '{p += $4; f += $6} END {print p " passed, " f " failed in " NR " test binaries"}')"
else
    failed=1
    echo "FAIL  Rust tests under ASan ($((SECONDS - start)) s); log: $ASAN_DIR.log"
    grep -E 'ERROR: AddressSanitizer|SUMMARY|panicked|FAILED|error(\[|:)' "$ASAN_DIR.log" | head -n 30 | sed 's/^/      /'
fi
echo "check-deep: $((SECONDS - t0)) s, $([ $failed -eq 0 ] && echo all passed || echo FAILED)"
exit $failed
