#!/usr/bin/env bash
# The sqlite3 command-line shell loads the extension with `.load` and runs
# the seed flow, stateless queries, filters, a join and an error case.
# Usage: tests/cli/run.sh [path/to/libpocketvec0 without suffix]
# (default ./target/release/libpocketvec0, run from the repository root).
set -euo pipefail
EXT="${1:-./target/release/libpocketvec0}"
SQLITE="${SQLITE3:-/usr/bin/sqlite3}"
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if [[ ! -e "$EXT.so" && ! -e "$EXT" ]]; then
  echo "tests/cli: $EXT(.so) not found; run cargo build --release first" >&2
  exit 1
fi

sed "s#@EXT@#$EXT#" "$here/seed.sql" > "$tmp/seed.sql"
status=0
"$SQLITE" -batch "$tmp/t.db" < "$tmp/seed.sql" > "$tmp/stdout.txt" 2> "$tmp/stderr.txt" || status=$?
passed=0
failed=0
check() {
  if diff -u "$1" "$2"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
check "$here/seed.stdout" "$tmp/stdout.txt"
check "$here/seed.stderr" "$tmp/stderr.txt"
# The shell exits non-zero because one statement fails on purpose.
if [[ $status -ne 0 ]]; then passed=$((passed + 1)); else echo "expected a failing exit status" >&2; failed=$((failed + 1)); fi
echo "tests/cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
