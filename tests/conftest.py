"""Fixtures shared by the whole suite.

Large shared datasets are found through one setting: the environment variable
``TINYTORCH_DATA`` (``.ci/run`` points it at ``../shared/datasets``). Tests that need them
use the ``data_dir`` fixture and skip, saying why, when it is absent.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def manifest():
    from tito.manifest import load_manifest

    return load_manifest(REPO)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    value = os.environ.get("TINYTORCH_DATA")
    if not value:
        pytest.skip("TINYTORCH_DATA is not set: point it at a directory holding mnist/, cifar10/, text/ "
                    "(CI uses ../shared/datasets)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"TINYTORCH_DATA={value} is not a directory")
    return path


# CIFAR-10 is shared as JPEG bytes (``$TINYTORCH_DATA/cifar10/cifar10-jpeg.npz``) with a script
# that writes the official ``cifar-10-batches-py/`` layout. ``cifar_root`` runs it once per
# session into a temporary directory (about 10-20 s), unless ``$TINYTORCH_DATA`` already holds
# an extracted ``cifar-10-batches-py/``, and the loader then reads it through the same code path
# as a downloaded copy. Set ``TINYTORCH_TEST_CACHE=DIR`` to keep the built batches in DIR.
@pytest.fixture(scope="session")
def cifar_root(data_dir: Path, tmp_path_factory) -> Path:
    if (data_dir / "cifar-10-batches-py" / "data_batch_1").is_file():
        return data_dir
    script = data_dir / "cifar10" / "build_cifar10_batches.py"
    if not script.is_file() or not (data_dir / "cifar10" / "cifar10-jpeg.npz").is_file():
        pytest.skip(f"{data_dir}/cifar10 lacks build_cifar10_batches.py or cifar10-jpeg.npz")
    pytest.importorskip("PIL", reason="building CIFAR-10 batches from JPEG needs Pillow")
    keep = os.environ.get("TINYTORCH_TEST_CACHE")  # optional: build once, reuse in later sessions
    if keep:
        dest = Path(keep) / "cifar10-built"
        if (dest / "cifar-10-batches-py" / ".complete").is_file():
            return dest
        dest.mkdir(parents=True, exist_ok=True)
    else:
        dest = tmp_path_factory.mktemp("cifar10")
    subprocess.run([sys.executable, str(script), str(dest)], check=True, capture_output=True, timeout=600)
    (dest / "cifar-10-batches-py" / ".complete").touch()
    return dest


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r


@pytest.fixture(scope="session")
def installed_wheel(tmp_path_factory):
    """A plain (non-editable) install: the wheel built offline from a copy of the repository,
    installed into a fresh virtual environment. Returns (its python, its site-packages)."""
    pytest.importorskip("build", reason="building the wheel needs the `build` package (test extra)")
    import numpy as np

    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for pkg in ("tinytorch", "tito"):
        shutil.copytree(REPO / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp / "dist"
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check",
          "--outdir", str(dist), str(src)])
    (wheel,) = dist.glob("tinytorch-*.whl")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    # NumPy comes from the running interpreter's environment (offline); tinytorch only from the wheel
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "numpy_from_test_env.pth").write_text(str(Path(np.__file__).resolve().parents[1]) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "--quiet",
          str(wheel)])
    return py, site, wheel
