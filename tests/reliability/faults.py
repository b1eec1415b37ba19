"""Fault injection (issue 7): a workload through an apsw VFS that fails I/O
at chosen points.

Fault kinds: a failed read (SQLITE_IOERR in xRead), write (xWrite), sync
(xSync), truncate (xTruncate), a full disk (SQLITE_FULL in xWrite) and
SQLITE_BUSY (xLock). A dry run counts the calls of each kind the workload
makes; then, for each journal mode (DELETE and WAL) and kind, the workload
is re-run on a fresh database once per call index (every index with --all,
else an even sample of --points per kind), the fault arming at that call
and persisting until the statement returns. At every point where the fault
fired:
  - the statement (or transaction) fails with an error, or, for a query,
    returns exactly the brute-force answer (a fault SQLite absorbed);
  - a failed write unit changed nothing (the base table equals its state
    before the unit);
  - once the fault is gone, `PRAGMA integrity_check` is ok, the unit
    succeeds when retried, and a k-NN query over every pocketvec table
    equals brute force over the base table (f64), on the same connection and
    on a freshly opened one.
Prints the number of fault points tried per kind; exit status 1 on failure.

    .venv/bin/python tests/reliability/faults.py            # sampled (make test)
    .venv/bin/python tests/reliability/faults.py --all      # every call (check-deep)

pocketvec is loaded only into apsw connections (apsw bundles its own
SQLite, and the extension keeps the first SQLite routines table it sees in
a process).
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

import apsw
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import blob, brute_force, check_knn, distances, ext_path, unblob  # noqa: E402

DIM = 48
METRIC = "l2"
VFS_NAME = "pocketvec-faults"
KINDS = {
    "read": ("xRead", apsw.IOError),
    "write": ("xWrite", apsw.IOError),
    "sync": ("xSync", apsw.IOError),
    "truncate": ("xTruncate", apsw.IOError),
    "full": ("xWrite", apsw.FullError),
    "busy": ("xLock", apsw.BusyError),
}
# Extra vtab variants tried at setup; skipped when the build rejects them.
VARIANTS = [("ann", ""), ("ann_flat", "index=flat"), ("ann_ivf", "index=ivf, lists=4, nprobe=4")]


class Faults:
    def __init__(self):
        self.counts = {}
        self.kind = None  # armed kind
        self.at = -1
        self.fired = False
        self.active = False  # counting only inside workload units

    def hit(self, method):
        if not self.active:
            return
        n = self.counts.get(method, 0)
        self.counts[method] = n + 1
        if self.kind is not None:
            m, exc = KINDS[self.kind]
            if m == method and n >= self.at:
                self.fired = True
                raise exc(f"injected {self.kind} fault")

    def arm(self, kind, at):
        self.kind, self.at, self.fired = kind, at, False

    def disarm(self):
        self.kind = None


F = Faults()


class FaultFile(apsw.VFSFile):
    def __init__(self, base, name, flags):
        super().__init__(base, name, flags)

    def xRead(self, amount, offset):
        F.hit("xRead")
        return super().xRead(amount, offset)

    def xWrite(self, data, offset):
        F.hit("xWrite")
        return super().xWrite(data, offset)

    def xSync(self, flags):
        # counted and failed like the others, but not passed down: the test
        # is about errors, not power loss, and fsync would dominate its time
        F.hit("xSync")

    def xTruncate(self, size):
        F.hit("xTruncate")
        return super().xTruncate(size)

    def xLock(self, level):
        F.hit("xLock")
        return super().xLock(level)


class FaultVFS(apsw.VFS):
    def __init__(self):
        super().__init__(VFS_NAME, "")

    def xOpen(self, name, flags):
        return FaultFile("", name, flags)


def connect(path, ext):
    c = apsw.Connection(path, vfs=VFS_NAME)
    c.enable_load_extension(True)
    c.load_extension(ext)
    # a tiny page cache, so queries (pocketvec's scans included) read pages
    # through the VFS instead of memory
    c.execute("PRAGMA cache_size=2")
    return c


def base_rows(c):
    if not c.execute("SELECT 1 FROM sqlite_schema WHERE name = 'docs'").fetchall():
        return []
    return sorted((r, bytes(b) if b is not None else None) for r, b in c.execute("SELECT rowid, vec FROM docs"))


def check_index(c, tables, what):
    """Each exact pocketvec table equals brute force over the base table."""
    snap = [(r, unblob(b, DIM)) for r, b in base_rows(c)]
    snap = [(r, v) for r, v in snap if v is not None]
    byid = dict(snap)
    q = np.random.default_rng(len(snap)).standard_normal(DIM).astype(np.float32)
    for name, exact in tables:
        got = [(r, d) for r, d in c.execute(
            f"SELECT rowid, distance FROM {name} WHERE query = ? AND k = 1000 ORDER BY distance", (blob(q),))]
        if exact:
            check_knn(got, brute_force(METRIC, q, snap, 1000),
                      lambda r: float(distances(METRIC, q, byid[r][None, :])[0]) if r in byid else None,
                      1e-3, f"{what}: {name}")


def workload(mode, tables_opts):
    """The workload as units: (label, kind, fn(conn)); kind 'w' = write unit
    (atomic), 'q' = query (returns rows, checked), 's' = schema."""
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((400, DIM)).astype(np.float32)
    units = [("journal_mode", "s", lambda c: c.execute(f"PRAGMA journal_mode={mode}").fetchall()),
             ("create docs", "w", lambda c: c.execute("CREATE TABLE docs(rowid INTEGER PRIMARY KEY, vec BLOB)"))]

    def txn(sqls):
        def run(c):
            c.execute("BEGIN IMMEDIATE")
            for sql, p in sqls:
                c.execute(sql, p)
            c.execute("COMMIT")
        return run

    units.append(("insert 200", "w", txn([("INSERT INTO docs VALUES (?, ?)", (i + 1, blob(vecs[i]))) for i in range(200)])))
    for name, opts in tables_opts:
        o = f"base_table=docs, dim={DIM}, metric={METRIC}" + (f", {opts}" if opts else "")
        units.append((f"create {name}", "w", lambda c, name=name, o=o: c.execute(f"CREATE VIRTUAL TABLE {name} USING pocketvec({o})")))
    for i in range(4):
        q = rng.standard_normal(DIM).astype(np.float32)
        units.append((f"query {i}", "q", q))
        lo = 200 + 50 * i
        units.append((f"insert {lo}..{lo + 50}", "w",
                      txn([("INSERT INTO docs VALUES (?, ?)", (j + 1, blob(vecs[j]))) for j in range(lo, lo + 50)])))
        units.append((f"update {i}", "w", txn([("UPDATE docs SET vec = ? WHERE rowid = ?", (blob(-vecs[j]), j + 1))
                                               for j in range(i, 400, 7)])))
        units.append((f"delete {i}", "w", lambda c, i=i: c.execute("DELETE FROM docs WHERE rowid % 11 = ?", (i,))))
    units.append(("vacuum", "w", lambda c: c.execute("VACUUM")))
    units.append(("checkpoint", "s", lambda c: c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()))
    units.append(("query last", "q", rng.standard_normal(DIM).astype(np.float32)))
    return units


def run_query(c, tables, q):
    out = {}
    for name, _ in tables:
        out[name] = [(r, d) for r, d in c.execute(
            f"SELECT rowid, distance FROM {name} WHERE query = ? AND k = 15 ORDER BY distance", (blob(q),))]
    return out


def check_query(c, tables, q, got, what):
    snap = [(r, unblob(b, DIM)) for r, b in base_rows(c)]
    snap = [(r, v) for r, v in snap if v is not None]
    byid = dict(snap)
    for name, exact in tables:
        if exact and name in got:
            check_knn(got[name], brute_force(METRIC, q, snap, 15),
                      lambda r: float(distances(METRIC, q, byid[r][None, :])[0]) if r in byid else None,
                      1e-3, f"{what}: {name}")


def run_workload(path, ext, mode, tables_opts, exact_of, fault=None, stats=None):
    """Runs the workload; with fault=(kind, at) arms it before the first unit.
    Returns the VFS call counts (dry run) or whether the fault fired."""
    c = connect(path, ext)
    F.counts = {}
    tables = []
    fired_at = None
    for label, kind, fn in workload(mode, tables_opts):
        before = base_rows(c) if kind == "w" and label != "create docs" else None
        if fault and fired_at is None:
            F.arm(*fault)
        F.active = True
        err = None
        try:
            if kind == "q":
                got = run_query(c, tables, fn)
            else:
                fn(c)
        except apsw.Error as e:
            err = e
        F.active = False
        F.disarm()
        fired = fault and fired_at is None and F.fired
        if fired:
            fired_at = label
            what = f"{mode} {fault[0]}@{fault[1]} in '{label}'"
            if err is None:
                if kind == "q":
                    stats["absorbed"] += 1
                    check_query(c, tables, fn, got, what + " (absorbed)")
                elif kind == "w":
                    # SQLite absorbed the fault (e.g. a retried lock): the
                    # unit must then have fully happened
                    stats["absorbed"] += 1
            else:
                stats["errors"] += 1
                if c.in_transaction:
                    try:
                        c.execute("ROLLBACK")
                    except apsw.Error:
                        pass
            ok = c.execute("PRAGMA integrity_check").fetchall()
            assert ok == [("ok",)], f"{what}: integrity_check {ok}"
            if err is not None and before is not None:
                after = base_rows(c)
                assert after == before, f"{what}: failed unit changed the base table ({len(before)} -> {len(after)} rows)"
            check_index(c, tables, what + " (after fault)")
            if err is not None:
                # the fault is gone: the same unit now succeeds
                if kind == "q":
                    got = run_query(c, tables, fn)
                else:
                    fn(c)
        elif err is not None:
            raise AssertionError(f"{mode} '{label}' failed without a fault: {err}")
        if label.startswith("create ann"):
            name = label.split()[1]
            tables.append((name, exact_of[name]))
        if kind == "q":
            check_query(c, tables, fn, got, f"{mode} '{label}'")
    check_index(c, tables, f"{mode} end of workload")
    c.close()
    if fault:
        # a fresh connection (hot journal / WAL recovery) sees a sound database
        c = connect(path, ext)
        ok = c.execute("PRAGMA integrity_check").fetchall()
        assert ok == [("ok",)], f"reopen after {fault}: {ok}"
        check_index(c, tables, f"{mode} {fault} reopened")
        c.close()
        return fired_at
    return dict(F.counts)


def supported_variants(ext, tmp):
    c = connect(os.path.join(tmp, "probe.db"), ext)
    c.execute("CREATE TABLE docs(rowid INTEGER PRIMARY KEY, vec BLOB)")
    out = []
    for name, opts in VARIANTS:
        o = f"base_table=docs, dim={DIM}" + (f", {opts}" if opts else "")
        try:
            c.execute(f"CREATE VIRTUAL TABLE {name} USING pocketvec({o})")
            out.append((name, opts))
        except apsw.Error as e:
            print(f"faults: skipping {name} ({opts}): {e}")
    c.close()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--all", action="store_true", help="every call index of every kind")
    ap.add_argument("--points", type=int, default=25, help="sampled call indexes per mode and kind")
    a = ap.parse_args()
    ext = ext_path()
    FaultVFS_instance = FaultVFS()  # noqa: F841 (registered while alive)
    tmp = tempfile.mkdtemp(prefix="pocketvec-faults-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    t0 = time.time()
    tables_opts = supported_variants(ext, tmp)
    exact_of = {n: "ivf" not in o for n, o in tables_opts}
    total = 0
    failures = []
    stats = {"errors": 0, "absorbed": 0}
    run = 0
    for mode in ("DELETE", "WAL"):
        path = os.path.join(tmp, f"dry-{mode}.db")
        counts = run_workload(path, ext, mode, tables_opts, exact_of)
        line = []
        for kind, (method, _) in KINDS.items():
            n = counts.get(method, 0)
            idx = range(n) if a.all or n <= a.points else sorted({int(i) for i in np.linspace(0, n - 1, a.points)})
            tried = 0
            for i in idx:
                run += 1
                p = os.path.join(tmp, f"r{run}.db")
                try:
                    if run_workload(p, ext, mode, tables_opts, exact_of, (kind, i), stats) is not None:
                        tried += 1
                except AssertionError as e:
                    tried += 1
                    failures.append(str(e))
                for suffix in ("", "-journal", "-wal", "-shm"):
                    if os.path.exists(p + suffix):
                        os.remove(p + suffix)
            total += tried
            line.append(f"{kind} {tried}/{n}")
        print(f"faults: {mode}: points tried / calls: " + ", ".join(line))
    print(f"faults: {total} fault points tried ({stats['errors']} statements failed with an error, "
          f"{stats['absorbed']} faults absorbed by SQLite with a correct result), tables "
          + ", ".join(n for n, _ in tables_opts) + f", {time.time() - t0:.1f} s")
    for f in failures[:20]:
        print("faults: FAIL", f)
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if failures or total == 0 else 0)


if __name__ == "__main__":
    main()
