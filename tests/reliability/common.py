"""Shared helpers for the reliability tests (soak, faults, injection).

Brute-force references are computed in float64 with numpy from the base
table rows the test itself read.
"""
import os
import pathlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]


def ext_path():
    """The loadable extension: $POCKETVEC_EXT or target/release/libpocketvec0.so."""
    p = os.environ.get("POCKETVEC_EXT") or str(ROOT / "target" / "release" / "libpocketvec0.so")
    if not os.path.exists(p):
        raise SystemExit(f"extension not found at {p}: build it (make build) or set POCKETVEC_EXT")
    return os.path.abspath(p)


def blob(v):
    return np.asarray(v, dtype="<f4").tobytes()


def unblob(b, dim):
    if b is None or len(b) != dim * 4:
        return None
    v = np.frombuffer(b, dtype="<f4")
    return v if np.all(np.isfinite(v)) else None


def distances(metric, q, m):
    """f64 distances from q (dim,) to each row of m (n, dim); smaller = nearer."""
    q = np.asarray(q, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64).reshape(-1, q.shape[0])
    if metric == "l2":
        return np.sqrt(((m - q) ** 2).sum(axis=1))
    dot = m @ q
    if metric == "dot":
        return -dot
    nq = np.linalg.norm(q)
    nm = np.linalg.norm(m, axis=1)
    den = nq * nm
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(den > 0, dot / np.where(den > 0, den, 1), 0.0)
    return 1.0 - np.clip(cos, -1.0, 1.0)


def brute_force(metric, q, rows, k, keep=None):
    """[(rowid, distance)] of the k nearest, ties by rowid; rows = [(rowid, vec)]."""
    rows = [(r, v) for r, v in rows if keep is None or keep(r)]
    if not rows:
        return []
    ids = np.array([r for r, _ in rows], dtype=np.int64)
    d = distances(metric, q, np.stack([v for _, v in rows]))
    order = np.lexsort((ids, d))[:k]
    return [(int(ids[i]), float(d[i])) for i in order]


def check_knn(got, expected, ref, eps, what):
    """got/expected: [(rowid, distance)]; ref: rowid -> f64 distance or None.
    Positions may differ only between rows whose reference distances are
    within eps (f32 kernels vs the f64 reference). Raises AssertionError."""
    if len(got) != len(expected):
        raise AssertionError(f"{what}: {len(got)} rows, expected {len(expected)}\n got {got}\n expected {expected}")
    seen = set()
    for i, ((rowid, d), (_, ed)) in enumerate(zip(got, expected)):
        if rowid in seen:
            raise AssertionError(f"{what}: rowid {rowid} twice")
        seen.add(rowid)
        rd = ref(rowid)
        if rd is None:
            raise AssertionError(f"{what}: rowid {rowid} is not in the snapshot")
        if abs(d - rd) > eps:
            raise AssertionError(f"{what}: rowid {rowid} distance {d}, reference {rd}")
        if abs(rd - ed) > eps:
            raise AssertionError(f"{what}: position {i} holds rowid {rowid} ({rd}), expected distance {ed}\n got {got}\n expected {expected}")
