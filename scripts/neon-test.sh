#!/usr/bin/env bash
# Runs the kernels and ivf test suites for aarch64 (NEON) under qemu-user.
# Never passes silently: without the toolchain source it prints SKIPPED loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/neon-env.sh
if ! neon_env_ok; then
    echo "=================================================================="
    echo "NEON tests SKIPPED: $NEON_SKIP_REASON"
    echo "=================================================================="
    exit 0
fi
echo "NEON: running the kernels and ivf test suites for aarch64-unknown-linux-gnu under qemu-aarch64"
# The ivf recall tests (large data sets) are skipped under emulation: their
# NEON code paths are covered by the ivf unit and chunk tests.
cargo test -Zbuild-std --target aarch64-unknown-linux-gnu -p kernels -p pocketvec-ivf "$@" -- --skip recall
