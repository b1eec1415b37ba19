"""numpy serializers, deserializers and the ndarray adapter, checked against the extension."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

import pocketvec

from conftest import assert_same_knn

sqlean = pytest.importorskip("sqlean")

DIMS = [1, 3, 8, 17, 384]


# --- byte formats -------------------------------------------------------------

@pytest.mark.parametrize("dim", DIMS)
def test_f32_round_trip(rng, dim):
    v = rng.standard_normal(dim).astype(np.float32)
    blob = pocketvec.serialize_f32(v)
    assert isinstance(blob, bytes) and len(blob) == 4 * dim
    assert blob == v.astype("<f4").tobytes()
    back = pocketvec.deserialize_f32(blob)
    assert back.dtype == np.float32 and back.flags.writeable
    np.testing.assert_array_equal(back, v)


@pytest.mark.parametrize("dim", DIMS)
def test_f16_round_trip(rng, dim):
    v = rng.standard_normal(dim).astype(np.float16)
    blob = pocketvec.serialize_f16(v)
    assert len(blob) == 2 * dim
    back = pocketvec.deserialize_f16(blob)
    assert back.dtype == np.float16
    np.testing.assert_array_equal(back, v)
    # from float32 / float64: rounded to nearest half, like numpy's astype
    w = rng.standard_normal(dim)
    np.testing.assert_array_equal(pocketvec.deserialize_f16(pocketvec.serialize_f16(w)),
                                  w.astype(np.float16))


@pytest.mark.parametrize("dim", DIMS)
def test_int8_round_trip(rng, dim):
    v = rng.integers(-128, 128, dim).astype(np.int8)
    v[0] = -128
    blob = pocketvec.serialize_int8(v)
    assert len(blob) == dim
    back = pocketvec.deserialize_int8(blob)
    assert back.dtype == np.int8
    np.testing.assert_array_equal(back, v)
    # plain Python ints and wider integer dtypes are accepted when in range
    assert pocketvec.serialize_int8(v.astype(np.int64).tolist()) == blob


def test_float64_is_rounded_to_f32(rng):
    v = rng.standard_normal(16)
    assert pocketvec.serialize_f32(v) == v.astype(np.float32).tobytes()
    assert pocketvec.serialize_f32(v.tolist()) == v.astype(np.float32).tobytes()


def test_big_endian_and_strided_input(rng):
    v = rng.standard_normal(32).astype(np.float32)
    assert pocketvec.serialize_f32(v.astype(">f4")) == v.tobytes()
    strided = np.repeat(v, 2)[::2]
    assert not strided.flags.c_contiguous
    assert pocketvec.serialize_f32(strided) == v.tobytes()


def test_serializer_refusals():
    with pytest.raises(ValueError, match=r"outside the float32 range"):
        pocketvec.serialize_f32(np.array([1.0, 1e300]))
    with pytest.raises(ValueError, match=r"element 1 .* outside the float16 range"):
        pocketvec.serialize_f16([0.5, 70000.0])
    with pytest.raises(TypeError, match="quantize floats first"):
        pocketvec.serialize_int8(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"element 2 \(200\) is outside \[-128, 127\]"):
        pocketvec.serialize_int8([1, 2, 200])
    with pytest.raises(ValueError, match=r"1-D array\), got shape \(2, 2\)"):
        pocketvec.serialize_f32(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="empty vector"):
        pocketvec.serialize_f32([])
    with pytest.raises(TypeError, match="real numbers"):
        pocketvec.serialize_f32(np.array([1 + 2j]))
    # infinities already present are data, not overflow: kept (the extension judges them)
    assert pocketvec.serialize_f32([np.inf]) == np.array([np.inf], "<f4").tobytes()


def test_deserializer_refusals():
    with pytest.raises(ValueError, match="multiple of 4 bytes, got 6 bytes"):
        pocketvec.deserialize_f32(b"\0" * 6)
    with pytest.raises(ValueError, match="multiple of 2 bytes, got 3 bytes"):
        pocketvec.deserialize_f16(b"\0" * 3)
    with pytest.raises(ValueError, match="got 0 bytes"):
        pocketvec.deserialize_int8(b"")
    with pytest.raises(TypeError, match="takes a BLOB"):
        pocketvec.deserialize_f32("[1, 2]")
    # memoryview and bytearray are BLOBs too
    np.testing.assert_array_equal(pocketvec.deserialize_int8(bytearray(b"\x01\xff")), [1, -1])
    np.testing.assert_array_equal(pocketvec.deserialize_f32(memoryview(b"\0\0\x80?")), [1.0])


# --- through SQLite and the extension ----------------------------------------

def test_blobs_survive_storage(conn, rng):
    f32 = rng.standard_normal(24).astype(np.float32)
    f16 = rng.standard_normal(24).astype(np.float16)
    i8 = rng.integers(-128, 128, 24).astype(np.int8)
    conn.execute("CREATE TABLE t(a BLOB, b BLOB, c BLOB)")
    conn.execute("INSERT INTO t VALUES(?, ?, ?)", (pocketvec.serialize_f32(f32),
                                                   pocketvec.serialize_f16(f16),
                                                   pocketvec.serialize_int8(i8)))
    a, b, c = conn.execute("SELECT a, b, c FROM t").fetchone()
    np.testing.assert_array_equal(pocketvec.deserialize_f32(a), f32)
    np.testing.assert_array_equal(pocketvec.deserialize_f16(b), f16)
    np.testing.assert_array_equal(pocketvec.deserialize_int8(c), i8)


def test_extension_reads_f32_as_numpy_does(conn, rng):
    v = rng.standard_normal(37).astype(np.float32)
    (text,) = conn.execute("SELECT pocketvec_to_json(?)", (pocketvec.serialize_f32(v),)).fetchone()
    np.testing.assert_allclose(np.array(json.loads(text), dtype=np.float64), v, rtol=1e-6)
    (blob,) = conn.execute("SELECT pocketvec_f32(?)", (text,)).fetchone()
    np.testing.assert_array_equal(pocketvec.deserialize_f32(blob), v)


def test_extension_f16_conversion_matches_numpy(conn, rng):
    v = rng.standard_normal(64).astype(np.float32)
    (blob,) = conn.execute("SELECT pocketvec_f16(?)", (pocketvec.serialize_f32(v),)).fetchone()
    np.testing.assert_array_equal(pocketvec.deserialize_f16(blob), v.astype(np.float16))


def test_extension_int8_quantization_is_documented_mapping(conn, rng):
    v = rng.standard_normal(64).astype(np.float32)
    (blob,) = conn.execute("SELECT pocketvec_int8(?)", (pocketvec.serialize_f32(v),)).fetchone()
    scale = np.abs(v).max() / 127.0
    want = np.clip(np.rint(v / scale), -127, 127).astype(np.int8)
    got = pocketvec.deserialize_int8(blob)
    # at most one step apart where x / scale sits on a rounding boundary
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert (got == want).mean() > 0.95


@pytest.mark.parametrize("kind", ["f32", "f16", "int8"])
def test_knn_over_each_type_matches_numpy(conn, rng, kind):
    """Vectors stored with each serializer, searched by the virtual table, equal numpy's top-k."""
    dim, n, k = 48, 500, 10
    if kind == "int8":
        base = rng.integers(-128, 128, (n, dim)).astype(np.int8)
        serialize = pocketvec.serialize_int8
        query = rng.integers(-128, 128, dim).astype(np.int8)
        qblob = pocketvec.serialize_int8(query)
    else:
        base = rng.standard_normal((n, dim)).astype(np.float32 if kind == "f32" else np.float16)
        serialize = pocketvec.serialize_f32 if kind == "f32" else pocketvec.serialize_f16
        query = rng.standard_normal(dim).astype(base.dtype)
        qblob = serialize(query)
    conn.execute("CREATE TABLE base(rowid INTEGER PRIMARY KEY, vec BLOB NOT NULL)")
    conn.executemany("INSERT INTO base VALUES(?, ?)",
                     [(i + 1, serialize(v)) for i, v in enumerate(base)])
    conn.execute(f"CREATE VIRTUAL TABLE ann USING pocketvec(base_table=base, dim={dim}, type={kind})")
    rows = conn.execute("SELECT rowid, distance FROM ann WHERE query = ? AND k = ?",
                        (qblob, k)).fetchall()
    b = base.astype(np.float64)
    q = query.astype(np.float64)
    ref = 1.0 - (b @ q) / (np.linalg.norm(b, axis=1) * np.linalg.norm(q))
    assert_same_knn(rows, ref, k, tol=1e-4 if kind == "f16" else 1e-5)


