"""Runs the seed README's demo (examples/seed_demo.py) verbatim and checks it.

Checks, against numpy:
  1. the printed rows are the exact top-5 by cosine distance (1 - cos);
  2. after an added commit() (the seed itself never commits: Python 3.11's
     sqlite3 keeps its INSERTs in an open transaction), closing and
     reopening demo.db gives the same answer from the stored table;
  3. pocketvec_set_q returned the dimension and a second connection does
     not see the first one's query vector.

Usage (from the repository root, after `cargo build --release`):
    .venv/bin/python examples/seed_demo_check.py
POCKETVEC_EXT=/path/to/libpocketvec0.so overrides the library path (the
demo's one literal path is replaced, nothing else).
"""

import os
import pathlib
import sqlite3
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "seed_demo.py"
SEED_PATH = "target/release/libpocketvec0.so"


def check_top5(rows, vecs, q, what):
    # Exact reference in float64.
    d = 1.0 - vecs.astype(np.float64) @ q.astype(np.float64) / (
        np.linalg.norm(vecs.astype(np.float64), axis=1) * np.linalg.norm(q.astype(np.float64))
    )
    order = np.lexsort((np.arange(len(d)), d))[:5]
    want = [(int(i) + 1, float(d[i])) for i in order]
    got_ids = [r[0] for r in rows]
    assert len(rows) == 5, f"{what}: expected 5 rows, got {rows}"
    for (gid, gd), (wid, wd) in zip(rows, want):
        assert abs(gd - wd) < 1e-5, f"{what}: got {rows}, numpy says {want}"
        # A different id at the same rank is only acceptable for a tie.
        if gid != wid:
            assert abs(d[gid - 1] - wd) < 1e-6, f"{what}: got {rows}, numpy says {want}"
    assert len(set(got_ids)) == 5, f"{what}: duplicate ids {rows}"
    print(f"ok: {what} matches numpy's exact top-5")


def main():
    os.chdir(ROOT)
    for suffix in ("", "-journal", "-wal", "-shm"):
        pathlib.Path("demo.db" + suffix).unlink(missing_ok=True)
    source = DEMO.read_text()
    ext = os.environ.get("POCKETVEC_EXT")
    if ext:
        assert source.count(SEED_PATH) == 1
        source = source.replace(SEED_PATH, ext)
    if not pathlib.Path(ext or SEED_PATH).exists():
        sys.exit(f"{ext or SEED_PATH} not found: run `cargo build --release` first")

    demo = {"__name__": "__seed_demo__"}
    exec(compile(source, str(DEMO), "exec"), demo)  # the seed demo, verbatim

    con, vecs, q, rows = demo["con"], demo["vecs"], demo["q"], demo["rows"]
    check_top5(rows, vecs, q, "seed demo")
    dim = con.execute("SELECT pocketvec_set_q(?)", (demo["f32_blob"](q),)).fetchone()[0]
    assert dim == 128, dim

    # A second connection has no query vector of its own yet.
    other = sqlite3.connect(":memory:")
    other.enable_load_extension(True)
    other.load_extension(demo["EXT"])
    other.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, vec BLOB)")
    other.execute("CREATE VIRTUAL TABLE a USING pocketvec(base_table=t, dim=128)")
    try:
        other.execute("SELECT rowid FROM a LIMIT 1").fetchall()
        raise AssertionError("second connection saw the first one's query vector")
    except sqlite3.OperationalError as e:
        assert "has no query vector" in str(e), e
    other.close()

    # The added commit(), then reopen.
    con.commit()
    con.close()
    con = sqlite3.connect("demo.db")
    con.enable_load_extension(True)
    con.load_extension(demo["EXT"])
    n = con.execute("SELECT count(*) FROM docs_vecs").fetchone()[0]
    assert n == 1000, n
    con.execute("SELECT pocketvec_set_q(?)", (demo["f32_blob"](q),))
    again = con.execute("SELECT rowid, distance FROM ann ORDER BY distance LIMIT 5").fetchall()
    assert again == rows, (again, rows)
    check_top5(again, vecs, q, "reopened demo.db")
    con.close()
    print("seed demo: all checks passed")


if __name__ == "__main__":
    main()
