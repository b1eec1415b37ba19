#!/usr/bin/env bash
# Installs what pocketvec's build, tests and benchmarks need on a fresh
# Debian machine of this kind, and says what it installs. Idempotent: a
# second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(libclang-dev clang sqlite3 libsqlite3-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user valgrind)
missing=()
for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python: Debian's python3 can load SQLite extensions (pyenv's cannot).
PY_PKGS=(numpy pytest sqlite-vec==0.1.9 vectorlite-py faiss-cpu apsw sqlean.py setuptools wheel matplotlib)
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv from /usr/bin/python3"
    /usr/bin/python3 -m venv .venv
fi
if ! .venv/bin/python -c "import numpy, pytest, sqlite_vec, vectorlite_py, faiss, apsw, sqlean, setuptools, wheel, matplotlib" 2>/dev/null; then
    echo "setup: installing Python packages into .venv: ${PY_PKGS[*]}"
    .venv/bin/pip install -q --disable-pip-version-check "${PY_PKGS[@]}"
fi
