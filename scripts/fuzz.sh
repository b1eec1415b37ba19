#!/usr/bin/env bash
# cargo-fuzz targets of pocketvec (fuzz/, issue 7).
#   bash scripts/fuzz.sh short [target...]   kept seeds + FUZZ_SECONDS (default 10) s each: make test
#   bash scripts/fuzz.sh long  [target...]   kept seeds + FUZZ_SECONDS (default 900) s each: make fuzz
#   bash scripts/fuzz.sh regress [target...] only replay the kept corpus and regressions
# Targets: vector_parse vtab_args sql_knn capi (default: all).
# Installs what is missing: the nightly toolchain (rustup) and cargo-fuzz
# (pinned, into ~/.cache/pocketvec/tools). The capi target loads
# $POCKETVEC_CAPI_SO (default target/release/libpocketvec.so, built here
# when missing).
#
# Build (one `cargo fuzz build` for all targets, AddressSanitizer on, 2 jobs):
#   short/regress: 16 codegen units (a cold build ~1/3 shorter, executions a
#     little slower), into $CARGO_TARGET_DIR, default
#     ~/.cache/pocketvec/fuzz-target: kept across clones like the tools, so
#     make test on a fresh clone rebuilds only the workspace's own crates.
#   long: cargo-fuzz's default of 1 codegen unit (fastest executions), into
#     $CARGO_TARGET_DIR, default target/fuzz.
#
# Every run starts from fuzz/corpus/<target> (kept seeds) and
# fuzz/regressions/<target> (every crash ever found, minimized); libFuzzer
# executes each of them first, so they must stay green. New inputs go to a
# scratch corpus (FUZZ_WORK, default $CARGO_TARGET_DIR/work), not the repo.
# A crash stops the run with the reproducer's path: minimize it
# (cargo +nightly fuzz tmin --fuzz-dir fuzz <target> <file>), copy it into
# fuzz/regressions/<target>/ and fix the bug.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-short}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(vector_parse vtab_args sql_knn capi)
case "$MODE" in
    short) SECS=${FUZZ_SECONDS:-10} ;;
    long) SECS=${FUZZ_SECONDS:-900} ;;
    regress) SECS=0 ;;
    *) echo "usage: $0 short|long|regress [target...]" >&2; exit 2 ;;
esac

TOOLS=${POCKETVEC_TOOLS:-$HOME/.cache/pocketvec/tools}
CARGO_FUZZ_VERSION=0.13.2
export PATH="$TOOLS/bin:$PATH"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz: installing the nightly toolchain (libFuzzer needs -Zsanitizer / sanitizer-coverage)"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo-fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$TOOLS"
fi
build_flags=()
if [ "$MODE" = long ]; then
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/fuzz}
else
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/pocketvec/fuzz-target}
    build_flags=(--codegen-units 16)
    # The short run (in make test) builds at opt-level 1 without debug info:
    # 121 s instead of 318 s from cold on 2 cores, and no fewer executions
    # in its 10 s per target (the seeds replay either way).
    export CARGO_PROFILE_RELEASE_OPT_LEVEL=${CARGO_PROFILE_RELEASE_OPT_LEVEL:-1}
    export CARGO_PROFILE_RELEASE_DEBUG=${CARGO_PROFILE_RELEASE_DEBUG:-0}
fi
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
# New inputs: a fresh scratch corpus per short run (the kept seeds are the
# fixed budget's starting point); long runs keep theirs between runs.
if [ "$MODE" = long ]; then
    WORK=${FUZZ_WORK:-$CARGO_TARGET_DIR/work}
else
    if [ -z "${FUZZ_WORK:-}" ]; then
        WORK=$ROOT/target/fuzz-short
        rm -rf "$WORK"
    else
        WORK=$FUZZ_WORK
    fi
fi

if printf '%s\n' "${TARGETS[@]}" | grep -qx capi; then
    export POCKETVEC_CAPI_SO=${POCKETVEC_CAPI_SO:-$ROOT/target/release/libpocketvec.so}
    if [ ! -e "$POCKETVEC_CAPI_SO" ]; then
        echo "fuzz: building $POCKETVEC_CAPI_SO"
        CARGO_TARGET_DIR=$ROOT/target cargo build --release -p pocketvec-capi
    fi
fi

mkdir -p "$WORK"
build_args=()
[ ${#TARGETS[@]} -ne 1 ] || build_args=("${TARGETS[0]}")
echo "fuzz: building ${build_args[*]:-all targets} (cargo +nightly fuzz build: libFuzzer, AddressSanitizer)"
build_start=$SECONDS
cargo +nightly fuzz build --fuzz-dir fuzz "${build_flags[@]}" "${build_args[@]}" >"$WORK/build.log" 2>&1 || {
    tail -n 60 "$WORK/build.log" >&2
    exit 1
}
echo "fuzz: built in $((SECONDS - build_start)) s ($CARGO_TARGET_DIR)"

status=0
summary=()
for t in "${TARGETS[@]}"; do
    mkdir -p "$WORK/$t" "fuzz/corpus/$t" "fuzz/regressions/$t"
    kept=$(find "fuzz/corpus/$t" "fuzz/regressions/$t" -type f | wc -l)
    log="$WORK/$t.log"
    if [ "$MODE" = regress ]; then
        args=(-runs=0)
    else
        args=(-max_total_time="$SECS")
    fi
    start=$SECONDS
    set +e
    cargo +nightly fuzz run --fuzz-dir fuzz "${build_flags[@]}" "$t" "$WORK/$t" "fuzz/corpus/$t" "fuzz/regressions/$t" -- \
        "${args[@]}" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$({ grep -oE 'cov: [0-9]+' "$log" || true; } | tail -n 1 | sed 's/cov: //')
    line=$(printf '%-13s %6s s  %10s execs  %8s exec/s  cov %6s  kept inputs %4s' "$t" "$((SECONDS - start))" \
        "${execs:-?}" "$([ -n "${execs:-}" ] && [ $((SECONDS - start)) -gt 0 ] && echo $((execs / (SECONDS - start))) || echo ?)" \
        "${cov:-?}" "$kept")
    if [ $rc -eq 0 ]; then
        echo "PASS  $line"
    else
        status=1
        echo "FAIL  $line"
        { grep -E -A1 'panicked|ERROR: AddressSanitizer|ERROR: libFuzzer|Test unit written|Running: ' "$log" || true; } |
            head -n 20 | sed 's/^/      /'
        echo "      full log: $log"
    fi
    summary+=("$line")
done
echo "fuzz ($MODE):"
printf '  %s\n' "${summary[@]}"
exit $status
