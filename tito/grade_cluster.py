"""Grading a whole course: every (student, assignment) task on a Dask cluster, nothing lost, nothing twice.

``tito grade`` finds the tasks (:func:`tito.grade.find_tasks`), gives each a *content key*
(the submission's files, the student's package, the lessons it is graded against, the
grader's own source and the limits), and grades only the tasks whose key has no result yet
in the run's **journal**. Tasks run as :func:`tito.grade.grade_one` on Dask workers: a
``LocalCluster`` of N worker processes (one thread each, so N sandboxes at a time), or an
existing cluster given by its scheduler address. ``workers=0`` grades in this process
without Dask.

Guarantees, and how they are kept:

- **The client is the only writer.** Workers return results; this process appends each to
  the journal (a JSON line, flushed and fsynced) as it arrives, and writes the gradebook,
  CSV and feedback at the end. An exclusive lock on the journal keeps two runs apart.
- **A worker killed mid-task** (a machine lost, the OOM killer, a ``kill``): the scheduler
  gives its task to another worker. A task whose workers die ``tries`` times (Dask's
  ``distributed.scheduler.allowed-failures`` + 1) raises ``KilledWorker``: it is recorded as
  failed with that reason and not retried again unless asked (``retry_failed``).
- **Interrupted and started again**: every result already in the journal whose key still
  matches is reused; only missing or changed submissions are graded. The journal, the CSV and
  the gradebook end with exactly one result per (student, assignment).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .grade import GradeResult, GradingTask, TestResult, expected_checks, grade_one
from .manifest import Manifest
from .sandbox import Limits

# The grader's own source: a change to any of these can change a verdict, so it changes every key.
GRADER_SOURCES = ("grade.py", "probe.py", "sandbox.py", "_harness.py", "_gradprobe.py", "_cellrunner.py",
                  "export.py", "lesson.py")
JOURNAL_NAME = "grading-journal.jsonl"
DEFAULT_TRIES = 3


class GradingError(RuntimeError):
    """The run cannot start or go on (a cluster that cannot grade, a journal in use)."""


# --------------------------------------------------------------------------- content keys

def _hash_tree(h, root: Path) -> None:
    skip = {"__pycache__", ".ipynb_checkpoints"}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not skip & set(p.relative_to(root).parts):
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())


def grader_digest() -> str:
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in GRADER_SOURCES:
        p = here / name
        h.update(name.encode() + b"\0" + (p.read_bytes() if p.is_file() else b"-"))
    return h.hexdigest()


def course_digest(manifest: Manifest, task: GradingTask, limits: Limits, sandbox: bool) -> str:
    """What a module's verdicts depend on besides the submission: its lesson and those of its
    prerequisites (the reference package a notebook may import from), the grader, the limits."""
    by_number = {m.number: m for m in manifest.modules}
    need, todo = set(), [task.module.number]
    while todo:
        n = todo.pop()
        if n not in need:
            need.add(n)
            todo += list(by_number[n].prerequisites)
    h = hashlib.sha256(grader_digest().encode())
    h.update(json.dumps([asdict(limits), sandbox], sort_keys=True).encode())
    for n in sorted(need):
        p = manifest.lesson_path(by_number[n])
        h.update(str(n).encode() + b"\0" + (p.read_bytes() if p.is_file() else b"-"))
    return h.hexdigest()


def task_key(task: GradingTask, course: str) -> str:
    h = hashlib.sha256(course.encode())
    h.update(f"{task.student}\0{task.module.dirname}\0{task.note}\0{task.problem}\0".encode())
    if task.notebook is not None:
        h.update(task.notebook.name.encode() + b"\0")
        _hash_tree(h, task.notebook.parent)
    if task.package_root is not None:
        h.update(b"package\0")
        _hash_tree(h, task.package_root / "tinytorch")
    return h.hexdigest()


# --------------------------------------------------------------------------- results as JSON

def result_to_json(r: GradeResult) -> dict:
    return asdict(r)


def result_from_json(d: dict) -> GradeResult:
    d = dict(d)
    d["tests"] = [TestResult(**t) for t in d.get("tests", [])]
    return GradeResult(**d)


def failed_result(task: GradingTask, reason: str, key: str) -> GradeResult:
    """A submission the cluster could not grade: every test 0 with the reason (a row, never a gap)."""
    from .grade import test_cells
    from .lesson import read_cells

    m = task.module
    tests = [TestResult(c.grade_id, 0, float(c.nbgrader.get("points", 0) or 0), "error", reason)
             for c in test_cells(read_cells(task.lesson))]
    return GradeResult(task.student, m.code, m.dirname, m.slug, 0.0, sum(t.max_points for t in tests), tests=tests,
                       note=task.note, problem=reason, key=key)


class Journal:
    """Results as JSON lines, appended by the client as they arrive; the last line of a key wins,
    a line cut short by a crash is ignored. Held under an exclusive lock for the whole run."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(self._f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._f.close()
            raise GradingError(f"another `tito grade` is writing {path}; wait for it to finish") from None
        self.entries: dict[tuple[str, str], tuple[str, GradeResult]] = {}
        self.expected: dict[str, dict] = {}  # course digest -> the reference's check sequences
        self._f.seek(0)
        for line in self._f.read().splitlines():
            try:
                d = json.loads(line)
                if "expected" in d:
                    self.expected[d["course"]] = {str(k): [int(i) for i in v] for k, v in d["expected"].items()}
                    continue
                r = result_from_json(d["result"])
                self.entries[(r.student, r.assignment)] = (d["key"], r)
            except (ValueError, KeyError, TypeError):
                continue  # the tail of an interrupted write

    def get(self, task: GradingTask, key: str) -> GradeResult | None:
        found = self.entries.get((task.student, task.module.dirname))
        return found[1] if found is not None and found[0] == key else None

    def _append(self, d: dict) -> None:
        self._f.write(json.dumps(d) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def add(self, key: str, r: GradeResult) -> None:
        self._append({"key": key, "result": result_to_json(r)})
        self.entries[(r.student, r.assignment)] = (key, r)

    def add_expected(self, course: str, checks: dict) -> None:
        """The trusted reference run of a module (computed here, by the client), kept so a
        resumed run need not repeat it."""
        self._append({"course": course, "expected": checks})
        self.expected[course] = checks

    def compact(self, courses=None) -> None:
        """Rewrite with one line per (student, assignment) and per current module, atomically."""
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for course, checks in self.expected.items():
                if courses is None or course in courses:
                    f.write(json.dumps({"course": course, "expected": checks}) + "\n")
            for key, r in self.entries.values():
                f.write(json.dumps({"key": key, "result": result_to_json(r)}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def close(self) -> None:
        self._f.close()


# --------------------------------------------------------------------------- the cluster

def start_cluster(workers: int, tries: int = DEFAULT_TRIES):
    """A ``LocalCluster`` of ``workers`` processes with one thread each, and its client. A task
    may lose ``tries`` workers before it is given up (``KilledWorker``)."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": max(0, tries - 1)}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.CRITICAL)
    return Client(cluster), cluster


def _grade_on_worker(task: GradingTask, modules, limits: Limits, expected, sandbox: bool) -> GradeResult:
    """The task as a worker runs it: the sandboxed grading of one submission, nothing written."""
    import warnings

    from .sandbox import SandboxWarning

    warnings.simplefilter("ignore", SandboxWarning)
    r = grade_one(task, modules, limits, expected, sandbox)
    r.worker = f"{socket.gethostname()}:{os.getpid()}"
    return r


def _worker_report(course: str, submissions: str, lesson: str | None) -> dict:
    """What the client checks about a worker; also warms it up (the first lesson parse imports
    jupytext: seconds that would otherwise be charged to the first submission it grades)."""
    from .lesson import read_cells
    from .sandbox import bwrap_works

    if lesson and Path(lesson).is_file():
        read_cells(Path(lesson))
    return {"grader": grader_digest(), "bwrap": bwrap_works(), "course": Path(course, "modules").is_dir(),
            "submissions": Path(submissions).is_dir(), "host": socket.gethostname()}


def check_workers(client, manifest: Manifest, submissions: Path, sandbox: bool, lesson: Path | None = None) -> list[str]:
    """Every worker must run this grader and see the course and the submissions at the same
    paths (a shared filesystem). Returns warnings; raises GradingError on what cannot work."""
    try:
        reports = client.run(_worker_report, str(manifest.root.resolve()), str(submissions.resolve()),
                             str(lesson) if lesson else None)
    except Exception as e:  # noqa: BLE001 - typically: tito cannot be imported on a worker
        raise GradingError(f"the cluster's workers cannot run tito's grader ({type(e).__name__}: {e}); install the "
                           "same tinytorch[tito,grading] on every worker") from None
    if not reports:
        raise GradingError("the cluster has no workers")
    mine = grader_digest()
    problems, warnings_ = [], []
    for addr, rep in sorted(reports.items()):
        if rep["grader"] != mine:
            problems.append(f"{addr} runs a different version of tito's grader")
        if not rep["course"] or not rep["submissions"]:
            problems.append(f"{addr} ({rep['host']}) does not see the course checkout and the submissions at "
                            f"{manifest.root} and {submissions}")
        if sandbox and not rep["bwrap"]:
            warnings_.append(f"{addr} ({rep['host']}) has no working bubblewrap: submissions graded there run "
                             "under resource limits only")
    if problems:
        raise GradingError("; ".join(problems))
    return warnings_


# --------------------------------------------------------------------------- one run

@dataclass
class GradingRun:
    results: list[GradeResult] = field(default_factory=list)  # one per task, in the order found
    fresh: list[bool] = field(default_factory=list)  # results[k] was graded in this run (not kept from the journal)
    graded: int = 0  # graded in this run
    reused: int = 0  # unchanged since a result in the journal
    failed: int = 0  # could not be graded (see each result's ``problem``)
    interrupted: bool = False
    seconds: float = 0.0
    workers: int = 0
    where: str = ""  # "this process", "LocalCluster of 2 workers", "tcp://..."
    warnings: list[str] = field(default_factory=list)


def is_failure(r: GradeResult) -> bool:
    return bool(r.problem)


def grade_course(manifest: Manifest, submissions: Path, limits: Limits | None = None, only=None,
                 sandbox: bool = True, workers: int = 0, scheduler: str | None = None, client=None,
                 journal: Path | None = None, regrade: bool = False, retry_failed: bool = False,
                 tries: int = DEFAULT_TRIES, on_start: Callable[[int, int], None] | None = None,
                 on_result: Callable[[GradeResult, bool], None] | None = None) -> GradingRun:
    """Grade every submission under ``submissions`` that has no current result in the journal.

    Where: ``client`` (a ``distributed.Client``), else ``scheduler`` (an address), else a new
    ``LocalCluster`` of ``workers`` processes, else (``workers=0``) in this process.
    ``on_start(total, pending)`` is called once the work is known; ``on_result(result, reused)``
    once per task. A KeyboardInterrupt stops the run, keeps every result already received in
    the journal and returns with ``interrupted`` set.
    """
    from .grade import find_tasks

    limits = limits or Limits()
    t0 = time.perf_counter()
    run = GradingRun()
    tasks = find_tasks(manifest, submissions, only)
    book = Journal(journal or submissions / JOURNAL_NAME)
    try:
        courses, keys, pending, results = {}, [], [], {}
        for i, task in enumerate(tasks):
            code = task.module.code
            if code not in courses:
                courses[code] = course_digest(manifest, task, limits, sandbox)
            key = task_key(task, courses[code])
            keys.append(key)
            old = None if regrade else book.get(task, key)
            if old is not None and retry_failed and is_failure(old):
                old = None
            if old is None:
                pending.append(i)
            else:
                results[i] = old
        if on_start is not None:
            on_start(len(tasks), len(pending))
        for i in results:
            run.reused += 1
            if on_result is not None:
                on_result(results[i], True)

        # Start the cluster while the trusted reference runs happen here, once per module (never
        # on a worker a submission used; kept in the journal for a resumed run).
        remote = bool(pending) and not (workers == 0 and client is None and scheduler is None)
        starter = _Starter(client, scheduler, min(workers, len(pending)) or 1, tries) if remote else None
        expected = {}
        try:
            for i in pending:
                task = tasks[i]
                code = task.module.code
                if task.notebook is not None and code not in expected:
                    if courses[code] not in book.expected:
                        book.add_expected(courses[code], expected_checks(task.lesson, manifest.root, limits))
                    expected[code] = book.expected[courses[code]]
        except BaseException:
            if starter is not None:
                starter.close()
            raise

        fresh = set()

        def record(i: int, r: GradeResult):
            fresh.add(i)
            r.key = keys[i]
            book.add(keys[i], r)
            results[i] = r
            run.graded += 1
            if on_result is not None:
                on_result(r, False)

        try:
            if pending and workers == 0 and client is None and scheduler is None:
                run.where, run.workers = "this process", 1
                for i in pending:
                    record(i, _grade_on_worker(tasks[i], manifest.modules, limits,
                                               expected.get(tasks[i].module.code), sandbox))
            elif pending:
                _grade_on_dask(run, manifest, submissions, tasks, keys, pending, limits, expected, sandbox, starter,
                               record)
        except KeyboardInterrupt:
            run.interrupted = True
        finally:
            if starter is not None:
                starter.close()
        book.compact(set(courses.values()))
    finally:
        book.close()
    done = [i for i in range(len(tasks)) if i in results]
    run.results = [results[i] for i in done]
    run.fresh = [i in fresh for i in done]
    run.failed = sum(is_failure(r) for r in run.results)
    run.seconds = time.perf_counter() - t0
    return run


class _Starter:
    """Connects to (or starts) the cluster in a thread, so the wait overlaps the reference runs."""

    def __init__(self, client, scheduler, workers, tries):
        import threading

        self.client, self.scheduler, self.cluster, self.error, self.own = client, scheduler, None, None, False
        self._thread = None
        if client is None:
            self._thread = threading.Thread(target=self._start, args=(workers, tries), daemon=True)
            self._thread.start()

    def _start(self, workers, tries):
        from distributed import Client

        try:
            if self.scheduler:
                self.client = Client(self.scheduler, timeout="30s")
            else:
                self.client, self.cluster = start_cluster(workers, tries)
            self.own = True
        except Exception as e:  # noqa: BLE001 - reported by get()
            self.error = e

    def get(self):
        if self._thread is not None:
            self._thread.join()
        if self.error is not None:
            where = f"the Dask scheduler at {self.scheduler}" if self.scheduler else "a local Dask cluster"
            raise GradingError(f"cannot reach {where}: {type(self.error).__name__}: {self.error}")
        return self.client

    def close(self):
        if self._thread is not None:
            self._thread.join()
        if self.own and self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.own, self.cluster = False, None


def _grade_on_dask(run, manifest, submissions, tasks, keys, pending, limits, expected, sandbox, starter, record):
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    client = starter.get()
    run.warnings += check_workers(client, manifest, submissions, sandbox, tasks[pending[0]].lesson)
    run.workers = len(client.scheduler_info().get("workers", {}))
    run.where = (f"LocalCluster of {run.workers} workers" if starter.cluster is not None
                 else f"the cluster at {client.scheduler.address} ({run.workers} workers)")
    tries = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures) + 1
    futures = {}
    for i in pending:
        t = tasks[i]
        f = client.submit(_grade_on_worker, t, manifest.modules, limits, expected.get(t.module.code), sandbox,
                          key=f"tito-grade/{t.student}/{t.module.dirname}/{keys[i][:16]}", pure=False, retries=1)
        futures[f.key] = (i, f)
    try:
        for f in as_completed([f for _, f in futures.values()]):
            i = futures[f.key][0]
            try:
                r = f.result()
            except KilledWorker:
                r = failed_result(tasks[i], f"not graded: the worker grading it died {tries} times (the submission "
                                  "kills its grader or exhausts its memory); look at it by hand", keys[i])
            except Exception as e:  # noqa: BLE001 - the grader itself failed twice on this submission
                r = failed_result(tasks[i], f"not graded: the grader failed on it twice ({type(e).__name__}: "
                                  f"{str(e)[:300]})", keys[i])
            record(i, r)
            f.release()
    except BaseException:
        client.cancel([f for _, f in futures.values()], force=True)
        raise
