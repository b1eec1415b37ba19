"""Exact top-10 cosine search: pocketvec against sqlite-vec, numpy and faiss.

Default: 100k x 768 f32 (clustered synthetic vectors, fixed seed), 15
distinct query vectors that are not in the data, single-threaded
everywhere (numpy's BLAS and faiss pinned to one thread), every answer
checked against numpy's exact top-10. Databases are built once and cached
under .cache/bench_exact/.

  pocketvec:  a base table docs(id INTEGER PRIMARY KEY, vec BLOB) and
              CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim=768)
              (the default flat index: vectors in contiguous chunks in
              shadow tables, a per-connection RAM cache, compact for f32:
              unit vectors in f16 plus error bounds, the candidates
              re-scored from their f32 base rows);
              SELECT rowid, distance FROM ann WHERE query = ? AND k = 10
  sqlite-vec: vec0(embedding float[768] distance_metric=cosine),
              WHERE embedding MATCH ? AND k = 10
  numpy:      X @ q / norms + argpartition, X already in memory
  faiss:      IndexFlatIP over normalised X, omp_set_num_threads(1)

Reported, for SQLite's default PRAGMAs and then PRAGMA mmap_size = 1 GiB
(or the larger database file's size, rounded up to GiB) for both engines
(medians):
  cold  - the first query on a freshly opened connection (OS file cache warm);
  fill  - pocketvec's second query on that connection, which fills the RAM
          cache while it scans (the first one streams chunk by chunk);
  warm  - later queries;
  and, pocketvec only: the same index with cache=full (the f32 rows
  themselves in RAM; table ann_full), the scan with the cache off
  (streamed), a batch of
  16 queries in one pass (per query), and threads = 2 (reported apart from
  the single-threaded figures).
The memory-read bound is the bytes scanned over the read bandwidth measured
in the same run (numpy's max over the same 307 MB array: one pass, no
arithmetic to speak of).

Bulk insert: the 100k vectors inserted in one transaction into an empty
base table that already has its pocketvec table, timed until the index has
caught up (the first query applies the change log), against inserting the
same vectors into an empty vec0 table.

Usage: .venv/bin/python benches/python/bench_exact.py [--ext PATH]
       [--n 100000] [--dim 768] [--queries 15] [--cold 5] [--no-bulk]
"""

import argparse
import json
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
GIB = 1 << 30


def mmap_pragma(*paths):
    """mmap_size covering the larger database file (at least 1 GiB)."""
    size = max([GIB] + [os.path.getsize(p) for p in paths])
    gib = -(-size // GIB)
    return f"PRAGMA mmap_size = {gib * GIB}", f"{gib} GiB"


def make_data(n, dim, n_queries, seed=42):
    """Clustered synthetic vectors: 100 Gaussian centroids plus noise."""
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((100, dim)).astype(np.float32)
    labels = rng.integers(0, 100, n)
    # Block by block (the same random stream as one call), so 1M x 768
    # never needs the 6 GB float64 temporary.
    x = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, 50_000):
        e = min(n, s + 50_000)
        x[s:e] = centroids[labels[s:e]] + 0.6 * rng.standard_normal((e - s, dim)).astype(np.float32)
    qrng = np.random.default_rng(seed + 1)
    q = centroids[qrng.integers(0, 100, n_queries)] + 0.6 * qrng.standard_normal((n_queries, dim)).astype(
        np.float32
    )
    return x, q.astype(np.float32)


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


def insert_docs(con, x, start=1):
    con.executemany("INSERT INTO docs VALUES(?, ?)", ((start + i, v.tobytes()) for i, v in enumerate(x)))