# --- the ndarray adapter ----------------------------------------------------------

def test_without_the_adapter_sqlite3_binds_raw_float64_memory(conn):
    """Why register_numpy exists: plain sqlite3 binds any array's buffer as is."""
    before = dict(sqlite3.adapters)
    sqlite3.adapters.pop((np.ndarray, sqlite3.PrepareProtocol), None)
    try:
        (n,) = conn.execute("SELECT length(?)", (np.ones(4),)).fetchone()
        assert n == 32  # 4 float64 values = 8 "f32" values of garbage
    finally:
        sqlite3.adapters.clear()
        sqlite3.adapters.update(before)


@pytest.fixture
def numpy_adapter():
    before = dict(sqlite3.adapters)
    pocketvec.register_numpy()
    yield
    sqlite3.adapters.clear()
    sqlite3.adapters.update(before)


def test_register_numpy_binds_each_dtype(conn, rng, numpy_adapter):
    v32 = rng.standard_normal(12).astype(np.float32)
    v16 = v32.astype(np.float16)
    v8 = rng.integers(-128, 128, 12).astype(np.int8)
    for arr, want in [(v32, v32.tobytes()), (v16, v16.tobytes()), (v8, v8.tobytes()),
                      (v32.astype(np.float64), v32.tobytes()),  # float64 -> f32, the rule
                      (v32.astype(">f4"), v32.tobytes())]:
        (got,) = conn.execute("SELECT ?", (arr,)).fetchone()
        assert got == want, arr.dtype
    # a memmap (an ndarray subclass) binds too
    (got,) = conn.execute("SELECT pocketvec_dim(?)", (v32.view(np.memmap),)).fetchone()
    assert got == 12


