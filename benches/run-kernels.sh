#!/usr/bin/env bash
# Short kernels benchmark run (about 5 minutes, plus the first build): the criterion groups, their
# table of ratios, then the speed goals measured interleaved.
# Extra arguments go to criterion, e.g. `bash benches/run-kernels.sh cosine_f32`.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${CARGO_TARGET_DIR:-target}"
mkdir -p "$out/criterion"
cut -d' ' -f1-3 /proc/loadavg >"$out/criterion/loadavg.txt"
cargo bench -p pocketvec-benches --bench kernels -- --warm-up-time 0.1 --measurement-time 0.4 "$@"
cut -d' ' -f1-3 /proc/loadavg >>"$out/criterion/loadavg.txt"
python3 benches/ratio_table.py "$out/criterion" | tee "$out/kernels-ratios.md"
echo
cargo bench -p pocketvec-benches --bench goals | tee -a "$out/kernels-ratios.md"
echo "(tables saved in $out/kernels-ratios.md)"
