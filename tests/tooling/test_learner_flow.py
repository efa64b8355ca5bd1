"""Play a learner: init a workspace, fail, pass, complete, break things; nothing is lost.

The sample-course tests exercise every workspace command quickly; the course tests run the
real module 01 and then complete every lesson of the course from its released notebook.
"""
from __future__ import annotations

import json
import shutil

import nbformat
import pytest

from tito.release import notebook_relpath
from tooling.learner import copy_workspace, init_sample_workspace, tito, workspace_import, write_reference_solutions


@pytest.fixture(scope="module")
def sample_template(tmp_path_factory):
    return init_sample_workspace(tmp_path_factory.mktemp("sample"))


@pytest.fixture()
def sample(sample_template, tmp_path):
    """A fresh copy of an initialised sample workspace (init itself is tested once, above)."""
    return copy_workspace(sample_template, tmp_path)


def test_fresh_workspace_layout(sample):
    course, manifest, ws = sample
    assert (ws / "modules/01_sample/sample.ipynb").is_file()
    assert (ws / ".tinytorch/pristine/modules/01_sample/sample.ipynb").is_file()
    assert json.loads((ws / "progress.json").read_text()) == {"format": 1, "completed": {}}
    assert sorted(p.name for p in (ws / "tinytorch").iterdir()) == ["__init__.py"]
    out = tito("init", str(ws), cwd=ws.parent, course=course)
    assert out.returncode != 0 and "not empty" in out.stderr


def test_stub_fails_then_solution_completes(sample):
    course, manifest, ws = sample
    m = manifest.modules[0]
    out = tito("module", "test", "01", cwd=ws, course=course)
    assert out.returncode == 1
    assert "FAILED test-double" in out.stderr and "NotImplementedError" in out.stderr
    out = tito("module", "complete", "01", cwd=ws, course=course)
    assert out.returncode == 1 and "Nothing was exported" in out.stderr
    assert not (ws / "tinytorch/core").exists()
    assert json.loads((ws / "progress.json").read_text())["completed"] == {}

    def mark(nb):  # the learner's own touch, to recognise their code in the package
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "double")
        cell.source += "\nLEARNER_MARK = 'mine'\n"
    write_reference_solutions(ws, manifest, m, mark)
    # the Reflect answer sketches are nowhere in the workspace before the module is completed
    assert not any(b"secret_answer_marker" in p.read_bytes() for p in ws.rglob("*") if p.is_file())
    out = tito("module", "complete", "01", cwd=ws, course=course)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 / 3" in out.stdout
    assert "secret_answer_marker" in out.stdout
    assert "secret_answer_marker" in (ws / "modules/01_sample/reflect_answers.md").read_text()
    done = json.loads((ws / "progress.json").read_text())["completed"]
    assert done["01"]["score"] == 3
    got = workspace_import(ws, "import tinytorch.core.sample as s; print(s.LEARNER_MARK, s.__file__)")
    assert got.returncode == 0, got.stderr
    assert got.stdout.startswith("mine " + str(ws)), got.stdout


def test_syntax_error_is_named_and_nothing_changes(sample):
    course, manifest, ws = sample
    m = manifest.modules[0]
    write_reference_solutions(ws, manifest, m, lambda nb: setattr(nb.cells[3], "source", nb.cells[3].source + "\ndef oops(:\n"))
    before = (ws / "progress.json").read_text()
    out = tito("module", "complete", "01", cwd=ws, course=course)
    assert out.returncode == 1
    assert "SyntaxError in double" in out.stderr
    assert (ws / "progress.json").read_text() == before and not (ws / "tinytorch/core").exists()


def test_unreadable_notebook_gives_a_clear_message(sample):
    course, manifest, ws = sample
    nb = ws / notebook_relpath(manifest.modules[0])
    nb.write_text("{ this is not json")
    out = tito("module", "test", "01", cwd=ws, course=course)
    assert out.returncode == 1 and "not a readable notebook" in out.stderr and "tito module reset" in out.stderr
    out = tito("module", "reset", "01", cwd=ws, course=course)
    assert out.returncode == 0, out.stderr
    backups = list((ws / ".tinytorch/backups").iterdir())
    assert len(backups) == 1 and backups[0].read_text() == "{ this is not json"
    nbformat.read(str(nb), as_version=4)  # restored and readable


def test_infinite_loop_is_stopped(sample):
    course, manifest, ws = sample
    m = manifest.modules[0]
    write_reference_solutions(ws, manifest, m, lambda nb: setattr(nb.cells[3], "source", nb.cells[3].source + "\nwhile True:\n    pass\n"))
    out = tito("module", "complete", "01", "--timeout", "5", cwd=ws, course=course)
    assert out.returncode == 1
    assert "time limit" in out.stderr
    assert json.loads((ws / "progress.json").read_text())["completed"] == {}


