"""Build hooks: compile the Rust extension with cargo and ship it inside the package.

Everything declarative lives in pyproject.toml. This file adds three things:

* ``build_py`` runs ``cargo build --release -p pocketvec --lib`` in the
  repository (the parent of this directory) and copies ``libpocketvec0`` into
  the package. ``POCKETVEC_PREBUILT_LIB=/path/to/libpocketvec0.so`` skips cargo
  and ships that file instead; ``CARGO_TARGET_DIR`` and ``CARGO`` are honoured.
* The distribution is marked binary, so the wheel is platform-tagged and the
  package installs into platlib.
* The wheel tag is ``py3-none-<platform>``: the library is a SQLite extension,
  not a CPython extension module, so any Python 3 on that platform can use it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:  # setuptools >= 70.1 carries bdist_wheel itself
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # older setuptools: the `wheel` package provides it
    try:
        from wheel.bdist_wheel import bdist_wheel
    except ImportError:
        raise SystemExit(
            "pocketvec build: building a wheel needs setuptools >= 70.1 or the `wheel` "
            "package, and neither is installed. Run `python -m pip install "
            "'setuptools>=70.1'` first (a fresh Debian venv has setuptools 66 only)."
        ) from None

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

if sys.platform.startswith("darwin"):
    LIB_NAME = "libpocketvec0.dylib"
elif sys.platform.startswith("win"):
    LIB_NAME = "pocketvec0.dll"
else:
    LIB_NAME = "libpocketvec0.so"


def _fail(message: str) -> None:
    raise SystemExit(f"pocketvec build: {message}")


def build_extension_library() -> Path:
    """Return a freshly built (or the prebuilt) extension library."""
    prebuilt = os.environ.get("POCKETVEC_PREBUILT_LIB")
    if prebuilt:
        path = Path(prebuilt).resolve()
        if not path.is_file():
            _fail(f"POCKETVEC_PREBUILT_LIB={prebuilt!r} is not a file")
        return path
    if not (REPO / "Cargo.toml").is_file() or not (REPO / "ext" / "Cargo.toml").is_file():
        _fail(
            f"no pocketvec Cargo workspace at {REPO}: build from the repository "
            "(`pip install --no-build-isolation ./python`) or set POCKETVEC_PREBUILT_LIB"
        )
    cargo = os.environ.get("CARGO") or shutil.which("cargo")
    if not cargo:
        _fail(
            "cargo was not found on PATH; install Rust (rustup) or set "
            "POCKETVEC_PREBUILT_LIB to a built libpocketvec0 library"
        )
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    if not target.is_absolute():
        target = REPO / target
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    cmd = [cargo, "build", "--release", "-p", "pocketvec", "--lib"]
    print("pocketvec build:", " ".join(cmd), f"(CARGO_TARGET_DIR={target})", flush=True)
    result = subprocess.run(cmd, cwd=REPO, env=env)
    if result.returncode != 0:
        _fail(f"`{' '.join(cmd)}` failed with exit status {result.returncode}")
    lib = target / "release" / LIB_NAME
    if not lib.is_file():
        _fail(f"cargo succeeded but {lib} does not exist")
    return lib


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        lib = build_extension_library()
        dest = Path(self.build_lib) / "pocketvec" / LIB_NAME
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lib, dest)
        if getattr(self, "editable_mode", False):
            # Editable installs import from src/, so the library goes there too.
            shutil.copyfile(lib, HERE / "src" / "pocketvec" / LIB_NAME)

    def get_outputs(self, include_bytecode: bool = True) -> list:
        outputs = list(super().get_outputs(include_bytecode))
        outputs.append(str(Path(self.build_lib) / "pocketvec" / LIB_NAME))
        return outputs


class BinaryDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        return True


class BdistWheel(bdist_wheel):
    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple:
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(
    license="MIT",
    distclass=BinaryDistribution,
    cmdclass={"build_py": BuildPy, "bdist_wheel": BdistWheel},
)
