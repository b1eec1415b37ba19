"""Hybrid search evaluated on real data: bm25 vs vectors vs their RRF fusion (one SQL query).

See hybrid_eval.py for the setup. The parameters are chosen on the tuning
slice; the numbers asserted and printed come from the disjoint report slice.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import hybrid_eval as he
from conftest import EVAL_REPORT, metric_table


@pytest.fixture(scope="session")
def debian(tmp_path_factory):
    path = he.data_dir()
    if not (path / "docs.txt").is_file():
        pytest.skip(f"Debian evaluation data not found at {path} (set POCKETVEC_DEBIAN_DATA)")
    corpus = he.load_corpus(path)
    db = tmp_path_factory.mktemp("hybrid") / "debian.db"
    t0 = time.perf_counter()
    he.build_database(db, corpus)
    EVAL_REPORT.append(f"database: {corpus.n} documents, built in {time.perf_counter() - t0:.1f}s")
    return corpus, db


@pytest.fixture(scope="session")
def tuned(debian):
    corpus, db = debian
    tune, _ = he.slices(corpus.n)
    lists = he.fetch_lists(db, corpus, tune, max(he.GRID["depth"]))
    grid = he.RrfGrid(lists, tune + 1)
    best, results = grid.search()
    return best, grid


def test_slices_are_disjoint_and_large_enough(debian):
    corpus, _ = debian
    tune, report = he.slices(corpus.n)
    assert len(report) >= 2000 and len(tune) >= 1000
    assert not set(tune.tolist()) & set(report.tolist())


def test_rrf_beats_bm25_and_vectors_alone(debian, tuned):
    corpus, db = debian
    best, tune_grid = tuned
    _, report = he.slices(corpus.n)
    targets = report + 1  # rowid of the relevant document

    t0 = time.perf_counter()
    rows, latency = he.fused_sql_results(db, corpus, report, dict(best, w_vec=1.0))
    elapsed = time.perf_counter() - t0

    fused, text, vec = [], [], []
    for q, r in enumerate(rows):
        f, lists = he.split_fused(r)
        fused.append(f)
        text.append(lists.text[0])
        vec.append([rowid for rowid, _ in lists.vec[0]])
        # the SQL's fusion is exactly RRF over its two lists (ties by smaller rowid)
        assert f[:10] == he.RrfGrid(lists, [targets[q]]).top(0, **best), report[q]

    depth = best["depth"]
    # each list is complete: `depth` rows (bm25 may have fewer matches)
    assert all(len(v) == depth for v in vec)
    assert all(len(t) <= depth for t in text)
    _check_vectors_against_numpy(corpus, report, vec, depth)
    _check_text_against_fts(db, corpus, report[:200], text[:200], depth)

    m = {
        "bm25 alone": he.mrr_recall(targets, text),
        "vectors alone": he.mrr_recall(targets, vec),
        "fused (RRF, one SQL query)": he.mrr_recall(targets, fused),
    }
    # For comparison only: the data README's fusion setting on the same lists.
    same_lists = he.RrfGrid(he.Lists(text, [[(i, 0.0) for i in v] for v in vec]), targets)
    readme_setting = same_lists.metrics(**he.README_RRF)
    tune_mrr, tune_rec = tune_grid.metrics(**best)
    EVAL_REPORT.extend([
        f"tuning slice ({tune_grid.nq} queries): chosen "
        + ", ".join(f"{k}={v}" for k, v in best.items())
        + f" (w_vec=1); fused MRR@10 {tune_mrr:.4f}, recall@10 {tune_rec:.4f} there",
        f"report slice ({len(report)} other queries), known-item MRR@10 and recall@10:",
        *metric_table(m),
        *metric_table({"fused, k=10, equal, top 100": readme_setting})[1:],
        f"fused query latency: median {1e3 * float(np.median(latency)):.1f} ms "
        f"(2 threads, {elapsed:.1f}s for the slice)",
    ])
    (b_mrr, b_rec), (v_mrr, v_rec), (f_mrr, f_rec) = m.values()
    # the package's defaults are the parameters chosen here
    assert {k: he.hybrid.DEFAULTS[k] for k in best} == best, (
        f"pocketvec.hybrid.DEFAULTS differ from the tuning slice's choice {best}")
    assert f_mrr > b_mrr and f_mrr > v_mrr, m
    assert f_rec > b_rec and f_rec > v_rec, m
    assert f_mrr >= readme_setting[0], (m, readme_setting)


def _check_vectors_against_numpy(corpus, queries, vec_lists, depth) -> None:
    """The vector list of each query is numpy's exact cosine top-`depth` (up to exact ties)."""
    x = corpus.doc_vecs.astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for start in range(0, len(queries), 500):
        chunk = queries[start:start + 500]
        q = corpus.query_vecs[chunk].astype(np.float64)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        dist = 1.0 - q @ x.T
        kth = np.partition(dist, depth - 1, axis=1)[:, depth - 1]
        for j in range(len(chunk)):
            ids = np.array(vec_lists[start + j]) - 1
            assert len(set(ids.tolist())) == depth
            d = dist[j, ids]
            assert np.all(np.diff(d) >= -1e-5), chunk[j]
            assert d.max() <= kth[j] + 1e-5, chunk[j]


def _check_text_against_fts(db, corpus, queries, text_lists, depth) -> None:
    """The text list inside the fused query is FTS5's own bm25 order."""
    import sqlite3

    conn = sqlite3.connect(db)
    for i, got in zip(queries, text_lists):
        match = he.hybrid.fts_or_query(corpus.queries[i])
        rows = conn.execute(he.BM25_SQL, (match, depth)).fetchall()
        want = [r[0] for r in sorted(rows, key=he._by_value_then_id)]
        assert got == want, i
    conn.close()