def test_corrupt_progress_file_is_reported_and_kept(sample):
    course, manifest, ws = sample
    (ws / "progress.json").write_text('{"format": 1, "completed": {"01": ')
    for args in (["status"], ["module", "complete", "01"], ["module", "start", "01", "--no-lab"]):
        out = tito(*args, cwd=ws, course=course)
        assert out.returncode == 1, args
        assert "progress.json is damaged" in out.stderr and "tito progress repair" in out.stderr
    assert (ws / "progress.json").read_text() == '{"format": 1, "completed": {"01": '
    out = tito("progress", "repair", cwd=ws, course=course)
    assert out.returncode == 0
    assert any(p.name.startswith("progress.json.damaged-") for p in ws.iterdir())
    out = tito("status", cwd=ws, course=course)
    assert out.returncode == 0 and "Completed 0 of 1 modules" in out.stdout


def test_outside_a_workspace(tmp_path, sample):
    course, _, _ = sample
    out = tito("status", cwd=tmp_path, course=course)
    assert out.returncode == 2 and "not a TinyTorch workspace" in out.stderr


# --------------------------------------------------------------------------- the real course

@pytest.fixture(scope="module")
def course_ws(tmp_path_factory, manifest):
    if not manifest.lesson_path(manifest.module(1)).is_file():
        pytest.skip("module 01 has no lesson yet")
    root = tmp_path_factory.mktemp("learner")
    out = tito("init", str(root / "ws"), cwd=root)
    assert out.returncode == 0, out.stdout + out.stderr
    return root / "ws"


def test_missing_prerequisite_is_refused(course_ws, manifest):
    second = manifest.modules[1]
    if not manifest.lesson_path(second).is_file():
        pytest.skip("module 02 has no lesson yet")
    out = tito("module", "start", second.code, "--no-lab", cwd=course_ws)
    assert out.returncode == 1 and "needs 01 tensor completed first" in out.stderr


def test_wrong_tensor_fails_right_tensor_completes(course_ws, manifest):
    m = manifest.module(1)

    def wrong_add(nb):  # a plausible bug: addition that subtracts
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")
                    and ("Tensor.__add__" in c.source or "def __add__" in c.source))
        cell.source += "\n\nTensor.__add__ = lambda self, other: Tensor(self.data - (other.data if isinstance(other, Tensor) else other))\n"
    write_reference_solutions(course_ws, manifest, m, wrong_add)
    before = (course_ws / "progress.json").read_text()
    out = tito("module", "test", "01", cwd=course_ws)
    assert out.returncode == 1
    assert "FAILED test" in out.stderr, out.stderr  # names the failing graded test
    out = tito("module", "complete", "01", cwd=course_ws)
    assert out.returncode == 1 and "Nothing was exported" in out.stderr
    assert not (course_ws / "tinytorch/core/tensor.py").exists()
    assert (course_ws / "progress.json").read_text() == before

    def mine(nb):
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution") and "class Tensor" in c.source)
        cell.source += "\n\nTensor.written_by = 'the learner'\n"
    write_reference_solutions(course_ws, manifest, m, mine)
    out = tito("module", "complete", "01", cwd=course_ws)
    assert out.returncode == 0, out.stdout + out.stderr
    got = workspace_import(course_ws, "from tinytorch.core.tensor import Tensor; import inspect; "
                                      "print(Tensor.written_by, inspect.getfile(Tensor))")
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == f"the learner {course_ws / 'tinytorch/core/tensor.py'}"


def test_grade_restores_tests_and_scores_the_students_code(sample, tmp_path):
    """An instructor autogrades: a student who deleted a test and one who wrote the solution."""
    course, manifest, ws = sample
    m = manifest.modules[0]
    subs = tmp_path / "submissions"
    good, cheat = subs / "good", subs / "cheat"
    for d in (good, cheat):
        shutil.copytree(ws / "modules", d / "modules")
    write_reference_solutions(good, manifest, m)

    def delete_tests(nb):  # stub left in place, graded cells removed: must still score 0
        nb.cells = [c for c in nb.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    write_reference_solutions(cheat, manifest, m, delete_tests)
    nb = cheat / notebook_relpath(m)
    nbdata = json.loads(nb.read_text())
    for c in nbdata["cells"]:
        if c["metadata"].get("nbgrader", {}).get("solution"):
            c["source"] = "import numpy as np\ndef double(x):\n    return x\n"
    nb.write_text(json.dumps(nbdata))
    out = tito("grade", str(subs), "--csv", str(tmp_path / "grades.csv"), cwd=tmp_path, course=course)
    assert out.returncode == 0, out.stdout + out.stderr
    import csv
    rows = list(csv.DictReader((tmp_path / "grades.csv").open()))
    got = {(r["student"], r["test"]): (r["points"], r["status"]) for r in rows}
    assert got == {("cheat", "test-double"): ("0", "failed"), ("cheat", "test-dtype"): ("0", "error"),
                   ("good", "test-double"): ("2", "passed"), ("good", "test-dtype"): ("1", "passed")}
