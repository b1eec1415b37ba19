"""Hostile input through every option that reaches SQL text (issue 7).

For each `CREATE VIRTUAL TABLE … USING pocketvec(...)` option, the table
name and the schema name, a set of injection payloads (quotes, semicolons,
comments, brackets, NUL-free control text) is tried. Each attempt must
either fail with an error, or succeed with the payload taken literally:
sentinel tables untouched, no object in sqlite_schema other than the
virtual table and its own shadow tables, and (for identifier options)
queries that read the base table whose name really is the payload and
return the brute-force answer. Prints the number of attempts; exit
status 1 on failure.

    .venv/bin/python tests/reliability/injection.py
"""
import os
import sqlite3
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import blob, brute_force, check_knn, distances, ext_path  # noqa: E402

PAYLOADS = [
    "x'); DROP TABLE sentinel; --",
    "x\"); DROP TABLE sentinel; --",
    'x"; DROP TABLE sentinel; --',
    "x'; DROP TABLE sentinel; --",
    "x`; DROP TABLE sentinel; --",
    "x]; DROP TABLE sentinel; --",
    "docs\" WHERE 0; DELETE FROM sentinel; --",
    "docs; DELETE FROM sentinel",
    "docs /* comment */",
    "docs -- comment",
    "\"docs\"\"\"",
    "main\".\"docs",
    "docs) ; DELETE FROM sentinel; SELECT (1",
    "1; DELETE FROM sentinel",
    "1 OR 1=1",
    "' OR ''='",
    "%s%n%x",
    "\\'; DELETE FROM sentinel; --",
]
# Options whose values are identifiers: a table/column with the payload as
# its name is created so that a successful CREATE can be checked for real.
OPTIONS = ["base_table", "column", "dim", "metric", "type", "index", "cache", "chunk_rows", "threads",
           "lists", "quantizer", "pq_m", "nprobe", "rerank", "train_min"]
DIM = 4


def quote_ident(s):
    return '"' + s.replace('"', '""') + '"'


def quote_str(s):
    return "'" + s.replace("'", "''") + "'"


def fresh(ext):
    c = sqlite3.connect(":memory:", isolation_level=None)
    c.enable_load_extension(True)
    c.load_extension(ext)
    c.execute("CREATE TABLE sentinel(x)")
    c.execute("INSERT INTO sentinel VALUES (1), (2), (3)")
    c.execute("ATTACH ':memory:' AS aux")
    return c


def objects(c):
    return sorted(r for r in c.execute("SELECT type, name FROM sqlite_schema"))


def check_intact(c, before, vtab, what):
    assert c.execute("SELECT count(*), sum(x) FROM sentinel").fetchone() == (3, 6), f"{what}: sentinel changed"
    after = objects(c)
    extra = [o for o in after if o not in before]
    missing = [o for o in before if o not in after]
    assert not missing, f"{what}: objects disappeared: {missing}"
    # the table itself, its shadow tables (<name>_*) and their automatic indexes
    bad = [o for o in extra if not (o[1] == vtab or o[1].startswith(vtab + "_")
                                    or o[1].startswith(f"sqlite_autoindex_{vtab}_"))]
    assert not bad, f"{what}: unexpected objects: {bad}"


def make_base(c, table, column, rng):
    c.execute(f"CREATE TABLE {quote_ident(table)}(rowid INTEGER PRIMARY KEY, {quote_ident(column)} BLOB)")
    vecs = rng.standard_normal((20, DIM)).astype(np.float32)
    c.executemany(f"INSERT INTO {quote_ident(table)} VALUES (?, ?)", [(i + 1, blob(v)) for i, v in enumerate(vecs)])
    return [(i + 1, v) for i, v in enumerate(vecs)]


def check_query(c, vtab, rows, what):
    q = np.ones(DIM, dtype=np.float32)
    got = c.execute(f"SELECT rowid, distance FROM {quote_ident(vtab)} WHERE query = ? AND k = 5 ORDER BY distance",
                    (blob(q),)).fetchall()
    byid = dict(rows)
    check_knn(got, brute_force("cosine", q, rows, 5),
              lambda r: float(distances("cosine", q, byid[r][None, :])[0]) if r in byid else None, 1e-4, what)


def attempt(ext, option, payload, quoting, rng, stats):
    c = fresh(ext)
    table, column, vtab = "docs", "vec", "t"
    if option == "base_table":
        table = payload
    elif option == "column":
        column = payload
    rows = make_base(c, table, column, rng)
    before = objects(c)
    value = {"bare": payload, "single": quote_str(payload), "double": quote_ident(payload)}[quoting]
    opts = {"base_table": "docs", "column": "vec", "dim": str(DIM)}
    opts[option] = value
    sql = f"CREATE VIRTUAL TABLE {quote_ident(vtab)} USING pocketvec(" + ", ".join(f"{k}={v}" for k, v in opts.items()) + ")"
    what = f"{option}={value!r}"
    try:
        c.execute(sql)
        created = True
    except sqlite3.Error:
        created = False
    check_intact(c, before, vtab, what)
    if created:
        stats["accepted"] += 1
        # accepted: the payload was taken literally as the name of the base
        # table / column, which really exists under that name
        check_query(c, vtab, rows, what)
        c.execute(f"DROP TABLE {quote_ident(vtab)}")
        check_intact(c, before, vtab, what + " after DROP")
        assert objects(c) == before, f"{what}: DROP left objects behind"
    else:
        stats["rejected"] += 1
    stats["attempts"] += 1
    c.close()


def attempt_names(ext, payload, rng, stats):
    """The virtual table's own name and its schema name (shadow tables are
    named after them)."""
    for schema in ("main", "aux"):
        c = fresh(ext)
        rows = make_base(c, "docs", "vec", rng)
        if schema == "aux":
            c.execute("CREATE TABLE aux.docs(rowid INTEGER PRIMARY KEY, vec BLOB)")
            c.executemany("INSERT INTO aux.docs VALUES (?, ?)", [(r, blob(v)) for r, v in rows])
        before = objects(c)
        what = f"table name {payload!r} in {schema}"
        try:
            c.execute(f"CREATE VIRTUAL TABLE {schema}.{quote_ident(payload)} USING pocketvec(base_table=docs, dim={DIM})")
            created = True
        except sqlite3.Error:
            created = False
        check_intact(c, before, payload, what)
        if created:
            stats["accepted"] += 1
            check_query(c, payload, rows, what) if schema == "main" else c.execute(
                f"SELECT count(*) FROM aux.{quote_ident(payload)} WHERE query = ? AND k = 3",
                (blob(np.ones(DIM, dtype=np.float32)),)).fetchall()
            c.execute(f"DROP TABLE {schema}.{quote_ident(payload)}")
            assert objects(c) == before, f"{what}: DROP left objects behind"
        else:
            stats["rejected"] += 1
        stats["attempts"] += 1
        c.close()


def main():
    ext = ext_path()
    rng = np.random.default_rng(5)
    stats = {"attempts": 0, "accepted": 0, "rejected": 0}
    for option in OPTIONS:
        for payload in PAYLOADS:
            for quoting in ("bare", "single", "double"):
                attempt(ext, option, payload, quoting, rng, stats)
    for payload in PAYLOADS:
        attempt_names(ext, payload, rng, stats)
    print(f"injection: {stats['attempts']} attempts over {len(OPTIONS)} options + table/schema names, "
          f"{len(PAYLOADS)} payloads: {stats['accepted']} accepted literally (checked against brute force), "
          f"{stats['rejected']} rejected with an error; sentinel and schema intact in all")


if __name__ == "__main__":
    main()
