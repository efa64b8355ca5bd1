"""Grading on a real Dask cluster (a LocalCluster of two worker processes): the same scores as a
serial run; a worker killed from the test mid-task has its task graded elsewhere; a submission
that kills its worker is recorded as failed after a bounded number of tries; an interrupted
`tito grade` started again grades only what is missing or changed, and ends with exactly one
result per submission."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from grading.submissions import append, insert_after
from tito.grade import grade_submissions
from tito.grade_cluster import GradingError, Journal, grade_course, start_cluster
from tito.lesson import read_notebook
from tito.release import release_notebook, restore_solutions
from tito.sandbox import Limits, bwrap_works

pytest.importorskip("distributed", reason="the grading extra (dask, distributed) is not installed")
pytestmark = pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not available (apt-get install bubblewrap)")
WRONG_ADD = "Tensor.__add__ = lambda self, o: Tensor(self.data - (o.data if isinstance(o, Tensor) else o))"
SLOW = "import time\ntime.sleep({})"
KILL_PARENT = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"  # its parent: only the grading worker


@pytest.fixture(scope="module")
def notebooks(manifest):
    lesson = manifest.lesson_path(manifest.module(1))
    stub = release_notebook(lesson)
    good = restore_solutions(stub, read_notebook(lesson))
    return {"stub": stub, "good": good, "wrong": append(good, "tensor-arithmetic", WRONG_ADD)}


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes; a task may lose two workers (tries=2) before it is given up."""
    client, local = start_cluster(2, tries=2)
    yield client
    client.close()
    local.close()


def _course(root: Path, subs: dict) -> Path:
    for student, nb in subs.items():
        path = root / "submitted" / student / "01_tensor" / "tensor.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))
    return root


def _verdicts(results):
    return {r.student: (r.score, [(t.grade_id, t.status, t.points) for t in r.tests]) for r in results}


def test_cluster_gives_the_same_scores_as_a_serial_run(manifest, notebooks, cluster, tmp_path):
    g = notebooks["good"]
    course = _course(tmp_path / "course", {
        "ada": g, "bob": notebooks["wrong"], "cy": notebooks["stub"],
        "eve": append(g, "tensor-matmul", "import ctypes\nTensor.__matmul__ = lambda self, o: ctypes.string_at(0)")})
    limits = Limits(cell_timeout=4)
    serial = grade_submissions(manifest, course, limits)
    run = grade_course(manifest, course, limits, client=cluster, journal=tmp_path / "journal.jsonl")
    assert (run.graded, run.reused, run.failed, run.interrupted) == (4, 0, 0, False)
    assert _verdicts(run.results) == _verdicts(serial)
    assert {r.student: r.score for r in run.results} == {"ada": 10, "bob": 9, "cy": 0, "eve": 7}
    assert len({r.worker for r in run.results}) == 2  # both worker processes graded
    assert all(r.sandbox == "bubblewrap" for r in run.results)


def _executing(dask_worker):
    return os.getpid(), [str(ts.key) for ts in dask_worker.state.executing]


def test_a_worker_killed_mid_task_has_its_task_graded_on_another(manifest, notebooks, cluster, tmp_path):
    g = notebooks["good"]
    course = _course(tmp_path / "course", {"ada": g, "bob": notebooks["wrong"],
                                           "slow": insert_after(g, "test-tensor-creation", SLOW.format(3))})
    out = {}
    worker = threading.Thread(target=lambda: out.update(run=grade_course(
        manifest, course, Limits(cell_timeout=30), client=cluster, journal=tmp_path / "journal.jsonl")))
    worker.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and worker.is_alive():
        for pid, keys in cluster.run(_executing).values():
            if any("/slow/" in k for k in keys):
                os.kill(pid, signal.SIGKILL)
                killed = pid
                break
        time.sleep(0.2)
    worker.join(timeout=180)
    assert killed is not None, "the slow task was never seen running"
    run = out["run"]
    scores = {r.student: r.score for r in run.results}
    assert scores == {"ada": 10, "bob": 9, "slow": 10} and run.failed == 0
    slow = next(r for r in run.results if r.student == "slow")
    assert slow.worker and not slow.worker.endswith(f":{killed}")  # graded by another process
    assert sorted(_journal_students(tmp_path / "journal.jsonl")) == ["ada", "bob", "slow"]


