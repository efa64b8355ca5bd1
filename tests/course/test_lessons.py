"""Every lesson of the course, run for real.

1. The reference lesson (hidden tests included) passes all its graded tests when run top to
   bottom against the reference package.
2. The learner flow for the whole course: a fresh workspace, every released notebook filled
   with the reference solutions in module order, `tito module complete` for each (graded
   tests on the notebook, integration tests on the exported package), then a milestone on
   the learner's package. This is also the last leg of the release round trip.
"""
from __future__ import annotations

import json

import pytest
from tooling.learner import tito, workspace_import, write_reference_solutions

from tito.lesson import read_cells
from tito.runner import run_cells


def _lessons():
    from tito.manifest import load_manifest

    return load_manifest().existing_lessons()


@pytest.mark.parametrize("m", _lessons(), ids=lambda m: m.dirname)
def test_reference_lesson_passes_its_graded_tests(m, manifest, repo_root):
    path = manifest.lesson_path(m)
    report = run_cells(read_cells(path), cwd=path.parent, pythonpath=repo_root, timeout=600)
    problems = [f"{c.label}: {c.error.strip().splitlines()[-1] if c.error else c.status}" for c in report.errors]
    assert not report.killed, report.killed
    assert report.passed and not problems, problems
    assert report.score == m.points


def test_learner_completes_every_module_from_the_release(manifest, tmp_path):
    lessons = manifest.existing_lessons()
    out = tito("init", str(tmp_path / "ws"), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    ws = tmp_path / "ws"
    for m in lessons:
        missing = [p for p in m.prerequisites if not manifest.lesson_path(manifest.module(p)).is_file()]
        if missing:
            continue  # a prerequisite has no lesson yet, so the learner cannot get here either
        write_reference_solutions(ws, manifest, m)
        out = tito("module", "complete", m.code, cwd=ws)
        assert out.returncode == 0, f"module {m.code}:\n{out.stdout}\n{out.stderr}"
    done = json.loads((ws / "progress.json").read_text())["completed"]
    assert "01" in done
    got = workspace_import(ws, "import tinytorch.core.tensor as t; print(t.__file__)")
    assert got.stdout.strip() == str(ws / "tinytorch/core/tensor.py")
    first = manifest.milestones[0]
    if all(f"{r:02d}" in done for r in first.requires) and (manifest.root / first.script).is_file():
        out = tito("milestone", "run", str(first.number), "--quick", cwd=ws)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "YOUR tinytorch" in out.stdout and str(ws / "tinytorch") in out.stdout
