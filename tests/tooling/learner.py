"""Helpers that play a learner: run tito, write into notebooks the way a learner would."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from tito.lesson import read_notebook
from tito.manifest import load_manifest
from tito.release import notebook_relpath, restore_solutions


def tito(*args: str, cwd: Path, course: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("TINYTORCH_WORKSPACE", None)
    env.pop("PYTHONPATH", None)
    if course is not None:
        env["TINYTORCH_COURSE"] = str(course)
    env["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "tito.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def write_reference_solutions(ws: Path, manifest, m, edit=None) -> Path:
    """Fill the learner's notebook with the reference solutions (optionally edited)."""
    path = ws / notebook_relpath(m)
    released = nbformat.read(str(path), as_version=4)
    nb = restore_solutions(released, read_notebook(manifest.lesson_path(m)))
    if edit is not None:
        edit(nb)
    nbformat.write(nb, str(path))
    return path


def workspace_import(ws: Path, code: str) -> subprocess.CompletedProcess:
    """Run ``code`` the way a learner's notebook in the workspace would import tinytorch."""
    env = dict(os.environ, PYTHONPATH=str(ws))
    return subprocess.run([sys.executable, "-c", code], cwd=ws, env=env, capture_output=True, text=True, timeout=120)


def init_sample_workspace(root: Path) -> tuple[Path, Path]:
    """The sample course (tests/tooling/sample_course.py) and a workspace made from it by
    ``tito init``, under ``root``: a module-scoped template that tests copy."""
    from tooling.sample_course import make_course

    course = make_course(root / "course")
    out = tito("init", str(root / "ws"), cwd=root, course=course)
    assert out.returncode == 0, out.stdout + out.stderr
    return course, root / "ws"


def copy_workspace(template: tuple[Path, Path], dest: Path):
    """(course, its manifest, a fresh copy of the template's workspace at ``dest/ws``)."""
    course, ws = template
    shutil.copytree(ws, dest / "ws")
    return course, load_manifest(course), dest / "ws"
