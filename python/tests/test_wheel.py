"""`pip wheel ./python` makes a platform wheel that installs and works without Rust."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import pocketvec

PYTHON_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Ship the library this test run already uses instead of running cargo again;
    # the cargo path itself is what `pip install ./python` (make test) exercised.
    env = dict(os.environ, POCKETVEC_PREBUILT_LIB=pocketvec.loadable_path())
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
         "--no-index", "-w", str(out), str(PYTHON_DIR)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    (whl,) = out.glob("pocketvec-*.whl")
    return whl


def test_wheel_is_platform_tagged_and_carries_the_library(wheel):
    assert wheel.name.startswith(f"pocketvec-{pocketvec.__version__}-py3-none-")
    assert not wheel.name.endswith("-any.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = z.read(f"pocketvec-{pocketvec.__version__}.dist-info/WHEEL").decode()
        lib = z.read("pocketvec/libpocketvec0.so")
    assert {"pocketvec/__init__.py", "pocketvec/py.typed", "pocketvec/hybrid.py"} <= names
    assert "Root-Is-Purelib: false" in info
    assert lib == Path(pocketvec.loadable_path()).read_bytes()


def test_wheel_installs_and_works_without_rust(wheel, tmp_path):
    path = "/usr/bin:/bin"
    if shutil.which("cargo", path=path) or shutil.which("rustc", path=path):
        pytest.skip("cargo is on the minimal PATH; cannot show that Rust is not needed")
    target = tmp_path / "site"
    env = dict(os.environ, PATH=path)
    res = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
         "--target", str(target), str(wheel)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    script = (
        "import sqlite3, pocketvec\n"
        "assert pocketvec.__file__.startswith(%r), pocketvec.__file__\n"
        "c = sqlite3.connect(':memory:')\n"
        "pocketvec.load(c)\n"
        "c.execute('CREATE TABLE v(rowid INTEGER PRIMARY KEY, vec BLOB)')\n"
        "c.executemany('INSERT INTO v VALUES(?, pocketvec_f32(?))',"
        " [(1, '[1, 0]'), (2, '[0, 1]'), (3, '[1, 1]')])\n"
        "c.execute('CREATE VIRTUAL TABLE ann USING pocketvec(base_table=v, dim=2)')\n"
        "print(c.execute(\"SELECT rowid FROM ann WHERE query = '[0.9, 1]' AND k = 2\").fetchall())\n"
    ) % str(target)
    # -S: no site-packages, so only the freshly installed copy can be imported
    res = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True,
                         env=dict(env, PYTHONPATH=str(target)), timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[(3,), (2,)]"
