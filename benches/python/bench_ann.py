"""Approximate search: recall@10 against queries per second.

pocketvec IVF-PQ and IVF-int8 (over nprobe) against vectorlite's HNSW (over
ef) and faiss IVF (IndexIVFFlat and IndexIVFPQ, over nprobe), all
single-threaded, cosine, on

  * the real embeddings in ../shared/data/debian (30,000 package
    descriptions x 384, MiniLM; the documents are indexed, the held-out
    query vectors queries.f16 are searched), and
  * clustered synthetic data (size from --synthetic, dimension --syn-dim;
    queries drawn from the same clusters, not in the data).

Ground truth: numpy's exact top-10. QPS = 1 / median latency of one SQL
query (pocketvec, vectorlite) or one search call (faiss, in memory), warm.
pocketvec's exact scan over the same data is measured in the same run, so
"x exact" is a ratio within one run. Writes a PNG plot per dataset. Then a
head-to-head: at the settings of each engine that reach recall@10 >= 0.95
in the sweep, pocketvec exact (the default compact cache, and cache=full:
the f32 rows in RAM), IVF-PQ, IVF-int8 and vectorlite run the
query set in turn for --rounds interleaved rounds (machine load hits all
alike); medians and same-run ratios, with the spread of per-round ratios.

Also: index bytes (IVF lists + model) against the raw f32 bytes, and (with
--bulk N) N x 768 vectors inserted in one transaction into a table with a
trained IVF-PQ index, timed until the index has caught up, against
sqlite-vec.

Usage: .venv/bin/python benches/python/bench_ann.py [--ext PATH]
       [--queries 300] [--synthetic 200000] [--syn-dim 384] [--bulk 100000]
       [--png-dir docs/img] [--rounds 5]
"""

import argparse
import json
import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"
import pathlib
import platform
import sqlite3
import statistics
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
K = 10


def load_debian(data, n_queries):
    meta = json.loads((data / "meta.json").read_text())
    d = meta["dim"]
    x = np.fromfile(data / "docs.f16", dtype=np.float16).reshape(-1, d).astype(np.float32)
    q = np.fromfile(data / "queries.f16", dtype=np.float16).reshape(-1, d).astype(np.float32)
    rng = np.random.default_rng(7)
    q = q[rng.choice(len(q), n_queries, replace=False)]
    return x, q


def make_clustered(n, d, n_queries, seed=11):
    """1,000 clusters, each spread over a 16-dimensional subspace, L2-normalised."""
    rng = np.random.default_rng(seed)
    c = 1000
    centers = rng.standard_normal((c, d)).astype(np.float32)
    basis = rng.standard_normal((c, 16, d)).astype(np.float32) * 0.25

    def draw(m, r):
        # Block by block (the same random stream as whole-array calls), so
        # 1M rows never materialise a (m, 16, d) basis gather (25 GB).
        lab = r.integers(0, c, m)
        coef = r.standard_normal((m, 16)).astype(np.float32)
        v = centers[lab]
        step = 20_000
        for s in range(0, m, step):
            e = min(m, s + step)
            v[s:e] += np.einsum("mk,mkd->md", coef[s:e], basis[lab[s:e]])
        for s in range(0, m, step):
            e = min(m, s + step)
            v[s:e] += 0.05 * r.standard_normal((e - s, d)).astype(np.float32)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    return draw(n, rng), draw(n_queries, np.random.default_rng(seed + 1))


def ground_truth(x, q):
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    out = []
    for i in range(0, len(q), 64):
        s = qn[i:i + 64] @ xn.T
        idx = np.argpartition(-s, K, axis=1)[:, :K]
        for r, row in enumerate(idx):
            out.append(set(int(j) + 1 for j in row))
    return out


def recall(got_ids, truth):
    return len(set(got_ids) & truth) / K


def connect(path, ext):
    con = sqlite3.connect(path, isolation_level=None)
    con.enable_load_extension(True)
    con.load_extension(ext)
    return con


def sweep_sql(con, sql, params_of, queries, gt, warmup=3):
    for q in queries[:warmup]:
        con.execute(sql, params_of(q)).fetchall()
    lat, rec = [], []
    for q, t in zip(queries, gt):
        t0 = time.perf_counter()
        rows = con.execute(sql, params_of(q)).fetchall()
        lat.append(time.perf_counter() - t0)
        rec.append(recall([r[0] for r in rows], t))
    return statistics.mean(rec), 1.0 / statistics.median(lat)


