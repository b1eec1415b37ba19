"""Concurrency soak (issue 7): WAL mode, several threads AND processes, each
with its own connection, for a fixed time.

Writers insert, update and delete in transactions (about one in five rolled
back). Readers open a read transaction (BEGIN), read the whole base table,
then query each pocketvec table in the same transaction; every exact result
must equal brute force (f64) over the rows that transaction saw. IVF tables
(index=ivf, int8 and PQ codes, trained at setup) are queried at nprobe = all
lists, which must be exact like the others, and at nprobe = NPROBE (1 of 8
lists): every returned row must exist in the snapshot with its exact
distance, ascending, and recall@k against brute force over the same snapshot
is recorded; each IVF table's mean recall must reach RECALL_FLOOR. The data
are clustered (CENTERS centres, writers draw from the same mixture), and
queries are new points near the centres.
SQLITE_BUSY / "database is locked" is retried; any other error fails the run;
a worker that does not finish in time is a deadlock and fails the run.

    .venv/bin/python tests/reliability/soak.py --duration 20
    POCKETVEC_EXT=path/to/libpocketvec0.so ... --duration 300 --procs 3

Prints ops/s and the number of checks; exit status 1 on any failure.
"""
import argparse
import multiprocessing as mp
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import blob, brute_force, check_knn, distances, ext_path, unblob  # noqa: E402

DIM = 16
METRIC = "cosine"
LISTS = 8
NPROBE = 1
NOISE = 0.7
CENTERS = 24
# Recall@k at nprobe = NPROBE of LISTS on this clustered data, pooled over
# the run's queries (true neighbours found / true neighbours asked for;
# measured over 15-20 s runs: int8 0.95, pq 0.98; the floors leave room for
# the few dozen queries per table of the quick run).
RECALL_FLOOR = {"ann_ivf": 0.85, "ann_ivfpq": 0.8}
# name, extra options, exact?  Tried in order at setup; a variant whose
# options the build rejects is skipped with a message. IVF tables are exact
# at nprobe = LISTS and approximate below.
VARIANTS = [
    ("ann", "", True),
    ("ann_none", "index=none", True),
    ("ann_flat", "index=flat", True),
    ("ann_cache", "index=flat, cache=1", True),
    ("ann_ivf", f"index=ivf, lists={LISTS}, quantizer=int8", False),
    ("ann_ivfpq", f"index=ivf, lists={LISTS}, quantizer=pq, pq_m=8", False),
]
_CENTERS = np.random.default_rng(99).standard_normal((CENTERS, DIM))


def clustered(rng_np, n=None):
    """Points of the mixture: a random centre plus noise (NOISE per axis)."""
    m = 1 if n is None else n
    v = _CENTERS[rng_np.integers(0, CENTERS, m)] + NOISE * rng_np.standard_normal((m, DIM))
    return v[0] if n is None else v
BUSY = ("database is locked", "database table is locked", "database schema is locked", "busy")


def is_busy(e):
    return isinstance(e, sqlite3.OperationalError) and any(s in str(e).lower() for s in BUSY)


def connect(db, ext):
    c = sqlite3.connect(db, isolation_level=None, check_same_thread=True, timeout=0.05)
    c.enable_load_extension(True)
    c.load_extension(ext)
    c.enable_load_extension(False)
    return c


def retry(stats, fn):
    """Runs fn() until it does not fail with SQLITE_BUSY; returns its value."""
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if not is_busy(e):
                raise
            stats["busy_retries"] += 1
            time.sleep(random.random() * 0.005)


def writer(c, rng, stats, deadline, id_base):
    next_id = id_base
    while time.time() < deadline:
        ops = []
        for _ in range(rng.randint(1, 8)):
            r = rng.random()
            if r < 0.45:
                next_id += 1
                ops.append(("INSERT INTO docs(rowid, vec) VALUES (?, ?)",
                            (next_id, blob(clustered(np.random.default_rng(next_id))))))
            elif r < 0.75:
                ops.append(("UPDATE docs SET vec = ? WHERE rowid = (SELECT rowid FROM docs WHERE rowid >= ? ORDER BY rowid LIMIT 1)",
                            (blob(clustered(np.random.default_rng(rng.getrandbits(32)))), rng.randint(1, next_id))))
            elif r < 0.95:
                ops.append(("DELETE FROM docs WHERE rowid = (SELECT rowid FROM docs WHERE rowid >= ? ORDER BY rowid LIMIT 1)",
                            (rng.randint(1, next_id),)))
            else:
                ops.append(("UPDATE docs SET vec = NULL WHERE rowid = ?", (rng.randint(1, next_id),)))
        rollback = rng.random() < 0.2

        def txn():
            c.execute("BEGIN IMMEDIATE")
            try:
                for sql, p in ops:
                    c.execute(sql, p)
                c.execute("ROLLBACK" if rollback else "COMMIT")
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise

        retry(stats, txn)
        stats["write_ops"] += len(ops)
        stats["rollbacks" if rollback else "commits"] += 1


STALE = False  # --stale-snapshot: a test of the test (see main)