def build(cache, x, ext):
    cache.mkdir(parents=True, exist_ok=True)
    tag = f"n{len(x)}-d{x.shape[1]}-seed42-v3"
    pv, sv = cache / f"pocketvec-{tag}.db", cache / f"sqlitevec-{tag}.db"
    if not (cache / f"{tag}.done").exists():
        for p in (pv, sv):
            p.unlink(missing_ok=True)
        t = time.perf_counter()
        con = connect(str(pv), ext, [])
        con.execute("BEGIN")
        con.execute("CREATE TABLE docs(id INTEGER PRIMARY KEY, vec BLOB NOT NULL)")
        insert_docs(con, x)
        con.execute("COMMIT")
        t1 = time.perf_counter()
        con.execute(f"CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim={x.shape[1]})")
        con.execute(f"CREATE VIRTUAL TABLE ann_none USING pocketvec(base_table=docs, dim={x.shape[1]}, index=none)")
        con.close()
        print(f"built {pv.name}: base table {t1 - t:.1f} s, index from existing rows {time.perf_counter() - t1:.1f} s")
        t = time.perf_counter()
        con = connect(str(sv), ext, [])
        con.execute("BEGIN")
        con.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{x.shape[1]}] distance_metric=cosine)")
        con.executemany("INSERT INTO v(rowid, embedding) VALUES(?, ?)", ((i + 1, v.tobytes()) for i, v in enumerate(x)))
        con.execute("COMMIT")
        con.close()
        print(f"built {sv.name} in {time.perf_counter() - t:.1f} s")
        (cache / f"{tag}.done").write_text("ok\n")
    con = connect(str(pv), ext, [])
    if not con.execute("SELECT 1 FROM sqlite_schema WHERE name = 'ann_full'").fetchone():
        t = time.perf_counter()
        con.execute(f"CREATE VIRTUAL TABLE ann_full USING pocketvec(base_table=docs, dim={x.shape[1]}, cache=full)")
        print(f"added ann_full (cache=full) in {time.perf_counter() - t:.1f} s")
    con.close()
    return str(pv), str(sv)


def q_pocketvec(con, q, table="ann", extra=""):
    return con.execute(f"SELECT rowid, distance FROM {table} WHERE query = ? AND k = 10{extra}", (q.tobytes(),)).fetchall()


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


def ms(t):
    return f"{t * 1e3:8.1f}"


