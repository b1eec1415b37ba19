"""pocketvec: vector search inside SQLite.

>>> import sqlite3, pocketvec
>>> conn = sqlite3.connect(":memory:")
>>> pocketvec.load(conn)                      # doctest: +SKIP
>>> conn.execute("SELECT pocketvec_cosine(?, ?)",
...              (pocketvec.serialize_f32([1, 0]), pocketvec.serialize_f32([1, 1])))  # doctest: +SKIP
"""

from __future__ import annotations

from . import hybrid
from ._loading import ExtensionLoadingUnavailable, ExtensionNotFound, load, loadable_path
from ._vectors import (
    adapt_ndarray,
    deserialize_f16,
    deserialize_f32,
    deserialize_int8,
    register_numpy,
    serialize_f16,
    serialize_f32,
    serialize_int8,
)

__version__ = "0.1.0"

__all__ = [
    "ExtensionLoadingUnavailable",
    "ExtensionNotFound",
    "__version__",
    "adapt_ndarray",
    "deserialize_f16",
    "deserialize_f32",
    "deserialize_int8",
    "hybrid",
    "load",
    "loadable_path",
    "register_numpy",
    "serialize_f16",
    "serialize_f32",
    "serialize_int8",
]
