"""pocketvec: vector search inside SQLite.

``pocketvec.load(conn)`` loads the bundled extension into a ``sqlite3``,
``sqlean`` or ``apsw`` connection; ``serialize_f32`` and friends turn numpy
vectors into the extension's BLOBs; ``pocketvec.hybrid`` fuses FTS5 and
vector search in one SQL query.
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
