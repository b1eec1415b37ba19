"""The seed README's Python demo, through the package instead of a hand-written path."""

from __future__ import annotations

import sqlite3

import numpy as np

import pocketvec

from conftest import assert_same_knn, exact_cosine_topk


def test_seed_demo_through_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.random.seed(1234)

    # --- the seed demo; only the two loading lines changed -------------------
    def f32_blob(x: np.ndarray) -> bytes:
        x = np.asarray(x, dtype=np.float32, order="C")
        return x.tobytes()

    con = sqlite3.connect("demo.db")
    pocketvec.load(con)

    # Base table
    con.execute("CREATE TABLE IF NOT EXISTS docs_vecs(rowid INTEGER PRIMARY KEY, vec BLOB NOT NULL)")

    # Insert random vectors
    D, N = 128, 1000
    vecs = np.random.randn(N, D).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    con.executemany("INSERT INTO docs_vecs(rowid, vec) VALUES(?, ?)", [(i+1, f32_blob(v)) for i,v in enumerate(vecs)])

    # Create ANN vtab
    con.execute("CREATE VIRTUAL TABLE IF NOT EXISTS ann USING pocketvec(base_table=docs_vecs, dim=128)")

    # Query
    q = np.random.randn(D).astype(np.float32)
    q /= np.linalg.norm(q)
    con.execute("SELECT pocketvec_set_q(?)", (f32_blob(q),))
    rows = con.execute("SELECT rowid, distance FROM ann ORDER BY distance LIMIT 5").fetchall()
    print(rows)
    # --------------------------------------------------------------------------

    _, _, ref = exact_cosine_topk(vecs, q, 5)
    assert_same_knn(rows, ref, 5)

    # The package's serializer gives the seed's bytes exactly.
    assert pocketvec.serialize_f32(vecs[0]) == f32_blob(vecs[0])

    # The seed never commits; with a commit the data survives a reopen.
    con.commit()
    con.close()
    con = sqlite3.connect("demo.db")
    pocketvec.load(con)
    rows2 = con.execute(
        "SELECT rowid, distance FROM ann WHERE query = ? AND k = 5", (f32_blob(q),)
    ).fetchall()
    assert [r[0] for r in rows2] == [r[0] for r in rows]
    con.close()