def test_a_submission_that_kills_its_worker_is_recorded_failed_after_bounded_tries(manifest, notebooks, cluster, tmp_path):
    """Under bubblewrap a submission cannot reach its worker (PID namespace); without it (the
    resource-limits fallback) its parent process is the worker, which it kills on every try."""
    g = notebooks["good"]
    course = _course(tmp_path / "course", {"ada": g, "mal": insert_after(g, "test-tensor-creation", KILL_PARENT)})
    journal = tmp_path / "journal.jsonl"
    run = grade_course(manifest, course, Limits(cell_timeout=10), sandbox=False, client=cluster, journal=journal)
    by = {r.student: r for r in run.results}
    assert len(run.results) == 2 and run.failed == 1 and by["ada"].score == 10
    mal = by["mal"]
    assert mal.score == 0 and "died 2 times" in mal.problem and "kills its grader" in mal.problem
    assert {t.status for t in mal.tests} == {"error"} and len(mal.tests) == 8
    again = grade_course(manifest, course, Limits(cell_timeout=10), sandbox=False, client=cluster, journal=journal)
    assert (again.graded, again.reused, again.failed) == (0, 2, 1)  # recorded, not retried without --retry-failed


def test_journal_ignores_a_line_cut_short_and_admits_one_run_at_a_time(tmp_path):
    from tito.grade import GradeResult, TestResult

    path = tmp_path / "j.jsonl"
    j = Journal(path)
    r = GradeResult("ada", "01", "01_tensor", "tensor", 1.0, 2.0, tests=[TestResult("t", 1.0, 2.0, "passed")])
    j.add("k1", r)
    with pytest.raises(GradingError, match="another `tito grade`"):
        Journal(path)
    j.close()
    with open(path, "a") as f:
        f.write('{"key": "k2", "result": {"student": "bob", "assi')  # a crash in mid-write
    j = Journal(path)
    assert list(j.entries) == [("ada", "01_tensor")] and j.entries[("ada", "01_tensor")][1] == r
    j.close()


def _tito(*args, cwd: Path) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("tito")
    return subprocess.Popen([str(exe), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "120"})


def test_an_interrupted_run_resumes_with_only_the_missing_and_changed(manifest, notebooks, cluster, tmp_path):
    """The first run is `tito grade --workers 2` (its own LocalCluster), stopped by SIGTERM; the
    second sends its tasks to the already running cluster (`--scheduler ADDRESS`)."""
    import psutil

    g = notebooks["good"]
    slow = insert_after(g, "test-tensor-creation", SLOW.format(0.5))
    students = [f"s{k}" for k in range(6)]
    course = _course(tmp_path / "course", {s: slow for s in students})
    journal = course / "grading-journal.jsonl"
    args = ("grade", str(course), "--timeout", "30", "--json")
    first = _tito(*args, "--workers", "2", cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        if journal.is_file() and len(_journal_students(journal)) >= 2:
            break
        time.sleep(0.1)
    children = psutil.Process(first.pid).children(recursive=True)  # its cluster: nanny and worker processes
    first.send_signal(signal.SIGTERM)
    out, errs = first.communicate(timeout=120)
    assert first.returncode == 130, errs
    report = json.loads(out)
    kept = report["graded"]
    assert report["interrupted"] and 2 <= kept < len(students), report
    assert len(_journal_students(journal)) == kept
    assert not (course / "gradebook.db").exists()  # nothing but the journal is written on an interruption
    assert children and not [c.pid for c in children if _alive(c)], "the interrupted run left processes behind"

    graded_first = _journal_students(journal)
    changed = graded_first[0]
    nbformat.write(notebooks["wrong"], str(course / "submitted" / changed / "01_tensor" / "tensor.ipynb"))
    second = _tito(*args, "--scheduler", cluster.scheduler.address, cwd=tmp_path)
    out, errs = second.communicate(timeout=300)
    assert second.returncode == 0, errs
    report = json.loads(out)
    assert (report["graded"], report["reused"], report["failed"]) == (len(students) - kept + 1, kept - 1, 0)
    assert report["where"].startswith(f"the cluster at {cluster.scheduler.address}")
    fresh = {r["student"] for r in report["results"] if not r["reused"]}
    assert fresh == (set(students) - set(graded_first)) | {changed}
    assert {r["student"]: r["score"] for r in report["results"]} == {s: 9 if s == changed else 10 for s in students}

    # Exactly one result per submission everywhere.
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        subs = gb.assignment_submissions("01_tensor")
        assert sorted(s.student.id for s in subs) == students
        assert {s.student.id: s.score for s in subs} == {s: 9 if s == changed else 10 for s in students}
    rows = list(csv.DictReader((course / "grades-per-test.csv").open()))
    assert len(rows) == len(students) * 8 and len({(r["student"], r["test"]) for r in rows}) == len(rows)
    assert sorted(_journal_students(journal)) == students


def _journal_students(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue  # a line being written
        if "result" in d:
            out.append(d["result"]["student"])
    return out


def _alive(p) -> bool:
    for _ in range(100):
        try:
            if not p.is_running() or p.status() == "zombie":
                return False
        except Exception:  # noqa: BLE001 - gone
            return False
        time.sleep(0.1)
    return True