def reader(c, rng, stats, deadline, tables):
    while time.time() < deadline:
        q = clustered(np.random.default_rng(rng.getrandbits(32))).astype(np.float32)
        k = rng.randint(1, 25)
        lo = rng.choice([None, None, rng.randint(1, 3000)])
        name, _, exact = rng.choice(tables)
        # IVF: every list (exact) or NPROBE lists (approximate, recall).
        nprobe = None if exact else rng.choice([LISTS, NPROBE, NPROBE])

        def txn():
            c.execute("BEGIN")
            try:
                snap = []
                for rowid, b in c.execute("SELECT rowid, vec FROM docs"):
                    v = unblob(b, DIM)
                    if v is not None:
                        snap.append((rowid, v))
                if STALE:
                    c.execute("COMMIT")
                    time.sleep(0.02)
                    c.execute("BEGIN")
                sql = f"SELECT rowid, distance FROM {name} WHERE query = ? AND k = ?"
                params = [blob(q), k]
                if lo is not None:
                    sql += " AND rowid >= ?"
                    params.append(lo)
                if nprobe is not None:
                    sql += " AND nprobe = ?"
                    params.append(nprobe)
                got = c.execute(sql + " ORDER BY distance", params).fetchall()
                c.execute("COMMIT")
                return snap, got
            except BaseException:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                raise

        snap, got = retry(stats, txn)
        stats["queries"] += 1
        keep = (lambda r: r >= lo) if lo is not None else None
        byid = dict(snap)
        eps = 1e-4

        def ref(r):
            v = byid.get(r)
            if v is None or (keep and not keep(r)):
                return None
            return float(distances(METRIC, q, v[None, :])[0])

        what = f"{name} k={k} lo={lo} nprobe={nprobe} ({len(snap)} rows in snapshot)"
        expected = brute_force(METRIC, q, snap, k, keep)
        if exact or nprobe == LISTS:
            check_knn(got, expected, ref, eps, what)
            stats["exact_checks" if exact else "ivf_exact_checks"] += 1
        else:
            if len(got) > k:
                raise AssertionError(f"{what}: {len(got)} rows > k")
            for rowid, d in got:
                rd = ref(rowid)
                if rd is None or abs(rd - d) > eps:
                    raise AssertionError(f"{what}: rowid {rowid} distance {d} vs snapshot {rd} (stale?)")
            if [d for _, d in got] != sorted(d for _, d in got):
                raise AssertionError(f"{what}: not ascending")
            stats["approx_checks"] += 1
            # recall@k: true neighbours found (ties at the k-th distance
            # count as found)
            if expected:
                kth = expected[-1][1]
                truth = {r for r, _ in expected}
                hit = sum(1 for r, d in got if r in truth or ref(r) <= kth + eps)
                stats[f"recall_hit_{name}"] = stats.get(f"recall_hit_{name}", 0) + hit
                stats[f"recall_of_{name}"] = stats.get(f"recall_of_{name}", 0) + len(expected)
                stats[f"recall_n_{name}"] = stats.get(f"recall_n_{name}", 0) + 1
        stats["rows_checked"] += len(got)


def worker(role, idx, db, ext, deadline, tables, seed, out):
    global STALE
    STALE = os.environ.get("POCKETVEC_SOAK_STALE") == "1"
    stats = dict(write_ops=0, commits=0, rollbacks=0, queries=0, exact_checks=0, ivf_exact_checks=0,
                 approx_checks=0, rows_checked=0, busy_retries=0, errors=[])
    try:
        c = connect(db, ext)
        rng = random.Random(seed)
        if role == "w":
            writer(c, rng, stats, deadline, 1_000_000 * (idx + 1))
        else:
            reader(c, rng, stats, deadline, tables)
        c.close()
    except BaseException:
        stats["errors"].append(f"{role}{idx}: {traceback.format_exc()}")
    out.put(stats)