def memory_bound(x, rounds=9):
    """Read bandwidth over the same array (one pass, max), and the bound."""
    ts = []
    for _ in range(rounds):
        t = time.perf_counter()
        x.max()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def run_config(label, pragmas, pv, sv, ext, queries, wants, n_cold, x, xn, faiss_index):
    """Alternates the engines query by query, so load on the machine hits
    all alike."""
    cold = {"pocketvec": [], "pocketvec fill": [], "sqlite-vec": []}
    for i in range(n_cold):
        q, want = queries[i % len(queries)], wants[i % len(queries)]
        con = connect(pv, ext, pragmas)
        dt, rows = timed(q_pocketvec, con, q)
        check(rows, want, "pocketvec cold")
        cold["pocketvec"].append(dt)
        q2, want2 = queries[(i + 1) % len(queries)], wants[(i + 1) % len(queries)]
        dt, rows = timed(q_pocketvec, con, q2)
        check(rows, want2, "pocketvec fill")
        cold["pocketvec fill"].append(dt)
        con.close()
        con = connect(sv, ext, pragmas)
        dt, rows = timed(q_sqlitevec, con, q)
        check(rows, want, "sqlite-vec cold")
        cold["sqlite-vec"].append(dt)
        con.close()

    pcon = connect(pv, ext, pragmas)
    scon = connect(sv, ext, pragmas)
    fcon = connect(pv, ext, pragmas)  # cache=full
    ocon = connect(pv, ext, pragmas)  # cache off: streamed
    ocon.execute("SELECT pocketvec_cache('ann', 0)")
    for _ in range(2):  # the second query fills the cache
        q_pocketvec(pcon, queries[0])
        q_pocketvec(fcon, queries[0], "ann_full")
    q_sqlitevec(scon, queries[0])
    q_pocketvec(ocon, queries[0])
    qblob = queries[:16].tobytes()
    nb = min(16, len(queries))
    warm = {k: [] for k in ("pocketvec", "sqlite-vec", "numpy", "faiss", "pocketvec cache=full", "pocketvec cache off",
                            "pocketvec threads=2", "pocketvec batch (per query)", "memory read")}
    for q, want in zip(queries, wants):
        dt, rows = timed(q_pocketvec, pcon, q)
        check(rows, want, "pocketvec")
        warm["pocketvec"].append(dt)
        dt, rows = timed(q_sqlitevec, scon, q)
        check(rows, want, "sqlite-vec")
        warm["sqlite-vec"].append(dt)
        dt, ids = timed(numpy_top10, x, xn, q)
        warm["numpy"].append(dt)
        qn = (q / np.linalg.norm(q)).reshape(1, -1)
        dt, (_, fi) = timed(faiss_index.search, qn, 10)
        check([(int(i) + 1,) for i in fi[0]], want, "faiss")
        warm["faiss"].append(dt)
        dt, rows = timed(q_pocketvec, fcon, q, "ann_full")
        check(rows, want, "pocketvec cache=full")
        warm["pocketvec cache=full"].append(dt)
        dt, rows = timed(q_pocketvec, ocon, q)
        check(rows, want, "pocketvec cache off")
        warm["pocketvec cache off"].append(dt)
        dt, rows = timed(q_pocketvec, pcon, q, "ann", " AND threads = 2")
        check(rows, want, "pocketvec threads=2")
        warm["pocketvec threads=2"].append(dt)
        t = time.perf_counter()
        rows = pcon.execute(
            "SELECT query_index, rowid FROM ann WHERE queries = ? AND k = 10", (qblob,)
        ).fetchall()
        warm["pocketvec batch (per query)"].append((time.perf_counter() - t) / nb)
        for i in range(nb):
            check([(r[1],) for r in rows if r[0] == i], wants[i], "batch")
        warm["memory read"].append(memory_bound(x, 1))
    info = json.loads(pcon.execute("SELECT pocketvec_info('ann')").fetchone()[0])
    finfo = json.loads(fcon.execute("SELECT pocketvec_info('ann_full')").fetchone()[0])
    for c in (pcon, scon, ocon, fcon):
        c.close()
    med = {k: statistics.median(v) for k, v in warm.items()}
    cmed = {k: statistics.median(v) for k, v in cold.items()}
    bound = med["memory read"]
    sv_w, sv_c = med["sqlite-vec"], cmed["sqlite-vec"]
    print(f"\n[{label}] medians, ms; speed-up = other time / pocketvec time")
    print(f"  cold (first query after open):  pocketvec {ms(cmed['pocketvec'])}   sqlite-vec {ms(sv_c)}"
          f"   -> {sv_c / cmed['pocketvec']:.2f}x")
    print(f"  second query (fills the cache): pocketvec {ms(cmed['pocketvec fill'])}")
    print(f"  warm:")
    for k in ("pocketvec", "sqlite-vec", "numpy", "faiss", "pocketvec cache=full", "pocketvec cache off",
              "pocketvec batch (per query)",
              "pocketvec threads=2"):
        extra = "" if k == "pocketvec" else f"   pocketvec is {med[k] / med['pocketvec']:.2f}x faster"
        if k.startswith("pocketvec "):
            extra = f"   ({sv_w / med[k]:.1f}x sqlite-vec)"
        print(f"    {k:30} {ms(med[k])}{extra}")
    print(f"    {'memory-read bound':30} {ms(bound)}   ({x.nbytes / bound / 1e9:.1f} GB/s over {x.nbytes / 1e6:.0f} MB;"
          f" pocketvec at {bound / med['pocketvec']:.2f}x the bound)")
    cb = bound * info["cache_bytes"] / x.nbytes
    print(f"    {'read bound of the RAM cache':30} {ms(cb)}   ({info['cache_bytes'] / 1e6:.0f} MB at the same bandwidth;"
          f" pocketvec at {cb / med['pocketvec']:.2f}x, cache=full at {bound / med['pocketvec cache=full']:.2f}x its bound)")
    print(f"  cache: {info['cache_bytes'] / 1e6:.1f} MB for {info['vector_bytes'] / 1e6:.1f} MB of vectors "
          f"({info['cache_bytes'] / info['chunk_bytes']:.3f}x the stored chunk bytes, "
          f"{info['cache_bytes'] / info['vector_bytes']:.3f}x the vector bytes); cache=full: "
          f"{finfo['cache_bytes'] / 1e6:.1f} MB ({finfo['cache_bytes'] / finfo['vector_bytes']:.3f}x)")
    return med, cmed


