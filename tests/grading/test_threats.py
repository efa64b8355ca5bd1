"""The threat catalogue: hostile module-01 submissions, each scored as its code deserves.

All submissions are graded in one run (nbgrader layout, bubblewrap sandbox, 4 s per cell);
each case then checks its exact score and that it left nothing behind: no process, no file
outside its own copy, no change to another submission or to the course.
"""
from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import tempfile
import threading
from pathlib import Path

import nbformat
import pytest

from grading.submissions import MARK, catalogue
from tito.grade import find_tasks, grade_one, grade_submissions
from tito.lesson import read_notebook
from tito.release import release_notebook, restore_solutions
from tito.sandbox import Limits, bwrap_works

pytestmark = pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not available (apt-get install bubblewrap)")
LIMITS = Limits(cell_timeout=4)


def _procs_with_mark() -> list[str]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if MARK.encode() in cmd and b"pytest" not in cmd:
                found.append(d.name)
    return found


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def graded(manifest, tmp_path_factory):
    m = manifest.module(1)
    root = tmp_path_factory.mktemp("course")
    lesson = manifest.lesson_path(m)
    stub = release_notebook(lesson)
    good = restore_solutions(stub, read_notebook(lesson))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.5)
    received = []

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                received.append(conn.recv(100))
            except OSError:
                pass
    stop = threading.Event()
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    victim = root / "submitted" / "honest" / "01_tensor" / "tensor.ipynb"
    outside = Path(tempfile.gettempdir()) / f"{MARK}-outside.txt"
    paths = {"course": manifest.root, "victim": victim, "outside": outside, "port": listener.getsockname()[1]}
    cases = catalogue(stub, good, paths)
    for name, (nb, _, _) in cases.items():
        path = root / "submitted" / name / "01_tensor" / "tensor.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(nb, str(path))
    course_hash = _tree_hash(manifest.root / "modules")
    victim_bytes = victim.read_bytes()
    private_tmp = root / "tmp"  # where the grader makes its temporary folders, for this test
    private_tmp.mkdir()
    saved, tempfile.tempdir = tempfile.tempdir, str(private_tmp)
    try:
        results = {r.student: r for r in grade_submissions(manifest, root, LIMITS, only=[m])}
    finally:
        tempfile.tempdir = saved
    stop.set()
    thread.join(timeout=5)
    listener.close()
    after = {
        "course_unchanged": _tree_hash(manifest.root / "modules") == course_hash,
        "victim_unchanged": victim.read_bytes() == victim_bytes,
        "outside_absent": not outside.exists(),
        "no_escape_file": not (root / "submitted" / "aa_writer" / "escaped.txt").exists(),
        "received": received,
        "procs": _procs_with_mark(),
        "new_tmp": sorted(os.listdir(private_tmp)),
    }
    return cases, results, after, root


def test_every_hostile_cell_is_valid_python(graded):
    """A case whose added code does not compile would test nothing."""
    cases, _, _, _ = graded
    for name, (nb, _, _) in cases.items():
        for cell in nb.cells:
            if cell.cell_type == "code":
                compile("\n".join("pass" if l.lstrip().startswith(("%", "!")) else l for l in cell.source.splitlines()),
                        f"{name}", "exec")


def test_every_case_gets_exactly_its_score(graded):
    cases, results, _, _ = graded
    got = {name: results[name].score for name in cases}
    want = {name: expected for name, (_, expected, _) in cases.items()}
    assert got == want, {n: (got[n], want[n], [(t.grade_id, t.status, t.message[:80]) for t in results[n].tests])
                         for n in cases if got[n] != want[n]}
    assert len(cases) >= 15 + 3  # fifteen hostile cases beside honest, stub and wrong_add
    assert all(r.sandbox == "bubblewrap" for r in results.values())


def test_nothing_is_left_behind(graded):
    _, _, after, _ = graded
    assert after["course_unchanged"] and after["victim_unchanged"]
    assert after["outside_absent"] and after["no_escape_file"]
    assert after["received"] == [], "a submission reached the network"
    assert after["procs"] == [], f"processes started by submissions survived: {after['procs']}"
    assert after["new_tmp"] == [], f"temporary directories left: {after['new_tmp']}"


def test_hang_reports_where_and_costs_only_its_tests(graded):
    _, results, _, _ = graded
    tests = {t.grade_id: t for t in results["hang_matmul"].tests}
    assert tests["test-tensor-matmul"].status == "timeout"
    assert "stopped after 4 s" in tests["test-tensor-matmul"].message
    assert "of cell tensor-matmul (in _matmul)" in tests["test-tensor-matmul"].message
    assert tests["test-tensor-reductions"].status == "passed"


def test_hidden_failures_reveal_nothing(graded, manifest):
    _, results, _, _ = graded
    lesson = manifest.lesson_path(manifest.module(1)).read_text()
    hidden = [l.strip() for l in lesson.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0].splitlines() if l.strip()]
    for r in results.values():
        for t in r.tests:
            for line in hidden:
                assert line not in t.message, (r.student, t.grade_id)
            if t.hidden:
                assert re.fullmatch(r"a hidden test in this cell failed( \(it calls [\w, ]+\))?", t.message), t.message


