"""Targeted paths: `tito init DIR --start NN` (a workshop on attention, a team onboarding).

The modules before NN are the reference solution, exported into the workspace's own package
and recorded as provided; the learner's module NN is tested and completed on top of them;
status and milestones say whose code is whose; nothing imports from outside the workspace.
"""
from __future__ import annotations

import json

import pytest

from tito.export import module_path
from tooling.learner import tito, workspace_import, write_reference_solutions


@pytest.fixture(scope="module")
def started_at_12(tmp_path_factory, manifest):
    if not manifest.lesson_path(manifest.module(12)).is_file():
        pytest.skip("module 12 has no lesson yet")
    root = tmp_path_factory.mktemp("targeted")
    out = tito("init", str(root / "ws"), "--start", "12", cwd=root)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Provided (the reference solution, in tinytorch/): modules 01-11" in out.stdout
    assert "tito module start 12" in out.stdout
    return root / "ws"


def test_prerequisites_are_provided_inside_the_workspace(started_at_12, manifest):
    ws = started_at_12
    done = json.loads((ws / "progress.json").read_text())["completed"]
    assert sorted(done) == [m.code for m in manifest.modules if m.number < 12]
    assert all(e["provided"] and e["score"] is None for e in done.values())
    for m in manifest.modules[:11]:
        assert (ws / module_path(m.package)).is_file(), m.package
    got = workspace_import(ws, "import tinytorch.text.embeddings as e; print(e.__file__)")
    assert got.stdout.strip() == str(ws / "tinytorch/text/embeddings.py"), got.stderr
    # the module the learner starts at is not there: no fallback to the course's package
    got = workspace_import(ws, "import tinytorch.core.attention")
    assert got.returncode == 1 and "tito module complete 12" in got.stderr, got.stderr


def test_status_says_what_is_provided(started_at_12):
    out = tito("status", cwd=started_at_12)
    assert out.returncode == 0, out.stderr
    assert "Completed 0 of" in out.stdout and "0 of" in out.stdout.split("modules, ")[1]
    assert "Provided by the reference solution (not your code, no points): modules 01, 02" in out.stdout
    assert "[p] 01 tensor" in out.stdout and "[>] 12 attention" in out.stdout
    assert "Next: tito module start 12" in out.stdout


def test_learner_completes_12_then_milestone_names_whose_code(started_at_12, manifest):
    ws = started_at_12
    out = tito("module", "start", "12", "--no-lab", cwd=ws)
    assert out.returncode == 0, out.stderr
    write_reference_solutions(ws, manifest, manifest.module(12))
    out = tito("module", "complete", "12", cwd=ws)
    assert out.returncode == 0, out.stdout + out.stderr
    done = json.loads((ws / "progress.json").read_text())["completed"]
    assert "provided" not in done["12"] and done["12"]["score"] == manifest.module(12).points
    out = tito("status", cwd=ws)
    assert "Code in your tinytorch/: yours: 12; provided (the reference solution): 01, 02" in out.stdout
    out = tito("milestone", "run", "1", "--quick", cwd=ws)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "YOUR tinytorch (modules 01, 02, 03, 04 in it are provided: the reference solution" in out.stdout


def test_start_must_name_a_module_with_a_lesson(tmp_path, manifest):
    out = tito("init", str(tmp_path / "ws"), "--start", "99", cwd=tmp_path)
    assert out.returncode == 2 and "No module '99'" in out.stderr
    missing = next((m for m in manifest.modules if not manifest.lesson_path(m).is_file()), None)
    if missing is not None:
        out = tito("init", str(tmp_path / "ws"), "--start", missing.code, cwd=tmp_path)
        assert out.returncode == 1 and "has no lesson yet" in out.stderr
    assert not (tmp_path / "ws").exists()


def test_repair_keeps_provided_modules_provided(started_at_12, manifest, tmp_path):
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(started_at_12, ws)
    (ws / "progress.json").write_text("{ damaged")
    out = tito("progress", "repair", cwd=ws)
    assert out.returncode == 0, out.stderr
    done = json.loads((ws / "progress.json").read_text())["completed"]
    assert all(done[m.code].get("provided") for m in manifest.modules[:11]), done
    assert not done.get("12", {}).get("provided"), "module 12 (if completed) is the learner's code"
