"""The bundled datasets ship in the wheel: build it, install it into a fresh virtual
environment, and load TinyDigits and TinyTalks from the installed package (offline)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]

CHECK = r"""
import json, tinytorch
from tinytorch.data.datasets import load_tinydigits, load_tinytalks
(x, y), (xt, yt) = load_tinydigits()
(q, a), (qv, av), (qt, at) = load_tinytalks()
print(json.dumps({"file": tinytorch.__file__, "digits": [x.shape, xt.shape, str(x.dtype)],
                  "talks": [len(q), len(qv), len(qt)]}))
"""


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r


def test_wheel_ships_and_loads_the_bundled_data(tmp_path):
    pytest.importorskip("build", reason="building the wheel needs the `build` package (test extra)")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for pkg in ("tinytorch", "tito"):
        shutil.copytree(REPO / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check",
         "--outdir", str(dist), str(src)])
    (wheel,) = dist.glob("tinytorch-*.whl")
    assert wheel.stat().st_size < 50e6

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    # NumPy comes from the running interpreter's environment (offline); tinytorch only from the wheel
    site = run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    (Path(site) / "numpy_from_test_env.pth").write_text(str(Path(np.__file__).resolve().parents[1]) + "\n")
    run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "--quiet",
         str(wheel)])

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TINYTORCH_DATA")}
    out = run([str(py), "-c", CHECK], cwd=tmp_path, env=env).stdout
    info = json.loads(out.strip().splitlines()[-1])
    assert Path(info["file"]).resolve().is_relative_to(env_dir.resolve()), info["file"]
    assert info["digits"] == [[4000, 28, 28], [1000, 28, 28], "uint8"]
    assert sum(info["talks"]) > 2800 and min(info["talks"]) > 250
