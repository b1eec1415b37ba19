"""pocketvec.load / loadable_path with stdlib sqlite3, apsw and sqlean connections."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest

import pocketvec

apsw = pytest.importorskip("apsw")
sqlean = pytest.importorskip("sqlean")

PYTHON_DIR = Path(__file__).resolve().parents[1]


def _pyproject_version() -> str:
    for line in (PYTHON_DIR / "pyproject.toml").read_text().splitlines():
        if line.startswith("version = "):
            return line.split('"')[1]
    raise AssertionError("no version in pyproject.toml")


def _cosine_check(execute) -> None:
    a = np.array([1.0, 2.0, 3.0, -4.0], dtype=np.float32)
    b = np.array([0.5, -1.0, 2.0, 8.0], dtype=np.float32)
    (got,) = execute(
        "SELECT pocketvec_cosine(?, ?)", (pocketvec.serialize_f32(a), pocketvec.serialize_f32(b))
    )
    want = float(a.astype(np.float64) @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert got == pytest.approx(want, abs=1e-6)


def test_loadable_path_is_the_bundled_library():
    path = Path(pocketvec.loadable_path())
    assert path.is_file()
    assert path.parent == Path(pocketvec.__file__).resolve().parent
    assert path.name == "libpocketvec0.so"


def test_version_matches_extension_and_pyproject(conn):
    (ext_version,) = conn.execute("SELECT pocketvec_version()").fetchone()
    assert pocketvec.__version__ == ext_version == _pyproject_version()


def test_stdlib_sqlite3(conn):
    _cosine_check(lambda sql, args: conn.execute(sql, args).fetchone())


def test_load_switches_extension_loading_back_off(conn):
    # SQL's load_extension() is refused again once pocketvec.load() returns.
    with pytest.raises(sqlite3.OperationalError, match="not authorized"):
        conn.execute("SELECT load_extension(?)", (pocketvec.loadable_path(),))


def test_apsw():
    c = apsw.Connection(":memory:")
    pocketvec.load(c)
    _cosine_check(lambda sql, args: c.execute(sql, args).fetchone())
    # the virtual table works there too (apsw bundles its own, newer SQLite)
    c.execute("CREATE TABLE v(rowid INTEGER PRIMARY KEY, vec BLOB)")
    vecs = np.eye(4, dtype=np.float32)
    for i, v in enumerate(vecs, 1):
        c.execute("INSERT INTO v VALUES(?, ?)", (i, pocketvec.serialize_f32(v)))
    c.execute("CREATE VIRTUAL TABLE ann USING pocketvec(base_table=v, dim=4)")
    rows = list(c.execute("SELECT rowid FROM ann WHERE query = ? AND k = 1", ("[0, 0, 1, 0.1]",)))
    assert rows == [(3,)]
    c.close()


def test_sqlean():
    c = sqlean.connect(":memory:")
    pocketvec.load(c)
    _cosine_check(lambda sql, args: c.execute(sql, args).fetchone())
    with pytest.raises(sqlean.OperationalError, match="not authorized"):
        c.execute("SELECT load_extension(?)", (pocketvec.loadable_path(),))
    c.close()


def test_sqlite_versions_differ_between_drivers():
    """The three drivers really are three SQLite builds (so the tests above mean something)."""
    versions = {sqlite3.sqlite_version, apsw.sqlite_lib_version(), sqlean.sqlite_version}
    assert len(versions) == 3, versions


class _NoExtensionsConnection:
    """Looks like a connection from a Python built without extension loading."""

    def execute(self, *args):  # pragma: no cover - never called
        raise AssertionError


def test_clear_error_for_connection_without_extension_loading():
    with pytest.raises(pocketvec.ExtensionLoadingUnavailable) as info:
        pocketvec.load(_NoExtensionsConnection())
    assert isinstance(info.value, sqlite3.NotSupportedError)
    assert not isinstance(info.value, AttributeError)
    message = str(info.value)
    assert "has no enable_load_extension()" in message
    assert "sqlean" in message and "apsw" in message


def test_type_error_for_non_connection():
    with pytest.raises(TypeError, match="expects a database connection.*builtins.str"):
        pocketvec.load("demo.db")


def test_missing_library_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("POCKETVEC_LOADABLE_PATH", str(tmp_path / "nope.so"))
    with pytest.raises(pocketvec.ExtensionNotFound, match="POCKETVEC_LOADABLE_PATH"):
        pocketvec.loadable_path()
    assert issubclass(pocketvec.ExtensionNotFound, FileNotFoundError)


def test_load_failure_names_the_library(monkeypatch, tmp_path):
    bogus = tmp_path / "libpocketvec0.so"
    bogus.write_bytes(b"not an ELF file")
    monkeypatch.setenv("POCKETVEC_LOADABLE_PATH", str(bogus))
    c = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.OperationalError) as info:
        pocketvec.load(c)
    assert any(str(bogus) in note for note in getattr(info.value, "__notes__", [str(bogus)]))
    # loading was switched off again after the failure
    with pytest.raises(sqlite3.OperationalError, match="not authorized"):
        c.execute("SELECT load_extension(?)", (str(bogus),))


def _python_without_extension_loading() -> str:
    """A ``python3`` on PATH whose sqlite3 cannot load extensions (pyenv's, here)."""
    for candidate in ("python3", "python"):
        try:
            out = subprocess.run(
                [candidate, "-c",
                 "import sqlite3; print(hasattr(sqlite3.Connection, 'enable_load_extension'))"],
                capture_output=True, text=True, timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == "False":
            return candidate
    pytest.skip("no Python without extension loading on PATH (pyenv's python3 is one)")


def test_clear_error_under_python_that_cannot_load_extensions(tmp_path):
    python = _python_without_extension_loading()
    # Make only the installed pocketvec package importable there (not the venv's numpy).
    pkg = Path(pocketvec.__file__).resolve().parent
    dest = tmp_path / "site" / "pocketvec"
    dest.parent.mkdir()
    os.symlink(pkg, dest)
    script = (
        "import sqlite3, sys, pocketvec\n"
        "conn = sqlite3.connect(':memory:')\n"
        "try:\n"
        "    pocketvec.load(conn)\n"
        "except pocketvec.ExtensionLoadingUnavailable as e:\n"
        "    assert isinstance(e, sqlite3.NotSupportedError)\n"
        "    print(sys.executable)\n"
        "    print(type(e).__name__ + ': ' + str(e))\n"
        "    sys.exit(3)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(dest.parent))
    env.pop("POCKETVEC_LOADABLE_PATH", None)
    out = subprocess.run([python, "-c", script], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 3, (out.stdout, out.stderr)
    assert "AttributeError" not in out.stderr
    executable, message = out.stdout.split("\n", 1)
    assert message.startswith("ExtensionLoadingUnavailable: cannot load pocketvec: "
                              "sqlite3.Connection has no enable_load_extension()")
    assert "compiled without extension loading" in message
    assert "--enable-loadable-sqlite-extensions" in message
    assert "sqlean.py" in message
    # the message names the interpreter that lacks it
    assert f"at {executable})" in message
