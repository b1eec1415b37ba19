"""Hybrid search: FTS5 ``bm25`` and pocketvec KNN fused by reciprocal-rank fusion, in one SQL query.

The query is plain SQL (CTEs and ``row_number()``), so any language can run it;
this module only writes it out for given table names (:func:`rrf_sql`), builds
the FTS5 match expression from free text (:func:`fts_or_query`) and runs both
(:func:`search`).

Reciprocal-rank fusion: a document at rank ``r`` (1-based) in a list scores
``weight / (rrf_k + r)``; its fused score is the sum over the lists it is in,
each list cut at ``depth`` rows.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Mapping, Tuple

__all__ = ["DEFAULTS", "STOPWORDS", "fts_or_query", "quote_identifier", "rrf_sql", "search"]

#: Fusion parameters, chosen on a tuning slice of the Debian known-item queries
#: (see README.md (Python section) and python/tests/test_hybrid_eval.py), disjoint
#: from the slice whose numbers are reported.
DEFAULTS: Mapping[str, float] = {"rrf_k": 3, "depth": 200, "w_text": 1.5, "w_vec": 1.0}

#: Words left out of the OR query: they match most documents, so bm25 gives them
#: almost no weight, yet scoring every document that contains them is most of
#: the query time.
STOPWORDS = frozenset(
    "a an and are as at be by for from in into is it its of on or the this that to with".split()
)

_TOKEN = re.compile(r"\w+", re.UNICODE)


def fts_or_query(text: str, stopwords: Iterable[str] = STOPWORDS) -> str:
    """An FTS5 match expression that ORs the words of ``text``.

    Words are runs of letters, digits and ``_`` (close to FTS5's ``unicode61``
    tokenizer), lowercased, without ``stopwords`` (unless nothing else is
    left), deduplicated, each in double quotes so that no word is read as FTS5
    syntax (``AND``, ``NEAR``, ``*``, ``-``, ``column:``). Text without any word
    gives ``'""'``, which matches nothing instead of being a syntax error.
    """
    words = [w.lower() for w in _TOKEN.findall(text)]
    stop = frozenset(stopwords)
    kept = [w for w in words if w not in stop] or words
    unique = list(dict.fromkeys(kept))
    if not unique:
        return '""'
    return " OR ".join(f'"{w}"' for w in unique)


def quote_identifier(name: str) -> str:
    """``name`` as an SQL identifier in double quotes (embedded quotes doubled)."""
    if "\x00" in name:
        raise ValueError("an SQL identifier cannot contain NUL")
    return '"' + name.replace('"', '""') + '"'


def rrf_sql(ann: str = "ann", fts: str = "docs_fts") -> str:
    """The hybrid query for pocketvec table ``ann`` and FTS5 table ``fts``.

    Both index the same rowids. Named parameters: ``:vec`` (query vector, f32
    BLOB or JSON), ``:match`` (FTS5 expression, e.g. from :func:`fts_or_query`),
    ``:depth`` (rows taken from each list), ``:rrf_k``, ``:w_text``,
    ``:w_vec`` and ``:limit``. Returns ``rowid, score`` best first (ties by
    rowid), plus each list's rank (NULL where the row is not in that list).
    Within a list, equal distances or bm25 scores are ranked by rowid.
    """
    a, f = quote_identifier(ann), quote_identifier(fts)
    return f"""\
WITH
  vec AS (
    SELECT rowid AS id, row_number() OVER (ORDER BY distance, rowid) AS r
    FROM {a} WHERE query = :vec AND k = :depth
  ),
  txt AS (
    SELECT id, row_number() OVER (ORDER BY score, id) AS r
    FROM (SELECT rowid AS id, rank AS score FROM {f}
          WHERE {f} MATCH :match ORDER BY rank LIMIT :depth)
  ),
  fused AS (
    SELECT id, r AS vec_rank, NULL AS text_rank, CAST(:w_vec AS REAL) / (:rrf_k + r) AS s FROM vec
    UNION ALL
    SELECT id, NULL, r, CAST(:w_text AS REAL) / (:rrf_k + r) FROM txt
  )
SELECT id AS rowid, sum(s) AS score, max(vec_rank) AS vec_rank, max(text_rank) AS text_rank
FROM fused GROUP BY id
ORDER BY score DESC, id
LIMIT :limit"""


def search(
    conn: Any,
    vector: Any,
    text: str,
    *,
    limit: int = 10,
    ann: str = "ann",
    fts: str = "docs_fts",
    **params: float,
) -> List[Tuple[int, float, Any, Any]]:
    """Run :func:`rrf_sql` on ``conn``: ``[(rowid, score, vec_rank, text_rank), ...]``.

    ``vector`` is bound as given (bytes from :func:`pocketvec.serialize_f32`,
    JSON text, or an ndarray after :func:`pocketvec.register_numpy`); ``text``
    goes through :func:`fts_or_query`. Keyword ``params`` override
    :data:`DEFAULTS` (``rrf_k``, ``depth``, ``w_text``, ``w_vec``).
    """
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown hybrid parameter(s): {', '.join(sorted(unknown))}")
    bind: Dict[str, Any] = dict(DEFAULTS, **params)
    bind.update(vec=vector, match=fts_or_query(text), limit=limit, depth=int(bind["depth"]))
    rows = conn.execute(rrf_sql(ann, fts), bind).fetchall()
    return [tuple(row) for row in rows]
