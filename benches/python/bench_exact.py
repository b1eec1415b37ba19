"""Exact top-10 cosine search over 100k x 768 f32: pocketvec vs sqlite-vec.

Both extensions run in the same process, single-threaded, on the same
vectors (clustered synthetic data, fixed seed), with the same queries
(distinct, not in the data) and the same PRAGMAs. Each database is built
once and cached under .cache/bench_exact/.

  pocketvec:  the seed virtual table over a plain base table,
              SELECT pocketvec_set_q(?); SELECT rowid, distance FROM ann
              ORDER BY distance LIMIT 10
  sqlite-vec: vec0(embedding float[768] distance_metric=cosine),
              WHERE embedding MATCH ? AND k = 10

Reported: medians of warm queries (after one warm-up query on the same
connection) and of cold queries (the first query on a freshly opened
connection; the OS file cache stays warm), for SQLite's default PRAGMAs and
with PRAGMA mmap_size = 1 GiB for both. Each answer is checked against
numpy's exact top-10.

A breakdown then shows where pocketvec's scan time goes: walking the base
table's pages (count(*)), reading every vector (sum(length(vec))), the
scan itself, and numpy computing the same distances from memory; `perf
record` on the scan (see docs/readme/ext.md) splits it further.

Usage: .venv/bin/python benches/python/bench_exact.py [--ext PATH]
       [--n 100000] [--dim 768] [--queries 15] [--cold 5]
"""

import argparse
import os

# Single-threaded everywhere, numpy's BLAS included.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"
import pathlib
import platform
import sqlite3
import statistics
import sys
import time

import numpy as np
import sqlite_vec

ROOT = pathlib.Path(__file__).resolve().parents[2]


def make_data(n, dim, n_queries, seed=42):
    """Clustered synthetic vectors: 100 Gaussian centroids plus noise."""
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((100, dim)).astype(np.float32)
    labels = rng.integers(0, 100, n)
    x = centroids[labels] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    qrng = np.random.default_rng(seed + 1)
    q = centroids[qrng.integers(0, 100, n_queries)] + 0.6 * qrng.standard_normal((n_queries, dim)).astype(
        np.float32
    )
    return x.astype(np.float32), q.astype(np.float32)


def numpy_top10(x, xn, q):
    d = 1.0 - (x @ q) / (xn * np.linalg.norm(q))
    idx = np.argpartition(d, 10)[:10]
    return [int(i) + 1 for i in idx[np.argsort(d[idx])]]


def connect(path, ext, pragmas):
    con = sqlite3.connect(path, isolation_level=None)
    con.enable_load_extension(True)
    con.load_extension(ext)
    sqlite_vec.load(con)
    for p in pragmas:
        con.execute(p)
    return con


def build(cache, x, ext):
    cache.mkdir(parents=True, exist_ok=True)
    tag = f"n{len(x)}-d{x.shape[1]}-seed42"
    pv, sv = cache / f"pocketvec-{tag}.db", cache / f"sqlitevec-{tag}.db"
    if not (cache / f"{tag}.done").exists():
        for p in (pv, sv):
            p.unlink(missing_ok=True)
        t = time.perf_counter()
        con = connect(str(pv), ext, [])
        con.execute("BEGIN")
        con.execute("CREATE TABLE docs(id INTEGER PRIMARY KEY, vec BLOB NOT NULL)")
        con.executemany("INSERT INTO docs VALUES(?, ?)", ((i + 1, v.tobytes()) for i, v in enumerate(x)))
        con.execute(f"CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim={x.shape[1]})")
        con.execute("COMMIT")
        con.close()
        print(f"built {pv.name} in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        con = connect(str(sv), ext, [])
        con.execute("BEGIN")
        con.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{x.shape[1]}] distance_metric=cosine)")
        con.executemany("INSERT INTO v(rowid, embedding) VALUES(?, ?)", ((i + 1, v.tobytes()) for i, v in enumerate(x)))
        con.execute("COMMIT")
        con.close()
        print(f"built {sv.name} in {time.perf_counter() - t:.1f} s")
        (cache / f"{tag}.done").write_text("ok\n")
    return str(pv), str(sv)


def q_pocketvec(con, q):
    con.execute("SELECT pocketvec_set_q(?)", (q.tobytes(),))
    return con.execute("SELECT rowid, distance FROM ann ORDER BY distance LIMIT 10").fetchall()


def q_sqlitevec(con, q):
    return con.execute("SELECT rowid, distance FROM v WHERE embedding MATCH ? AND k = 10", (q.tobytes(),)).fetchall()


def timed(f, *args):
    t = time.perf_counter()
    r = f(*args)
    return time.perf_counter() - t, r


