"""Finding the bundled ``libpocketvec0`` library and loading it into a connection."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "ExtensionLoadingUnavailable",
    "ExtensionNotFound",
    "load",
    "loadable_path",
]

#: Environment variable that points :func:`loadable_path` at another build of
#: the extension (for example ``target/release/libpocketvec0.so`` while
#: developing the extension itself).
PATH_ENV = "POCKETVEC_LOADABLE_PATH"

_FILE_NAMES = {
    "linux": "libpocketvec0.so",
    "darwin": "libpocketvec0.dylib",
    "win32": "pocketvec0.dll",
}


def _library_file_name() -> str:
    for prefix, name in _FILE_NAMES.items():
        if sys.platform.startswith(prefix):
            return name
    return "libpocketvec0.so"


class ExtensionNotFound(FileNotFoundError):
    """The extension library is not where the package expects it."""

    __module__ = "pocketvec"


class ExtensionLoadingUnavailable(sqlite3.NotSupportedError):
    """The connection cannot load SQLite extensions at all.

    Raised by :func:`load` instead of the ``AttributeError`` that calling
    ``enable_load_extension`` would give. It is a :class:`sqlite3.NotSupportedError`
    (and so a :class:`sqlite3.Error`): the DB-API exception for "this database
    interface does not support the operation".
    """

    __module__ = "pocketvec"


def loadable_path() -> str:
    """Return the absolute path of the pocketvec SQLite extension library.

    This is the file bundled inside the installed package, unless the
    ``POCKETVEC_LOADABLE_PATH`` environment variable names another one. The
    path works as is with ``conn.load_extension(path)`` and the ``sqlite3``
    shell's ``.load``; SQLite derives the entry point ``sqlite3_pocketvec_init``
    from the file name.

    Raises:
        ExtensionNotFound: the library file does not exist.
    """
    override = os.environ.get(PATH_ENV)
    if override:
        path = Path(override).resolve()
        if not path.is_file():
            raise ExtensionNotFound(
                f"{PATH_ENV}={override!r} does not name a file; unset it to use the "
                "library bundled in the pocketvec package"
            )
        return str(path)
    path = Path(__file__).resolve().parent / _library_file_name()
    if not path.is_file():
        raise ExtensionNotFound(
            f"the pocketvec extension library is missing: expected {path}. This "
            "happens when pocketvec is imported from a source checkout instead of an "
            "installed package. Install it with `pip install --no-build-isolation "
            f"./python` (which builds the library with cargo), or set {PATH_ENV} to a "
            "built libpocketvec0 library"
        )
    return str(path)


def _no_loading_message(conn: Any) -> str:
    kind = f"{type(conn).__module__}.{type(conn).__qualname__}"
    if type(conn).__module__ in ("sqlite3", "_sqlite3"):
        why = (
            f"this Python's sqlite3 module was compiled without extension loading "
            f"(Python {sys.version.split()[0]} at {sys.executable}). pyenv and the "
            "macOS system Python build it that way by default"
        )
    else:
        why = f"{kind} was built without extension loading"
    return (
        f"cannot load pocketvec: {kind} has no enable_load_extension(), because "
        f"{why}. What to do: use a Python whose sqlite3 can load extensions "
        "(Debian/Ubuntu's /usr/bin/python3, the python.org installers, conda, or "
        "pyenv with PYTHON_CONFIGURE_OPTS=\"--enable-loadable-sqlite-extensions\" "
        "pyenv install <version>), or open the database with a driver that bundles "
        "its own SQLite and allows extensions: `pip install sqlean.py` and "
        "`import sqlean as sqlite3`, or `pip install apsw`."
    )


def load(conn: Any) -> None:
    """Load the pocketvec extension into a database connection.

    Works with :mod:`sqlite3`, ``sqlean`` and ``apsw`` connections (anything
    with ``enable_load_extension`` and ``load_extension``). Extension loading
    is switched on only for the duration of the call and switched off again
    afterwards, so SQL cannot call ``load_extension()`` later.

    Raises:
        ExtensionLoadingUnavailable: the connection's SQLite build or Python
            module cannot load extensions (pyenv's and macOS's system Pythons).
        ExtensionNotFound: the library file is missing.
        TypeError: ``conn`` is not a database connection.
    """
    enable = getattr(conn, "enable_load_extension", None)
    load_extension = getattr(conn, "load_extension", None)
    if enable is None or load_extension is None:
        if not (hasattr(conn, "execute") or hasattr(conn, "cursor")):
            raise TypeError(
                "pocketvec.load() expects a database connection (sqlite3, sqlean or "
                f"apsw), got {type(conn).__module__}.{type(conn).__qualname__}"
            )
        raise ExtensionLoadingUnavailable(_no_loading_message(conn))
    path = loadable_path()
    enable(True)
    try:
        load_extension(path)
    except Exception as exc:
        if hasattr(exc, "add_note"):
            exc.add_note(f"while loading the pocketvec extension from {path}")
        raise
    finally:
        enable(False)