def fine_steps(lo, hi):
    """lo, ... below hi in steps of about 1.25x from 8 on (1, 2, 3, 4, 6, 8, 10,
    12, 14, 16, 20, 24, 28, 32, 40, ...): the same grid for pocketvec's
    nprobe and vectorlite's ef, so neither curve is sampled more finely."""
    out, p = [], 1
    while p < hi:
        for f in ((4, 5, 6, 7) if p >= 8 else (4, 6)):
            v = p * f // 4
            if lo <= v < hi and v not in out:
                out.append(v)
        p *= 2
    return sorted(set(out + [v for v in (1, 2) if lo <= v < hi]))


def nprobe_steps(lists):
    """nprobe values below `lists` (nprobe = lists is the exact scan)."""
    return fine_steps(1, lists)


def pocketvec_curves(ext, x, q, gt, workdir, tag):
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"ann-{tag}.db"
    d = x.shape[1]
    fresh = not path.exists()
    con = connect(str(path), ext)
    build = {}
    if fresh:
        con.execute("BEGIN")
        con.execute("CREATE TABLE docs(id INTEGER PRIMARY KEY, vec BLOB NOT NULL)")
        con.executemany("INSERT INTO docs VALUES(?, ?)", ((i + 1, v.tobytes()) for i, v in enumerate(x)))
        con.execute("COMMIT")
        for name, opts in (("exact", ""), ("ivf_pq", ", index=ivf, quantizer=pq"),
                           ("ivf_int8", ", index=ivf, quantizer=int8")):
            t = time.perf_counter()
            con.execute(f"CREATE VIRTUAL TABLE {name} USING pocketvec(base_table=docs, dim={d}{opts})")
            build[name] = time.perf_counter() - t
            print(f"  built {name} ({tag}) in {build[name]:.1f} s")
    if not con.execute("SELECT 1 FROM sqlite_schema WHERE name = 'exact_full'").fetchone():
        # The exact scan with the f32 rows in RAM (cache=full), for the
        # head-to-head beside the default compact cache.
        con.execute(f"CREATE VIRTUAL TABLE exact_full USING pocketvec(base_table=docs, dim={d}, cache=full)")
    curves = {}
    # Exact scan, cached (the first query streams, the second fills).
    rec, qps = sweep_sql(con, "SELECT rowid FROM exact WHERE query = ? AND k = 10", lambda v: (v.tobytes(),),
                         q[: min(len(q), 100)], gt)
    assert rec >= 0.995, rec  # ties at rank 10 between float orders
    exact_qps = qps
    sizes = {}
    for name in ("ivf_pq", "ivf_int8"):
        info = json.loads(con.execute(f"SELECT pocketvec_info('{name}')").fetchone()[0])
        assert info["trained"], info
        lists = info["lists"]
        sizes[name] = info
        pts = []
        for npb in nprobe_steps(lists):
            r, s = sweep_sql(con, f"SELECT rowid FROM {name} WHERE query = ? AND k = 10 AND nprobe = ?",
                             lambda v, n=npb: (v.tobytes(), n), q, gt)
            pts.append((npb, r, s))
            if r >= 0.999:
                break
        curves[f"pocketvec {name.replace('_', '-').upper().replace('IVF-', 'IVF-')}"] = pts
        after = json.loads(con.execute(f"SELECT pocketvec_info('{name}')").fetchone()[0])
        print(f"  {name}: RAM on this connection {after['cache_bytes'] / 1e6:.1f} MB (code lists + the re-rank "
              f"copy of the base vectors; raw f32 {x.nbytes / 1e6:.1f} MB)")
    return curves, exact_qps, sizes, build, con


def vectorlite_curve(x, q, gt):
    import vectorlite_py

    con = sqlite3.connect(":memory:", isolation_level=None)
    con.enable_load_extension(True)
    con.load_extension(vectorlite_py.vectorlite_path())
    d = x.shape[1]
    t = time.perf_counter()
    con.execute(f"CREATE VIRTUAL TABLE v USING vectorlite(emb float32[{d}] cosine, "
                f"hnsw(max_elements={len(x)}, ef_construction=200, M=16))")
    con.execute("BEGIN")
    con.executemany("INSERT INTO v(rowid, emb) VALUES(?, ?)", ((i + 1, v.tobytes()) for i, v in enumerate(x)))
    con.execute("COMMIT")
    built = time.perf_counter() - t
    pts = []
    for ef in fine_steps(10, 400):
        r, s = sweep_sql(con, "SELECT rowid FROM v WHERE knn_search(emb, knn_param(?, 10, ?))",
                         lambda v, e=ef: (v.tobytes(), e), q, gt)
        pts.append((ef, r, s))
        if r >= 0.999:
            break
    return pts, built, con


