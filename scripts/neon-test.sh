#!/usr/bin/env bash
# Runs the whole kernels test suite for aarch64 (NEON) under qemu-user.
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
echo "NEON: running kernels tests for aarch64-unknown-linux-gnu under qemu-aarch64"
cargo test -Zbuild-std --target aarch64-unknown-linux-gnu -p kernels "$@"
