"""The hybrid query's building blocks, checked on a small corpus against a Python RRF."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

import pocketvec
from pocketvec import hybrid

REPO = Path(__file__).resolve().parents[2]

WORDS = ("sqlite vector search index rust python audio video image editor library tool "
         "network daemon server client game puzzle strategy font theme driver kernel").split()


def test_fts_or_query_words_and_stopwords():
    assert hybrid.fts_or_query("Ping utility for the network") == '"ping" OR "utility" OR "network"'
    # only stopwords: keep them rather than match nothing
    assert hybrid.fts_or_query("to be or") == '"to" OR "be" OR "or"'
    assert hybrid.fts_or_query("a") == '"a"'
    # duplicates once, case folded, punctuation splits words like unicode61 does
    assert hybrid.fts_or_query("Real-time RTS, real time!") == '"real" OR "time" OR "rts"'
    assert hybrid.fts_or_query("Ünïcode café") == '"ünïcode" OR "café"'
    assert hybrid.fts_or_query("") == '""'
    assert hybrid.fts_or_query(" -- ** ") == '""'
    assert hybrid.fts_or_query("x", stopwords=()) == '"x"'


@pytest.fixture
def fts_conn():
    c = sqlite3.connect(":memory:")
    c.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='porter unicode61')")
    c.executemany("INSERT INTO t VALUES(?)", [("a real time strategy game",), ("NEAR AND OR NOT",)])
    yield c
    c.close()


@pytest.mark.parametrize("text", [
    'AND OR NOT NEAR', 'body: x', 'x*', '"quoted" text', "^start", "a + b", "(unbalanced",
    'NEAR(a b, 3)', "-minus", "col:umn", "''", "\\", "\x01", "日本語のテキスト",
])
def test_fts_or_query_is_never_fts5_syntax(fts_conn, text):
    # Every word is a quoted string: hostile text is searched for, never parsed.
    fts_conn.execute("SELECT rowid FROM t WHERE t MATCH ?", (hybrid.fts_or_query(text),)).fetchall()


def test_fts_or_query_random_text_never_errors(fts_conn):
    rng = np.random.default_rng(7)
    alphabet = list('abcXYZ019 "*^:()-+_.,;\'\\/\t\néü中')
    for _ in range(300):
        text = "".join(rng.choice(alphabet, rng.integers(0, 30)))
        fts_conn.execute("SELECT count(*) FROM t WHERE t MATCH ?", (hybrid.fts_or_query(text),))


def test_quote_identifier():
    assert hybrid.quote_identifier("ann") == '"ann"'
    assert hybrid.quote_identifier('my "ann"') == '"my ""ann"""'
    with pytest.raises(ValueError):
        hybrid.quote_identifier("a\x00b")


def _corpus(conn, rng, ann: str, fts: str, n: int = 400, dim: int = 16):
    docs = [" ".join(rng.choice(WORDS, rng.integers(3, 12))) for _ in range(n)]
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    qa, qf = hybrid.quote_identifier(ann), hybrid.quote_identifier(fts)
    conn.execute("CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT, vec BLOB)")
    conn.executemany("INSERT INTO docs VALUES(?, ?, ?)",
                     [(i + 1, d, pocketvec.serialize_f32(v)) for i, (d, v) in enumerate(zip(docs, vecs))])
    conn.execute(f"CREATE VIRTUAL TABLE {qf} USING fts5(body, content='docs', content_rowid='id')")
    conn.execute(f"INSERT INTO {qf}({qf}) VALUES('rebuild')")
    conn.execute(f"CREATE VIRTUAL TABLE {qa} USING pocketvec(base_table=docs, dim={dim})")
    return docs, vecs


