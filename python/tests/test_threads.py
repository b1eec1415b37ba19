"""Several threads, one connection each, querying one database at the same time."""

from __future__ import annotations

import sqlite3
import threading

import numpy as np

import pocketvec

from conftest import assert_same_knn

THREADS = 6
QUERIES_PER_THREAD = 25
DIM, N, K = 64, 3000, 8


def test_threads_with_their_own_connections(tmp_path, rng):
    db = tmp_path / "threads.db"
    base = rng.standard_normal((N, DIM)).astype(np.float32)
    setup = sqlite3.connect(db)
    pocketvec.load(setup)
    setup.execute("CREATE TABLE docs_vecs(rowid INTEGER PRIMARY KEY, vec BLOB NOT NULL)")
    setup.executemany("INSERT INTO docs_vecs VALUES(?, ?)",
                      [(i + 1, pocketvec.serialize_f32(v)) for i, v in enumerate(base)])
    setup.execute(f"CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs_vecs, dim={DIM})")
    setup.commit()
    setup.close()

    queries = rng.standard_normal((THREADS, QUERIES_PER_THREAD, DIM)).astype(np.float32)
    results: dict = {}
    errors: list = []
    barrier = threading.Barrier(THREADS)

    def worker(t: int) -> None:
        try:
            conn = sqlite3.connect(db)
            pocketvec.load(conn)
            barrier.wait()
            out = []
            for j, q in enumerate(queries[t]):
                blob = pocketvec.serialize_f32(q)
                if j % 2 == 0:
                    # Seed form: a per-connection query vector, then ORDER BY/LIMIT. The
                    # threads move in lockstep: every thread sets its vector before any
                    # thread queries, so a vector shared between connections would show.
                    (stored_dim,) = conn.execute("SELECT pocketvec_set_q(?)", (blob,)).fetchone()
                    assert stored_dim == DIM
                    barrier.wait()
                    rows = conn.execute(
                        "SELECT rowid, distance FROM ann ORDER BY distance LIMIT ?", (K,)
                    ).fetchall()
                else:
                    rows = conn.execute(
                        "SELECT rowid, distance FROM ann WHERE query = ? AND k = ?", (blob, K)
                    ).fetchall()
                out.append(rows)
            conn.close()
            results[t] = out
        except BaseException as exc:  # reported by the main thread
            errors.append((t, exc))
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not errors, errors
    assert sorted(results) == list(range(THREADS))

    b = base.astype(np.float64)
    bn = np.linalg.norm(b, axis=1)
    for t in range(THREADS):
        for j, q in enumerate(queries[t]):
            qd = q.astype(np.float64)
            ref = 1.0 - (b @ qd) / (bn * np.linalg.norm(qd))
            assert_same_knn(results[t][j], ref, K)