def check(rows, want, name):
    got = [r[0] for r in rows]
    if got != want:
        # Allow reordering only among equal distances.
        assert sorted(got) == sorted(want), f"{name}: got {got}, numpy {want}"


def run_config(label, pragmas, pv, sv, ext, queries, wants, n_cold):
    """Alternates the two engines query by query, so load on the machine
    hits both alike."""
    engines = (("pocketvec", pv, q_pocketvec), ("sqlite-vec", sv, q_sqlitevec))
    cold = {name: [] for name, _, _ in engines}
    for i in range(n_cold):
        for name, path, f in engines:
            con = connect(path, ext, pragmas)
            dt, rows = timed(f, con, queries[i % len(queries)])
            check(rows, wants[i % len(queries)], name)
            cold[name].append(dt)
            con.close()
    cons = {name: connect(path, ext, pragmas) for name, path, _ in engines}
    for name, _, f in engines:
        f(cons[name], queries[0])  # warm-up
    warm = {name: [] for name, _, _ in engines}
    for q, want in zip(queries, wants):
        for name, _, f in engines:
            dt, rows = timed(f, cons[name], q)
            check(rows, want, name)
            warm[name].append(dt)
    for c in cons.values():
        c.close()
    out = {name: (statistics.median(cold[name]), statistics.median(warm[name])) for name, _, _ in engines}
    pc, pw = out["pocketvec"]
    sc, sw = out["sqlite-vec"]
    print(f"\n[{label}]")
    print(f"  {'':12} {'cold ms':>9} {'warm ms':>9}")
    print(f"  {'pocketvec':12} {pc * 1e3:9.1f} {pw * 1e3:9.1f}")
    print(f"  {'sqlite-vec':12} {sc * 1e3:9.1f} {sw * 1e3:9.1f}")
    print(f"  speed-up (sqlite-vec time / pocketvec time): cold {sc / pc:.2f}x, warm {sw / pw:.2f}x")
    return out


def breakdown(label, pragmas, pv, ext, queries, x, xn, rounds=7):
    """Times the steps of a scan, interleaved round by round."""
    con = connect(pv, ext, pragmas)
    q = queries[0]
    steps = {
        "walk the base table's pages: SELECT count(*) FROM docs": lambda: con.execute(
            "SELECT count(*) FROM docs"
        ).fetchone(),
        "read every vector: SELECT sum(length(vec)) FROM docs": lambda: con.execute(
            "SELECT sum(length(vec)) FROM docs"
        ).fetchone(),
        "pocketvec exact top-10 (seed form)": lambda: q_pocketvec(con, q),
        "pocketvec exact top-10 (WHERE query = ? AND k = 10)": lambda: con.execute(
            "SELECT rowid, distance FROM ann WHERE query = ? AND k = 10", (q.tobytes(),)
        ).fetchall(),
        "numpy on the same vectors in memory (X @ q, norms, argpartition)": lambda: numpy_top10(x, xn, q),
    }
    for f in steps.values():
        f()
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, f in steps.items():
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    con.close()
    print(f"\n[where pocketvec's time goes, {label}, warm; medians of {rounds} interleaved rounds]")
    for name, ts in times.items():
        print(f"  {statistics.median(ts) * 1e3:8.1f} ms  {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ext", default=str(ROOT / "target" / "release" / "libpocketvec0.so"))
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--queries", type=int, default=15)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--cache", default=str(ROOT / ".cache" / "bench_exact"))
    a = ap.parse_args()
    if not os.path.exists(a.ext):
        sys.exit(f"{a.ext} not found: run cargo build --release -p pocketvec")

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}; python sqlite3 {sqlite3.sqlite_version}")
    x, queries = make_data(a.n, a.dim, a.queries)
    pv, sv = build(pathlib.Path(a.cache), x, a.ext)
    con = connect(":memory:", a.ext, [])
    print(con.execute("SELECT pocketvec_debug()").fetchone()[0].replace("\n", "; "))
    print(f"sqlite-vec {con.execute('SELECT vec_version()').fetchone()[0]}")
    con.close()
    xn = np.linalg.norm(x, axis=1)
    wants = [numpy_top10(x, xn, q) for q in queries]
    print(f"\n{a.n} x {a.dim} f32, exact top-10 cosine, {a.queries} queries (warm), {a.cold} cold opens")
    run_config("default PRAGMAs", [], pv, sv, a.ext, queries, wants, a.cold)
    run_config("PRAGMA mmap_size = 1073741824 (both)", ["PRAGMA mmap_size = 1073741824"], pv, sv, a.ext, queries,
               wants, a.cold)
    breakdown("default PRAGMAs", [], pv, a.ext, queries, x, xn)
    breakdown("mmap_size = 1 GiB", ["PRAGMA mmap_size = 1073741824"], pv, a.ext, queries, x, xn)


if __name__ == "__main__":
    main()