def test_the_read_attack_is_real_without_the_sandbox(graded, manifest):
    """Without bubblewrap the same submission finds the lesson and takes every point:
    the zero above is the sandbox's doing, not a broken attack."""
    _, _, _, root = graded
    task = next(t for t in find_tasks(manifest, root, [manifest.module(1)]) if t.student == "read_secrets")
    result = grade_one(task, manifest.modules, LIMITS, sandbox=False)
    assert result.score == 10, [(t.grade_id, t.message[:150]) for t in result.tests if t.status != "passed"]


def test_the_detach_attack_is_real_without_the_sandbox(graded, manifest):
    """Without bubblewrap, the daemons of the `detached` case outlive the run (and grading
    still finishes): in the sandbox, none survived (test_nothing_is_left_behind)."""
    _, _, _, root = graded
    task = next(t for t in find_tasks(manifest, root, [manifest.module(1)]) if t.student == "detached")
    try:
        result = grade_one(task, manifest.modules, LIMITS, sandbox=False)
        assert result.score == 10
        assert len(_procs_with_mark()) == 2
    finally:
        for pid in _procs_with_mark():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def _grade_honest_and_tampered(manifest, m, grade_id, old, new, module_file, noop, tmp_path, cell_timeout):
    """The reference solution of module ``m`` with one bug (``old`` -> ``new`` in cell
    ``grade_id``), graded twice on the reference prerequisites: as they are ("honest") and
    with ``noop`` appended to ``module_file`` of the student's package ("tampered")."""
    from tito.grade import GradingTask, _stage_package

    lesson = manifest.lesson_path(m)
    nb = restore_solutions(release_notebook(lesson), read_notebook(lesson))
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    assert cell.source.count(old) == 1
    cell.source = cell.source.replace(old, new)
    path = tmp_path / "ada.ipynb"
    nbformat.write(nb, str(path))
    results = {}
    for who in ("honest", "tampered"):
        pkg = tmp_path / who
        pkg.mkdir()
        _stage_package(GradingTask("x", m, lesson, None, None, manifest.root), manifest.modules, pkg)
        target = pkg / "tinytorch" / module_file
        assert target.is_file()
        if who == "tampered":
            target.write_text(target.read_text() + noop)  # the last definition wins
        task = GradingTask("ada", m, lesson, path, package_root=pkg, reference_root=manifest.root)
        results[who] = grade_one(task, manifest.modules, Limits(cell_timeout=cell_timeout))
    return results["honest"], results["tampered"]


NOOP_ASSERT_TENSOR = '''
def assert_tensor(out, shape=None, dtype=None, name="the result"):
    return out          # a student's module 01 whose check checks nothing
'''


def test_tampered_assert_tensor_from_module_01_passes_nothing_in_module_02(manifest, tmp_path):
    """Module 02's tests import assert_tensor from the student's own package (their module 01).
    A student whose assert_tensor does nothing, and whose sigmoid leaks float64, gets exactly
    the score of the same bug on an honest package, 4 of 8: test-sigmoid (2 points) fails with
    the dtype message of the grader's own assert_tensor (the student's copy can produce none),
    and test-module (2 points) checks the dtype of every activation."""
    m1, m2 = manifest.module(1), manifest.module(2)
    assert m1.number in m2.prerequisites
    honest, tampered = _grade_honest_and_tampered(
        manifest, m2, "sigmoid", "return _wrap(out.astype(data.dtype, copy=False))",
        "return _wrap(out.astype(np.float64))", "testing.py", NOOP_ASSERT_TENSOR, tmp_path, 20)
    assert tampered.package == "student's"
    assert tampered.score == honest.score == m2.points - 4 == 4, [(t.grade_id, t.status, t.message) for t in tampered.tests]
    failed = {t.grade_id: t.message for t in tampered.tests if t.status != "passed"}
    assert list(failed) == ["test-sigmoid", "test-module"]
    assert "expected dtype float32, got float64" in failed["test-sigmoid"]
    assert [(t.grade_id, t.status) for t in tampered.tests] == [(t.grade_id, t.status) for t in honest.tests]


NOOP_GRADCHECK = '''
def gradcheck(fn, *inputs, **kwargs):
    return True         # a student's module 05 whose gradcheck checks nothing
'''


def test_noop_gradcheck_from_module_05_passes_nothing_in_module_12(manifest, tmp_path):
    """Module 12's fused-attention test checks the backward with gradcheck, imported from the
    student's module 05. A student whose gradcheck does nothing, and whose softmax backward
    forgets the row sum, gets exactly the honest package's score, 8 of 12: test-sdpa-fused
    (4 points) fails with the grader's gradcheck message, whatever the student's gradcheck says."""
    m = manifest.module(12)
    honest, tampered = _grade_honest_and_tampered(
        manifest, m, "sdpa-function",
        '        ds -= np.einsum("...ij,...ij->...i", dp, p)[..., None]   # row sums of dP * P\n', "",
        "core/autograd.py", NOOP_GRADCHECK, tmp_path, 30)
    summary = [(t.grade_id, t.status, t.message[:200]) for t in tampered.tests]
    assert tampered.package == "student's"
    failed = {t.grade_id: t.message for t in tampered.tests if t.status != "passed"}
    assert "test-sdpa-fused" in failed and "gradcheck failed for argument" in failed["test-sdpa-fused"], summary
    assert tampered.score == honest.score == m.points - 4 == 8, summary
    assert [(t.grade_id, t.status) for t in tampered.tests] == [(t.grade_id, t.status) for t in honest.tests]
