"""`tito module start` opens JupyterLab as root when needed, without nbgrader's instructor
extensions: the command line is checked, and Jupyter itself reads the workspace's config."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tito.lab import lab_command


def test_root_gets_allow_root_and_the_workspace_config(tmp_path):
    nb = tmp_path / "modules/01_tensor/tensor.ipynb"
    cmd, env = lab_command("/usr/bin/jupyter", nb, tmp_path, {"PATH": "/usr/bin"}, euid=0)
    assert cmd == ["/usr/bin/jupyter", "lab", str(nb), "--allow-root"]
    cmd, env = lab_command("/usr/bin/jupyter-lab", nb, tmp_path, {"PATH": "/usr/bin"}, euid=1000)
    assert cmd == ["/usr/bin/jupyter-lab", str(nb)]
    assert env["JUPYTER_CONFIG_DIR"] == str(tmp_path / ".tinytorch/jupyter") and env["PATH"] == "/usr/bin"


def test_jupyter_sees_nbgrader_extensions_disabled(tmp_path):
    jupyter = shutil.which("jupyter") or str(Path(__import__("sys").executable).parent / "jupyter")
    if not Path(jupyter).exists():
        pytest.skip("jupyter is not installed")
    _, env = lab_command(jupyter, tmp_path / "x.ipynb", tmp_path, {"PATH": str(Path(jupyter).parent) + ":/usr/bin"})
    plain = lambda s: re.sub(r"\x1b\[[0-9;]*m", "", s)  # noqa: E731
    out = subprocess.run([jupyter, "server", "extension", "list"], env=env, capture_output=True, text=True, timeout=120)
    lines = [l.split() for l in plain(out.stdout + out.stderr).splitlines() if "nbgrader.server_extensions." in l and "abled" in l]
    first = {}  # Jupyter lists each config folder, the one that wins (ours) first
    for name, state in lines:
        first.setdefault(name, state)
    assert len(first) == 4 and set(first.values()) == {"disabled"}, lines
    out = subprocess.run([jupyter, "labextension", "list"], env=env, capture_output=True, text=True, timeout=120)
    line = next(l for l in plain(out.stdout + out.stderr).splitlines() if "@jupyter/nbgrader v" in l)
    assert "disabled" in line