def bulk_insert(ext, x, queries, wants, workdir):
    """100k vectors in one transaction, until the index has caught up."""
    workdir.mkdir(parents=True, exist_ok=True)
    dim = x.shape[1]
    res = {}
    for name, setup, load, catch_up in (
        ("pocketvec flat", f"CREATE TABLE docs(id INTEGER PRIMARY KEY, vec BLOB NOT NULL);"
                           f"CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim={dim});",
         lambda con: insert_docs(con, x), lambda con: q_pocketvec(con, queries[0])),
        ("base table only", "CREATE TABLE docs(id INTEGER PRIMARY KEY, vec BLOB NOT NULL);",
         lambda con: insert_docs(con, x), None),
        ("sqlite-vec", f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{dim}] distance_metric=cosine);",
         lambda con: con.executemany("INSERT INTO v(rowid, embedding) VALUES(?, ?)",
                                     ((i + 1, v.tobytes()) for i, v in enumerate(x))),
         lambda con: q_sqlitevec(con, queries[0])),
    ):
        path = workdir / "bulk.db"
        for suffix in ("", "-journal", "-wal"):
            pathlib.Path(str(path) + suffix).unlink(missing_ok=True)
        con = connect(str(path), ext, [])
        con.executescript(setup)
        t = time.perf_counter()
        con.execute("BEGIN")
        load(con)
        con.execute("COMMIT")
        t_ins = time.perf_counter() - t
        if catch_up:
            rows = catch_up(con)
            check(rows, wants[0], name)
        t_all = time.perf_counter() - t
        con.close()
        res[name] = (t_ins, t_all)
        path.unlink()
    print(f"\n[bulk insert of {len(x)} x {dim} f32 in one transaction, then the first query]")
    for name, (ti, ta) in res.items():
        print(f"  {name:16} insert {ti:6.2f} s, caught up after {ta:6.2f} s = {len(x) / ta:8.0f} rows/s")
    pv, sv = res["pocketvec flat"][1], res["sqlite-vec"][1]
    print(f"  pocketvec flat / sqlite-vec rate: {sv / pv:.2f}x")
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ext", default=str(ROOT / "target" / "release" / "libpocketvec0.so"))
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--queries", type=int, default=15)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--no-bulk", action="store_true")
    ap.add_argument("--cache", default=str(ROOT / ".cache" / "bench_exact"))
    a = ap.parse_args()
    if not os.path.exists(a.ext):
        sys.exit(f"{a.ext} not found: run cargo build --release -p pocketvec")
    import faiss

    faiss.omp_set_num_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}; python sqlite3 {sqlite3.sqlite_version}; faiss {faiss.__version__}")
    x, queries = make_data(a.n, a.dim, a.queries)
    pv, sv = build(pathlib.Path(a.cache), x, a.ext)
    con = connect(":memory:", a.ext, [])
    print(con.execute("SELECT pocketvec_debug()").fetchone()[0].replace("\n", "; "))
    print(f"sqlite-vec {con.execute('SELECT vec_version()').fetchone()[0]}")
    con.close()
    xn = np.linalg.norm(x, axis=1)
    wants = [numpy_top10(x, xn, q) for q in queries]
    index = faiss.IndexFlatIP(a.dim)
    index.add(x / xn[:, None])
    print(f"\n{a.n} x {a.dim} f32, exact top-10 cosine, {a.queries} queries (warm), {a.cold} cold opens")
    run_config("default PRAGMAs", [], pv, sv, a.ext, queries, wants, a.cold, x, xn, index)
    mmap, mmap_label = mmap_pragma(pv, sv)
    run_config(f"PRAGMA mmap_size = {mmap_label} (both)", [mmap], pv, sv, a.ext, queries, wants, a.cold, x, xn, index)
    if not a.no_bulk:
        bulk_insert(a.ext, x, queries, wants, pathlib.Path(a.cache) / "bulk")


if __name__ == "__main__":
    main()
