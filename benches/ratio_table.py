#!/usr/bin/env python3
"""Reads criterion's medians for the kernels benchmarks and prints README-ready
Markdown: one table per group with ratios against simsimd and our scalar level,
then the issue's speed goals with the measured ratio next to each.

Usage: python3 benches/ratio_table.py [criterion_dir]
(default: $CARGO_TARGET_DIR/criterion, else target/criterion)."""
import json
import os
import re
import sys
from pathlib import Path


def load(root):
    """{group: {function: median_ns}} from criterion's new/ estimates."""
    groups = {}
    for bench in root.glob("*/*/new/benchmark.json"):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        groups.setdefault(meta["group_id"], {})[meta["function_id"]] = est["median"]["point_estimate"]
    return groups


def fastest(bench_dir):
    """Fastest sample (ns per iteration) of a benchmark: for the clock
    calibration, interference only ever slows a sample down."""
    f = bench_dir / "new" / "sample.json"
    if not f.exists():
        return None
    s = json.loads(f.read_text())
    return min(t / i for t, i in zip(s["times"], s["iters"]))


def cpu():
    model, mhz = "unknown CPU", None
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            if line.startswith("cpu MHz") and mhz is None:
                mhz = float(line.split(":", 1)[1])
    except OSError:
        pass
    return model, mhz, os.cpu_count()


def group_dim(name):
    m = re.search(r"_d(\d+)$", name)
    return int(m.group(1)) if m else None


def best_level(funcs):
    for lvl in ("avx512", "neon", "avx2"):
        if lvl in funcs:
            return lvl
    return "scalar"


def main():
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "criterion"
    groups = load(root)
    if not groups:
        sys.exit(f"no criterion results under {root}")
    model, mhz, cores = cpu()
    groups.pop("clock", None)
    clock = fastest(root / "clock" / "dependent_add_1e6")
    line = f"CPU: {model}, {cores} cores"
    if mhz:
        line += f", nominal {mhz:.0f} MHz (/proc/cpuinfo)"
    if clock:
        mhz = 1e6 / clock * 1000  # one million one-cycle additions took `clock` ns
        line += f", measured {mhz:.0f} MHz (fastest sample of a dependent-add chain; used for cycles/elem)"
    print(line)
    loadfile = root / "loadavg.txt"
    if loadfile.exists():
        print("Load average before / after the run: " + " / ".join(loadfile.read_text().split("\n")[:2]))
    print()

    def order(name):
        kind, _, rest = name.partition("_")
        typ = rest.split("_d")[0]
        return (name.startswith("scan") or name.startswith("cold"), typ, kind, group_dim(name) or 0)

    # Per-group tables.
    for name in sorted(groups, key=order):
        funcs = groups[name]
        d = group_dim(name)
        ss = funcs.get("simsimd")
        sc = funcs.get("scalar")
        print(f"### {name}\n")
        if name.startswith("scan"):
            gb = 100_000 * 768 * 4 / 1e9
            base = funcs.get("memory_read")
            print("| function | median | GB/s | × memory-read baseline |")
            print("|---|---:|---:|---:|")
            for f, t in sorted(funcs.items(), key=lambda kv: kv[1]):
                rel = f"{base / t:.2f}" if base else "-"
                print(f"| {f} | {t / 1e6:.2f} ms | {gb / (t / 1e9):.1f} | {rel} |")
        else:
            print("| function | median | ns/elem | cycles/elem | × simsimd | × our scalar |")
            print("|---|---:|---:|---:|---:|---:|")
            for f, t in sorted(funcs.items(), key=lambda kv: kv[1]):
                per = t / d
                cyc = f"{per * mhz / 1000:.3f}" if mhz else "-"
                rs = f"{ss / t:.2f}" if ss and not f.startswith("simsimd") else "-"
                if f.endswith("_misaligned") and "simsimd_misaligned" in funcs and not f.startswith("simsimd"):
                    rs = f"{funcs['simsimd_misaligned'] / t:.2f}"
                rc = f"{sc / t:.2f}" if sc else "-"
                print(f"| {f} | {t:.1f} ns | {per:.4f} | {cyc} | {rs} | {rc} |")
        print()

    # Goals.
    rows = []

    def goal(text, value, target, extra=""):
        if value is None:
            rows.append((text, "not measured", f"≥ {target}", "?", extra))
        else:
            rows.append((text, f"{value:.2f}×", f"≥ {target}×", "met" if value >= target else "NOT met", extra))

    def ratio(group, num, den):
        g = groups.get(group, {})
        if num in g and den in g:
            return g[num] / g[den]
        return None

    for op in ("dot", "cosine"):
        for d in (768, 1536):
            g = f"{op}_f32_d{d}"
            lvl = best_level(groups.get(g, {}))
            r = ratio(g, "simsimd", lvl)
            extra = ""
            if mhz and lvl in groups.get(g, {}):
                extra = f"{groups[g][lvl] / d * mhz / 1000:.3f} cycles/elem (L1 ceiling for dot: 0.125)"
            goal(f"f32 {op} d={d}, {lvl} vs simsimd", r, 1.25, extra)
    for d in (128, 384, 768, 1536):
        g = f"cosine_f16_d{d}"
        lvl = best_level(groups.get(g, {}))
        goal(f"f16 cosine d={d}, {lvl} vs simsimd", ratio(g, "simsimd", lvl), 2.0)
    for d in (128, 384, 768, 1536):
        g = f"cosine_i8_d{d}"
        lvl = best_level(groups.get(g, {}))
        goal(f"int8 cosine d={d}, {lvl} vs simsimd", ratio(g, "simsimd", lvl), 1.3)
        f32t = groups.get(f"cosine_f32_d{d}", {}).get(lvl)
        i8t = groups.get(g, {}).get(lvl)
        goal(f"int8 cosine d={d} vs our f32 cosine ({lvl}), elements/s", f32t / i8t if f32t and i8t else None, 2.0)
    for lvl in ("avx512", "avx2", "neon"):
        if lvl in groups.get("dot_f32_d768", {}):
            goal(f"f32 dot d=768, {lvl} vs our scalar", ratio("dot_f32_d768", "scalar", lvl), 6.0)
    scan = next((g for g in groups if g.startswith("scan_f32")), None)
    if scan:
        lvl = best_level({f.rsplit("_", 1)[-1]: 0 for f in groups[scan]})
        goal(f"one-to-many 100k×768 f32 cosine with norms ({lvl}) vs memory-read baseline",
             ratio(scan, "memory_read", f"cosine_norms_{lvl}"), 0.8)

    print("### Speed goals from these criterion medians (sequential: each function is measured after the previous one, so background load can skew a ratio; see the interleaved table below)\n")
    print("| goal | measured | target | status | note |")
    print("|---|---:|---:|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
