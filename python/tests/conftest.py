"""Shared fixtures for the pocketvec Python tests.

The tests exercise the *installed* package (``pip install --no-build-isolation
./python``): ``import pocketvec`` must find the bundled extension library.
"""

from __future__ import annotations

import sqlite3
from typing import Callable, Dict, List

import numpy as np
import pytest

import pocketvec

# Filled by test_hybrid_eval.py, printed at the end of the session.
EVAL_REPORT: List[str] = []


@pytest.fixture
def conn() -> sqlite3.Connection:
    c = sqlite3.connect(":memory:")
    pocketvec.load(c)
    yield c
    c.close()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240607)


def exact_cosine_topk(base: np.ndarray, query: np.ndarray, k: int):
    """Reference: the k smallest cosine distances, in float64 (ids are 0-based rows)."""
    b = base.astype(np.float64)
    q = query.astype(np.float64)
    sims = (b @ q) / (np.linalg.norm(b, axis=1) * np.linalg.norm(q))
    dist = 1.0 - sims
    order = np.argsort(dist, kind="stable")[:k]
    return order, dist[order], dist


def assert_same_knn(got: List[tuple], ref_dist_all: np.ndarray, k: int, id_offset: int = 1,
                    tol: float = 1e-5) -> None:
    """``got`` (rowid, distance) rows equal the exact top-k, robust to exact ties.

    Every returned distance must match the reference distance of that row, and
    the sorted distances must be the k smallest reference distances.
    """
    assert len(got) == k
    ids = np.array([r[0] for r in got]) - id_offset
    dists = np.array([r[1] for r in got], dtype=np.float64)
    assert len(set(ids.tolist())) == k, "duplicate rowids"
    np.testing.assert_allclose(dists, ref_dist_all[ids], atol=tol)
    assert np.all(np.diff(dists) >= -tol), "distances not ascending"
    np.testing.assert_allclose(dists, np.sort(ref_dist_all)[:k], atol=tol)


@pytest.fixture
def knn_checker() -> Callable[..., None]:
    return assert_same_knn


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    if EVAL_REPORT:
        terminalreporter.section("pocketvec hybrid search evaluation")
        for line in EVAL_REPORT:
            terminalreporter.write_line(line)


def metric_table(rows: Dict[str, tuple]) -> List[str]:
    out = [f"{'ranking':<28} {'MRR@10':>8} {'recall@10':>10}"]
    for name, (mrr, rec) in rows.items():
        out.append(f"{name:<28} {mrr:>8.4f} {rec:>10.4f}")
    return out
