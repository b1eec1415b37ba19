"""Vector values as SQLite BLOBs: numpy serializers, deserializers and the adapter.

The byte formats are the extension's (one place: the pocketvec README):

* f32  -- ``d`` little-endian IEEE float32 values, no header (numpy ``<f4``);
* f16  -- ``d`` little-endian IEEE float16 values (numpy ``<f2``);
* int8 -- ``d`` signed bytes (numpy ``int8``).

A BLOB does not say which of these it is: the virtual table's ``type=`` decides
how stored vectors are read, and a query vector is f32 (or JSON text).

numpy is imported lazily so that :func:`pocketvec.load` works without it.
"""

from __future__ import annotations

import sqlite3
from types import ModuleType
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    ArrayLike = npt.ArrayLike
    Blob = Union[bytes, bytearray, memoryview]

__all__ = [
    "deserialize_f16",
    "deserialize_f32",
    "deserialize_int8",
    "register_numpy",
    "serialize_f16",
    "serialize_f32",
    "serialize_int8",
]


def _np() -> ModuleType:
    try:
        import numpy
    except ImportError as exc:  # pragma: no cover - exercised only without numpy
        raise ImportError(
            "pocketvec's vector helpers need numpy: `pip install numpy` "
            "(pocketvec.load() itself does not)"
        ) from exc
    return numpy


def _vector(values: ArrayLike, what: str) -> Any:
    """``values`` as a 1-D numpy array, refusing shapes and dtypes that are no vector."""
    np = _np()
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{what} takes one vector (a 1-D array), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{what} got an empty vector; a vector has at least 1 dimension")
    if arr.dtype.kind not in "fiu":
        raise TypeError(
            f"{what} takes real numbers, got an array of dtype {arr.dtype} "
            f"({arr.dtype.kind!r} kind)"
        )
    return arr


def _to_float(arr: Any, dtype: str, what: str) -> bytes:
    """Convert to the little-endian float ``dtype``; values that overflow it are refused."""
    np = _np()
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(dtype, copy=False)
    finite_in = np.isfinite(arr) if arr.dtype.kind == "f" else np.ones(arr.shape, bool)
    overflow = finite_in & ~np.isfinite(out)
    if overflow.any():
        i = int(np.flatnonzero(overflow)[0])
        limit = float(np.finfo(dtype).max)
        raise ValueError(
            f"{what}: element {i} ({arr[i]!r}) is outside the {np.dtype(dtype).name} "
            f"range (|x| <= {limit:g})"
        )
    return bytes(np.ascontiguousarray(out).data)


def serialize_f32(vector: ArrayLike) -> bytes:
    """A vector as an f32 BLOB: little-endian float32 bytes, no header.

    Any real dtype is accepted and converted (float64 is rounded to float32);
    a value beyond float32's range is refused with ``ValueError``.
    """
    return _to_float(_vector(vector, "serialize_f32"), "<f4", "serialize_f32")


def serialize_f16(vector: ArrayLike) -> bytes:
    """A vector as an f16 BLOB (for ``type=f16`` tables): little-endian float16 bytes.

    Any real dtype is accepted and rounded to float16; a value beyond float16's
    range (65504) is refused with ``ValueError`` rather than becoming infinity.
    """
    return _to_float(_vector(vector, "serialize_f16"), "<f2", "serialize_f16")


def serialize_int8(vector: ArrayLike) -> bytes:
    """A vector as an int8 BLOB (for ``type=int8`` tables): one signed byte per value.

    Only integers in [-128, 127] are accepted. Floats are refused with
    ``TypeError``: quantizing needs a scale, so choose one (for example
    ``np.clip(np.rint(x * 127), -128, 127).astype(np.int8)`` for unit vectors)
    or let SQL do it with ``pocketvec_int8(vector)``.
    """
    np = _np()
    arr = _vector(vector, "serialize_int8")
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"serialize_int8 takes integers in [-128, 127], got dtype {arr.dtype}; "
            "quantize floats first (e.g. np.clip(np.rint(x * 127), -128, 127)"
            ".astype(np.int8)) or use SQL pocketvec_int8()"
        )
    if arr.dtype != np.int8:
        bad = (arr < -128) | (arr > 127)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"serialize_int8: element {i} ({arr[i]}) is outside [-128, 127]")
        arr = arr.astype(np.int8)
    return bytes(np.ascontiguousarray(arr).data)