def faiss_curves(x, q, gt, lists):
    import faiss

    faiss.omp_set_num_threads(1)
    d = x.shape[1]
    xn = np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True))
    qn = np.ascontiguousarray(q / np.linalg.norm(q, axis=1, keepdims=True))
    out = {}
    for name, make in (
        ("faiss IVF-Flat", lambda cq: faiss.IndexIVFFlat(cq, d, lists, faiss.METRIC_INNER_PRODUCT)),
        ("faiss IVF-PQ", lambda cq: faiss.IndexIVFPQ(cq, d, lists, d // 4, 8, faiss.METRIC_INNER_PRODUCT)),
    ):
        cq = faiss.IndexFlatIP(d)
        idx = make(cq)
        idx.train(xn)
        idx.add(xn)
        pts = []
        npb = 1
        while npb <= lists:
            idx.nprobe = npb
            lat, rec = [], []
            for v, t in zip(qn, gt):
                t0 = time.perf_counter()
                _, ids = idx.search(v.reshape(1, -1), K)
                lat.append(time.perf_counter() - t0)
                rec.append(recall([int(i) + 1 for i in ids[0]], t))
            r, s = statistics.mean(rec), 1.0 / statistics.median(lat)
            pts.append((npb, r, s))
            if r >= 0.999:
                break
            npb *= 2
        out[name] = pts
    return out


def setting_at(pts, target):
    """The fastest setting reaching recall >= target in a sweep (None if none)."""
    ok = [(s, p, r) for p, r, s in pts if r >= target]
    return max(ok)[1:] if ok else None


def head_to_head(pv_con, vl_con, curves, q, gt, target, rounds):
    """Interleaved rounds at the settings that reach `target` recall: pocketvec
    exact, pocketvec IVF-PQ / IVF-int8 and vectorlite each run every query
    once per round, in turn, so machine load hits all of them alike. Returns
    {name: (setting, recall, median latency, per-round medians)}."""
    runs = [("pocketvec exact", None, pv_con, "SELECT rowid FROM exact WHERE query = ? AND k = 10",
             lambda v: (v.tobytes(),), q[: min(len(q), 100)], gt[: min(len(q), 100)]),
            ("pocketvec exact full", None, pv_con, "SELECT rowid FROM exact_full WHERE query = ? AND k = 10",
             lambda v: (v.tobytes(),), q[: min(len(q), 100)], gt[: min(len(q), 100)])]
    for name, table in (("pocketvec IVF-PQ", "ivf_pq"), ("pocketvec IVF-INT8", "ivf_int8")):
        st = setting_at(curves.get(name, []), target)
        if st:
            runs.append((name, st[0], pv_con,
                         f"SELECT rowid FROM {table} WHERE query = ? AND k = 10 AND nprobe = {st[0]}",
                         lambda v: (v.tobytes(),), q, gt))
    st = setting_at(curves.get("vectorlite HNSW", []), target)
    if st:
        runs.append(("vectorlite HNSW", st[0], vl_con,
                     f"SELECT rowid FROM v WHERE knn_search(emb, knn_param(?, 10, {st[0]}))",
                     lambda v: (v.tobytes(),), q, gt))
    lat = {r[0]: [] for r in runs}
    per_round = {r[0]: [] for r in runs}
    rec = {}
    for rnd in range(rounds):
        for name, _, con, sql, args, qs, g in runs:
            this, hits = [], []
            for v, t in zip(qs, g):
                t0 = time.perf_counter()
                rows = con.execute(sql, args(v)).fetchall()
                this.append(time.perf_counter() - t0)
                hits.append(recall([r[0] for r in rows], t))
            lat[name] += this
            per_round[name].append(statistics.median(this))
            rec[name] = statistics.mean(hits)
    return {name: (setting, rec[name], statistics.median(lat[name]), per_round[name])
            for name, setting, *_ in runs}


def report_h2h(tag, h2h, target, rounds):
    print(f"\n[{tag}: head to head at recall@10 >= {target}, {rounds} interleaved rounds, medians]")
    ex = h2h["pocketvec exact"][2]
    exf = h2h["pocketvec exact full"][2]
    vl = h2h.get("vectorlite HNSW")
    for name, (setting, r, med, rounds_med) in h2h.items():
        knob = "" if setting is None else (f"ef {setting}" if "vectorlite" in name else f"nprobe {setting}")
        line = f"  {name:20} {knob:10} recall {r:.3f}  {1 / med:8.0f} QPS ({med * 1e6:7.1f} us)"
        if not name.startswith("pocketvec exact"):
            line += f"  {ex / med:5.1f}x exact, {exf / med:5.1f}x exact with cache=full"
            if vl and "vectorlite" not in name:
                ratios = [v / p for p, v in zip(rounds_med, vl[3])]
                line += (f", {vl[2] / med:.2f}x vectorlite (rounds {min(ratios):.2f}-{max(ratios):.2f})")
        print(line)


def qps_at(pts, target):
    """Best QPS among settings reaching recall >= target (None if none)."""
    ok = [s for _, r, s in pts if r >= target]
    return max(ok) if ok else None


def report(tag, curves, exact_qps, png_dir, n, d):
    print(f"\n[{tag}: {n} x {d}, recall@10 / QPS, single-threaded]")
    print(f"  pocketvec exact (flat index, cached): {exact_qps:8.0f} QPS, recall 1.000")
    for name, pts in curves.items():
        knob = "ef" if "vectorlite" in name else "nprobe"
        print(f"  {name}:")
        for p, r, s in pts:
            print(f"    {knob} {p:5d}  recall {r:.3f}  {s:8.0f} QPS  ({s / exact_qps:5.1f}x exact)")
    for target in (0.9, 0.95):
        print(f"  at recall@10 >= {target}:")
        base = qps_at(curves.get("vectorlite HNSW", []), target)
        for name, pts in curves.items():
            s = qps_at(pts, target)
            if s is None:
                print(f"    {name:24} not reached")
                continue
            vs = f", {s / base:.2f}x vectorlite" if base and "vectorlite" not in name else ""
            print(f"    {name:24} {s:8.0f} QPS = {s / exact_qps:5.1f}x pocketvec exact{vs}")
    if png_dir:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, pts in curves.items():
            ax.plot([r for _, r, _ in pts], [s for _, _, s in pts], marker="o", label=name)
        ax.axhline(exact_qps, color="gray", linestyle="--", label="pocketvec exact (flat)")
        ax.set_xlabel("recall@10")
        ax.set_ylabel("queries per second (log)")
        ax.set_yscale("log")
        ax.set_title(f"{tag}: {n} x {d}, cosine, single-threaded")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        pathlib.Path(png_dir).mkdir(parents=True, exist_ok=True)
        out = pathlib.Path(png_dir) / f"index_ann_{tag}.png"
        fig.savefig(out, dpi=110)
        print(f"  plot: {out}")


def bulk(ext, n, workdir):
    """n x 768 in one transaction into a table with a trained IVF-PQ index,
    until caught up, against sqlite-vec."""
    import sqlite_vec

    d = 768
    rng = np.random.default_rng(3)
    centers = rng.standard_normal((100, d)).astype(np.float32)
    seed_rows = (centers[rng.integers(0, 100, 20_000)] + 0.6 * rng.standard_normal((20_000, d))).astype(np.float32)
    new = (centers[rng.integers(0, 100, n)] + 0.6 * rng.standard_normal((n, d))).astype(np.float32)
    q = new[:1] + 0.01
    res = {}
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("pocketvec IVF-PQ", "pocketvec flat", "sqlite-vec"):
        path = workdir / "bulk.db"
        for suffix in ("", "-journal", "-wal"):
            pathlib.Path(str(path) + suffix).unlink(missing_ok=True)
        con = connect(str(path), ext)
        sqlite_vec.load(con)
        if name.startswith("pocketvec"):
            con.execute("CREATE TABLE docs(id INTEGER PRIMARY KEY, vec BLOB NOT NULL)")
            con.execute("BEGIN")
            con.executemany("INSERT INTO docs VALUES(?, ?)", ((i + 1, v.tobytes()) for i, v in enumerate(seed_rows)))
            con.execute("COMMIT")
            opts = ", index=ivf, lists=256, train_min=10000" if "IVF" in name else ""
            con.execute(f"CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim={d}{opts})")
            t = time.perf_counter()
            con.execute("BEGIN")
            con.executemany("INSERT INTO docs VALUES(?, ?)",
                            ((100_000 + i, v.tobytes()) for i, v in enumerate(new)))
            con.execute("COMMIT")
            ins = time.perf_counter() - t
            extra = " AND nprobe = 8" if "IVF" in name else ""
            con.execute(f"SELECT rowid FROM ann WHERE query = ? AND k = 10{extra}", (q.tobytes(),)).fetchall()
            total = time.perf_counter() - t
            info = json.loads(con.execute("SELECT pocketvec_info('ann')").fetchone()[0])
            assert info["pending_log"] == 0 and info["rows"] == n + len(seed_rows), info
        else:
            con.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{d}] distance_metric=cosine)")
            con.execute("BEGIN")
            con.executemany("INSERT INTO v(rowid, embedding) VALUES(?, ?)",
                            ((i + 1, v.tobytes()) for i, v in enumerate(seed_rows)))
            con.execute("COMMIT")
            t = time.perf_counter()
            con.execute("BEGIN")
            con.executemany("INSERT INTO v(rowid, embedding) VALUES(?, ?)",
                            ((100_000 + i, v.tobytes()) for i, v in enumerate(new)))
            con.execute("COMMIT")
            ins = time.perf_counter() - t
            con.execute("SELECT rowid FROM v WHERE embedding MATCH ? AND k = 10", (q.tobytes(),)).fetchall()
            total = time.perf_counter() - t
        con.close()
        res[name] = (ins, total)
        path.unlink()
    print(f"\n[bulk insert: {n} x {d} f32 in one transaction into a table already holding 20,000 rows "
          f"(pocketvec IVF-PQ trained on them, 256 lists), timed until the first query returns]")
    for name, (ins, total) in res.items():
        print(f"  {name:18} insert {ins:6.2f} s, caught up {total:6.2f} s = {n / total:8.0f} rows/s")
    sv = res["sqlite-vec"][1]
    for name in ("pocketvec IVF-PQ", "pocketvec flat"):
        print(f"  {name} rate / sqlite-vec rate: {sv / res[name][1]:.2f}x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ext", default=str(ROOT / "target" / "release" / "libpocketvec0.so"))
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "debian"))
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--synthetic", type=int, default=0, help="rows of clustered synthetic data (0: skip)")
    ap.add_argument("--syn-dim", type=int, default=384)
    ap.add_argument("--bulk", type=int, default=0, help="rows for the bulk-insert test (0: skip)")
    ap.add_argument("--png-dir", default=str(ROOT / "docs" / "img"))
    ap.add_argument("--work", default=str(ROOT / ".cache" / "bench_ann"))
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved head-to-head rounds")
    a = ap.parse_args()
    if not os.path.exists(a.ext):
        sys.exit(f"{a.ext} not found: run cargo build --release -p pocketvec")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}; python sqlite3 {sqlite3.sqlite_version}")
    work = pathlib.Path(a.work)
    sets = []
    if not a.skip_real:
        x, q = load_debian(pathlib.Path(a.data), a.queries)
        sets.append(("debian", x, q))
    if a.synthetic:
        x, q = make_clustered(a.synthetic, a.syn_dim, a.queries)
        sets.append((f"synthetic{a.synthetic}", x, q))
    for tag, x, q in sets:
        n, d = x.shape
        print(f"\n== {tag}: {n} x {d}, {len(q)} queries ==")
        gt = ground_truth(x, q)
        curves, exact_qps, sizes, build, pv_con = pocketvec_curves(a.ext, x, q, gt, work, tag)
        lists = sizes["ivf_pq"]["lists"]
        vl, vl_built, vl_con = vectorlite_curve(x, q, gt)
        curves["vectorlite HNSW"] = vl
        print(f"  vectorlite HNSW (M=16, ef_construction=200) built in {vl_built:.1f} s")
        curves.update(faiss_curves(x, q, gt, lists))
        raw = n * d * 4
        for name, info in sizes.items():
            b = info["list_bytes"] + info["model_bytes"]
            print(f"  {name}: {info['lists']} lists, nprobe default {info['nprobe_default']}, "
                  f"index {b / 1e6:.1f} MB = 1/{raw / b:.1f} of the raw f32 {raw / 1e6:.1f} MB "
                  f"(lists alone 1/{raw / info['list_bytes']:.1f})")
        report(tag, curves, exact_qps, a.png_dir, n, d)
        h2h = head_to_head(pv_con, vl_con, curves, q, gt, 0.95, a.rounds)
        report_h2h(tag, h2h, 0.95, a.rounds)
        pv_con.close()
        vl_con.close()
    if a.bulk:
        bulk(a.ext, a.bulk, work)


if __name__ == "__main__":
    main()