def _reference(conn, ann, fts, qvec, text, rrf_k, w_text, w_vec, depth, limit):
    """RRF from two independent rankings: FTS5 bm25 and numpy exact cosine."""
    qf = hybrid.quote_identifier(fts)
    rows = conn.execute(f"SELECT rowid, rank FROM {qf} WHERE {qf} MATCH ? ORDER BY rank LIMIT ?",
                        (hybrid.fts_or_query(text), depth)).fetchall()
    text_ids = [i for i, _ in sorted(rows, key=lambda r: (r[1], r[0]))]
    # the vector list is the extension's own (test_numpy checks it against numpy)
    rows = conn.execute(f"SELECT rowid, distance FROM {hybrid.quote_identifier(ann)} "
                        "WHERE query = ? AND k = ?", (pocketvec.serialize_f32(qvec), depth)).fetchall()
    vec_ids = [i for i, _ in sorted(rows, key=lambda r: (r[1], r[0]))]
    score: dict = {}
    for r, i in enumerate(text_ids, 1):
        score[i] = score.get(i, 0.0) + w_text / (rrf_k + r)
    for r, i in enumerate(vec_ids, 1):
        score[i] = score.get(i, 0.0) + w_vec / (rrf_k + r)
    best = sorted(score, key=lambda i: (-score[i], i))[:limit]
    return [(i, score[i], vec_ids.index(i) + 1 if i in vec_ids else None,
             text_ids.index(i) + 1 if i in text_ids else None) for i in best]


@pytest.mark.parametrize("names", [("ann", "docs_fts"), ('my "ann"', "docs fts")])
@pytest.mark.parametrize("params", [
    {},  # the package defaults
    {"rrf_k": 60, "w_text": 1, "w_vec": 1, "depth": 100},  # integers: no integer division
    {"rrf_k": 0.5, "w_text": 0.3, "w_vec": 2.0, "depth": 7},
])
def test_search_equals_reference_rrf(conn, rng, names, params):
    ann, fts = names
    docs, vecs = _corpus(conn, rng, ann, fts)
    full = dict(hybrid.DEFAULTS, **params)
    for _ in range(15):
        qvec = rng.standard_normal(vecs.shape[1]).astype(np.float32)
        text = " ".join(rng.choice(WORDS, 3))
        got = hybrid.search(conn, pocketvec.serialize_f32(qvec), text, limit=10,
                            ann=ann, fts=fts, **params)
        want = _reference(conn, ann, fts, qvec, text, limit=10, **full)
        assert [g[0] for g in got] == [w[0] for w in want]
        assert [g[2:] for g in got] == [w[2:] for w in want]
        np.testing.assert_allclose([g[1] for g in got], [w[1] for w in want], rtol=1e-12)
        assert all(g[1] > 0 for g in got)


def test_search_rejects_unknown_parameters(conn):
    with pytest.raises(TypeError, match="unknown hybrid parameter"):
        hybrid.search(conn, b"", "x", rrf=3)


def test_readme_shows_the_query_the_package_runs():
    fragment = (REPO / "README.md").read_text()
    assert hybrid.rrf_sql() in fragment
    for key, value in hybrid.DEFAULTS.items():
        assert f"{key}={value:g}" in fragment, key


@pytest.mark.parametrize("driver", ["apsw", "sqlean"])
def test_search_on_other_drivers(rng, driver):
    """The same statement runs on apsw's and sqlean's own (newer) SQLite builds."""
    mod = pytest.importorskip(driver)
    c = mod.Connection(":memory:") if driver == "apsw" else mod.connect(":memory:")
    pocketvec.load(c)
    _corpus(c, rng, "ann", "docs_fts")
    for _ in range(5):
        qvec = rng.standard_normal(16).astype(np.float32)
        text = " ".join(rng.choice(WORDS, 3))
        got = hybrid.search(c, pocketvec.serialize_f32(qvec), text, limit=10)
        want = _reference(c, "ann", "docs_fts", qvec, text, limit=10, **hybrid.DEFAULTS)
        assert [g[:1] + g[2:] for g in got] == [w[:1] + w[2:] for w in want]
    c.close()