def test_register_numpy_queries_the_table(conn, rng, numpy_adapter):
    base = rng.standard_normal((200, 16))  # float64, as numpy makes it
    conn.execute("CREATE TABLE base(rowid INTEGER PRIMARY KEY, vec BLOB NOT NULL)")
    conn.executemany("INSERT INTO base VALUES(?, ?)", [(i + 1, v) for i, v in enumerate(base)])
    conn.execute("CREATE VIRTUAL TABLE ann USING pocketvec(base_table=base, dim=16)")
    q = rng.standard_normal(16)
    rows = conn.execute("SELECT rowid, distance FROM ann WHERE query = ? AND k = 7", (q,)).fetchall()
    b = base.astype(np.float32).astype(np.float64)
    qq = q.astype(np.float32).astype(np.float64)
    ref = 1.0 - (b @ qq) / (np.linalg.norm(b, axis=1) * np.linalg.norm(qq))
    assert_same_knn(rows, ref, 7)
    (sim,) = conn.execute("SELECT pocketvec_cosine(?, ?)", (base[0], q)).fetchone()
    assert sim == pytest.approx(1.0 - ref[0], abs=1e-6)


def test_register_numpy_refusals(conn, numpy_adapter):
    with pytest.raises(TypeError, match=r"dtype int64 as a vector.*astype\(np.float32\)"):
        conn.execute("SELECT ?", (np.arange(4),))
    with pytest.raises(TypeError, match="dtype bool"):
        conn.execute("SELECT ?", (np.ones(4, dtype=bool),))
    with pytest.raises(ValueError, match=r"got shape \(2, 3\)"):
        conn.execute("SELECT ?", (np.zeros((2, 3), np.float32),))
    with pytest.raises(ValueError, match="float32 range"):
        conn.execute("SELECT ?", (np.array([1e39]),))
    # the connection is still fine afterwards
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_register_numpy_with_sqlean(rng):
    before = dict(sqlean.adapters)
    try:
        pocketvec.register_numpy(sqlean)
        c = sqlean.connect(":memory:")
        pocketvec.load(c)
        v = rng.standard_normal(8)
        (dim,) = c.execute("SELECT pocketvec_dim(?)", (v,)).fetchone()
        assert dim == 8
        c.close()
    finally:
        sqlean.adapters.clear()
        sqlean.adapters.update(before)
    with pytest.raises(TypeError, match="has no register_adapter"):
        pocketvec.register_numpy(np)