def _deserialize(blob: Blob, dtype: str, width: int, what: str) -> Any:
    np = _np()
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} takes a BLOB (bytes), got {type(blob).__name__}")
    n = memoryview(blob).nbytes
    if n == 0 or n % width:
        raise ValueError(
            f"{what}: a {np.dtype(dtype).name} vector BLOB is a non-zero multiple of "
            f"{width} bytes, got {n} bytes"
        )
    return np.frombuffer(blob, dtype=dtype).astype(dtype[1:], copy=True)


def deserialize_f32(blob: Blob) -> npt.NDArray[np.float32]:
    """An f32 BLOB as a new, writable float32 array."""
    out: npt.NDArray[np.float32] = _deserialize(blob, "<f4", 4, "deserialize_f32")
    return out


def deserialize_f16(blob: Blob) -> npt.NDArray[np.float16]:
    """An f16 BLOB as a new, writable float16 array."""
    out: npt.NDArray[np.float16] = _deserialize(blob, "<f2", 2, "deserialize_f16")
    return out


def deserialize_int8(blob: Blob) -> npt.NDArray[np.int8]:
    """An int8 BLOB as a new, writable int8 array."""
    out: npt.NDArray[np.int8] = _deserialize(blob, "|i1", 1, "deserialize_int8")
    return out


def adapt_ndarray(arr: Any) -> bytes:
    """The ``sqlite3`` adapter installed by :func:`register_numpy`.

    The rule, by dtype:

    * ``float32`` -> f32 BLOB; ``float16`` -> f16 BLOB; ``int8`` -> int8 BLOB
      (the array's own bytes, made little-endian and contiguous);
    * ``float64`` -> converted to float32 and bound as an f32 BLOB. It is
      numpy's default dtype and SQLite vectors have no 64-bit type; the
      extension computes in float32 (or narrower) anyway. Values beyond
      float32's range are refused with ``ValueError``;
    * any other dtype (other integers, bool, complex, object, ...) is refused
      with ``TypeError``, because its meaning as a vector is ambiguous: call
      ``.astype(np.float32)`` or ``.astype(np.int8)`` to say which one you mean.

    Only 1-D, non-empty arrays are vectors; anything else is ``ValueError``.
    """
    np = _np()
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(
            "pocketvec binds a numpy array as one vector (a non-empty 1-D array), "
            f"got shape {arr.shape}; bind rows one at a time, e.g. executemany"
        )
    kind = arr.dtype.str[1:]  # without byte order: "f8", "f4", "f2", "i1", ...
    if kind == "f8":
        return _to_float(arr, "<f4", "float64 vector parameter")
    if kind in ("f4", "f2", "i1"):
        return bytes(np.ascontiguousarray(arr, dtype="<" + kind).data)
    raise TypeError(
        f"pocketvec cannot bind a numpy array of dtype {arr.dtype} as a vector: "
        "convert it with .astype(np.float32) (f32 vector) or .astype(np.int8) "
        "(int8 vector) first"
    )


def register_numpy(*modules: ModuleType) -> None:
    """Let ``numpy.ndarray`` parameters bind directly as vector BLOBs.

    Registers :func:`adapt_ndarray` (see it for the dtype rule, float64
    included) with :mod:`sqlite3`'s adapter registry, or with the registries
    of the given DB-API modules, e.g. ``register_numpy(sqlite3, sqlean)``.
    Each module that has its own ``register_adapter`` (stdlib ``sqlite3``,
    ``sqlean``) needs its own call; apsw has no global adapters, so with apsw
    use :func:`serialize_f32` and friends.
    """
    np = _np()
    for module in modules or (sqlite3,):
        register = getattr(module, "register_adapter", None)
        if register is None:
            raise TypeError(
                f"{getattr(module, '__name__', module)!r} has no register_adapter(); "
                "pass a DB-API module such as sqlite3 or sqlean"
            )
        # Adapters are looked up by exact type, so subclasses need their own entry.
        for cls in (np.ndarray, np.memmap):
            register(cls, adapt_ndarray)