def process_main(pidx, roles, db, ext, deadline, tables, seed, out):
    """One process: its workers as threads (each with its own connection)."""
    q = __import__("queue").Queue()
    ts = [threading.Thread(target=worker, args=(r, pidx * 100 + i, db, ext, deadline, tables, seed + i, q))
          for i, r in enumerate(roles)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    while not q.empty():
        out.put(q.get())


def setup(db, ext, n):
    c = connect(db, ext)
    assert c.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    c.execute("CREATE TABLE docs(rowid INTEGER PRIMARY KEY, vec BLOB)")
    rng = np.random.default_rng(7)
    with c:
        c.execute("BEGIN")
        c.executemany("INSERT INTO docs VALUES (?, ?)",
                      [(i + 1, blob(v)) for i, v in enumerate(clustered(rng, n))])
    tables = []
    for name, opts, exact in VARIANTS:
        o = f"base_table=docs, dim={DIM}, metric={METRIC}" + (f", {opts}" if opts else "")
        try:
            c.execute(f"CREATE VIRTUAL TABLE {name} USING pocketvec({o})")
            if not exact:
                info = c.execute("SELECT pocketvec_info(?)", (name,)).fetchone()[0]
                assert '"trained":true' in info, f"{name} did not train at setup: {info}"
            tables.append((name, opts, exact))
        except sqlite3.Error as e:
            print(f"soak: skipping {name} ({opts}): {e}")
    c.close()
    return tables


def final_check(db, ext, tables):
    c = connect(db, ext)
    assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    snap = [(r, unblob(b, DIM)) for r, b in c.execute("SELECT rowid, vec FROM docs")]
    snap = [(r, v) for r, v in snap if v is not None]
    rng = np.random.default_rng(1)
    n = 0
    for name, _, exact in tables:
        for _ in range(5):
            q = clustered(rng).astype(np.float32)
            got = c.execute(f"SELECT rowid, distance FROM {name} WHERE query = ? AND k = 50"
                            + ("" if exact else f" AND nprobe = {LISTS}") + " ORDER BY distance",
                            (blob(q),)).fetchall()
            byid = dict(snap)
            check_knn(got, brute_force(METRIC, q, snap, 50), lambda r: float(distances(METRIC, q, byid[r][None, :])[0])
                      if r in byid else None, 1e-4, f"final {name}")
            n += 1
    c.close()
    return n, len(snap)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--procs", type=int, default=2, help="child processes (besides this one)")
    ap.add_argument("--roles", default="wrr", help="workers per process: w = writer thread, r = reader thread")
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--stale-snapshot", action="store_true",
                    help="test of the test: readers end their transaction between reading the base table "
                         "and querying, so checks must fail while writers run")
    a = ap.parse_args()
    if a.stale_snapshot:
        os.environ["POCKETVEC_SOAK_STALE"] = "1"
    ext = ext_path()
    tmp = tempfile.mkdtemp(prefix="pocketvec-soak-")
    db = os.path.join(tmp, "soak.db")
    tables = setup(db, ext, a.rows)
    print(f"soak: {a.duration:.0f} s, {a.procs + 1} processes x roles '{a.roles}', tables "
          + ", ".join(f"{n}({o or 'default'})" for n, o, _ in tables))
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    t0 = time.time()
    deadline = t0 + a.duration
    procs = [ctx.Process(target=process_main, args=(p + 1, a.roles, db, ext, deadline, tables, a.seed + 1000 * (p + 1), out))
             for p in range(a.procs)]
    for p in procs:
        p.start()
    local = threading.Thread(target=process_main, args=(0, a.roles, db, ext, deadline, tables, a.seed, out))
    local.start()
    nworkers = (a.procs + 1) * len(a.roles)
    results = []
    hang = False
    while len(results) < nworkers:
        try:
            results.append(out.get(timeout=max(1.0, deadline + 60 - time.time())))
        except Exception:
            hang = True
            break
    local.join(timeout=5)
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            hang = True
            p.kill()
        elif p.exitcode != 0:
            results.append({"errors": [f"process exited with {p.exitcode}"]})
    elapsed = time.time() - t0
    tot = {}
    errors = []
    for r in results:
        errors += r.pop("errors", [])
        for k, v in r.items():
            tot[k] = tot.get(k, 0) + v
    if hang:
        errors.append(f"deadlock: only {len(results)} of {nworkers} workers finished within 60 s of the deadline")
    final_checks, final_rows = (0, 0)
    if not errors:
        final_checks, final_rows = final_check(db, ext, tables)
    recall = []
    for name, _, exact in tables:
        n = tot.get(f"recall_n_{name}", 0)
        if exact:
            continue
        of = tot.get(f"recall_of_{name}", 0)
        mean = tot.get(f"recall_hit_{name}", 0) / of if of else float("nan")
        recall.append(f"{name} {mean:.3f} over {n} queries")
        floor = RECALL_FLOOR.get(name, 0.0)
        if n == 0 or not mean >= floor:
            errors.append(f"{name}: recall@k at nprobe={NPROBE} of {LISTS} lists {mean:.3f} over {n} "
                          f"queries, floor {floor}")
    ops = tot.get("write_ops", 0) + tot.get("queries", 0)
    print(f"soak: {elapsed:.1f} s, {nworkers} workers; write ops {tot.get('write_ops', 0)} "
          f"({tot.get('commits', 0)} commits, {tot.get('rollbacks', 0)} rollbacks), "
          f"queries {tot.get('queries', 0)}, ops/s {ops / elapsed:.0f}; "
          f"exact checks {tot.get('exact_checks', 0)} + {tot.get('ivf_exact_checks', 0)} IVF at nprobe=all, "
          f"IVF recall checks {tot.get('approx_checks', 0)} at nprobe={NPROBE} (recall@k "
          f"{', '.join(recall) or 'none'}), "
          f"rows checked {tot.get('rows_checked', 0)}, SQLITE_BUSY retries {tot.get('busy_retries', 0)}; "
          f"final: integrity ok, {final_checks} exact checks over {final_rows} rows")
    for e in errors:
        print("soak: FAIL", e)
    if tot.get("exact_checks", 0) == 0 and not errors:
        errors.append("no exact check ran")
        print("soak: FAIL no exact check ran")
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
