"""Autograding you can trust: nbgrader's cells and points, verdicts decided outside the sandbox.

For one submission of one assignment (:func:`grade_one`, the unit a parallel scheduler
calls): the student's notebook is put back into the lesson's shape (locked cells from the
reference lesson; every graded test cell replaced by its *probe*, hidden tests included,
see :mod:`tito.probe`), run cell by cell in the sandbox (:mod:`tito.sandbox`), and each
graded cell earns its points only if it completed, produced exactly the observations the
reference solution produces, and every observation satisfies its check, evaluated here.

Submissions are read in nbgrader's course layout ``submitted/<student>/<assignment>/`` or
as whole workspaces ``<student>/modules/NN_slug/slug.ipynb``; results go to nbgrader's own
gradebook, a per-test CSV and per-student feedback files (:mod:`tito.gradebook`). A whole
course runs on a Dask cluster, resumably, through :mod:`tito.grade_cluster`.
"""
from __future__ import annotations

import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .export import HEADER, export_cells, export_provided, package_init_files, write_files
from .lesson import Cell, LessonError, read_cells
from .manifest import Manifest, ModuleSpec
from .probe import Probe, ProbeError, build_probe, decode, evaluate, solution_names
from .sandbox import Limits, NotebookCell, run_notebook


@dataclass
class GradingTask:
    """One submission of one assignment: everything :func:`grade_one` needs (picklable)."""
    student: str
    module: ModuleSpec
    lesson: Path  # the reference lesson (instructor side only: never shown to the sandbox)
    notebook: Path | None  # the submitted notebook (None: nothing to grade, see ``problem``)
    package_root: Path | None = None  # a folder holding the student's own tinytorch/
    reference_root: Path | None = None  # the course checkout, for prerequisite modules
    note: str = ""  # how the notebook was matched ("named 'tensor (1).ipynb'")
    problem: str = ""


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class
    grade_id: str
    points: float
    max_points: float
    status: str  # passed | failed | timeout | error | not run
    message: str = ""  # safe to show the student: no hidden test source or expected value
    hidden: bool = False  # the failure was in a hidden test


@dataclass
class GradeResult:
    student: str
    module: str  # "01"
    assignment: str  # nbgrader assignment name: "01_tensor"
    notebook: str  # nbgrader notebook name: "tensor"
    score: float
    max_score: float
    tests: list[TestResult] = field(default_factory=list)
    package: str = ""  # whose tinytorch the notebook imported earlier modules from
    note: str = ""
    problem: str = ""
    sandbox: str = ""  # "bubblewrap" or "resource limits only"
    tampered: list[str] = field(default_factory=list)
    seconds: float = 0.0
    worker: str = ""  # host:pid of the process that graded it
    key: str = ""  # the content key it was graded under (tito.grade_cluster.task_key)


def test_cells(lesson_cells: list[Cell]) -> list[Cell]:
    return [c for c in lesson_cells if c.kind == "code" and c.is_graded and not c.is_solution]


def probes_for(lesson_cells: list[Cell], strict: bool = True) -> dict[str, Probe]:
    """A probe per graded test cell. ``strict=False`` (a student notebook, whose hidden checks
    are gone) skips a cell left without a visible check: it then runs as plain code."""
    out = {}
    names = solution_names([c.source for c in lesson_cells if c.kind == "code" and c.is_solution])
    for k, c in enumerate(test_cells(lesson_cells)):
        try:
            out[c.grade_id] = build_probe(c.grade_id, c.source, first_id=1000 * k, learner_names=names)
        except ProbeError:
            if strict:
                raise
    return out


def assemble(submitted: list[Cell], reference: list[Cell], probes: dict[str, Probe]) -> list[NotebookCell]:
    """The cells to run: the student's solution and scratch cells, the reference lesson's
    locked cells, and a probe in place of every graded test cell. A locked or test cell the
    student deleted is put back after the cell that precedes it in the lesson."""
    ref_by_id = {c.grade_id: c for c in reference if c.grade_id}
    locked = {gid for gid, c in ref_by_id.items() if not c.is_solution and c.kind == "code"}

    def convert(c: Cell) -> NotebookCell:
        gid = c.grade_id
        if gid in probes:
            return NotebookCell(gid, probes[gid].code, probe=True)
        if gid in locked:
            return NotebookCell(gid, ref_by_id[gid].source)
        return NotebookCell(c.label(), c.source)

    out: list[NotebookCell] = []
    seen = set()
    for c in submitted:
        if c.kind != "code" or c.grade_id in seen:
            continue
        if c.grade_id and c.grade_id in ref_by_id:
            seen.add(c.grade_id)
        out.append(convert(c))
    order = [c.grade_id for c in reference if c.grade_id]
    for i, gid in enumerate(order):
        if gid in seen or gid not in locked:
            continue
        before = set(order[:i])
        pos = max((k + 1 for k, cell in enumerate(out) if cell.label in before), default=0)
        out.insert(pos, convert(ref_by_id[gid]))
        seen.add(gid)
    return out


def _stage_provided(task: GradingTask, manifest_modules, stage: Path) -> None:
    """The course's provided source files (module 08's loaders) of the graded module and its
    prerequisites, from the reference course: they are the course's code, never the student's."""
    ref = Manifest(root=task.reference_root or Path(), modules=tuple(manifest_modules))
    by_number = {m.number: m for m in manifest_modules}
    for n in sorted(_needed(task.module, by_number) | {task.module.number}):
        lesson = ref.lesson_path(by_number[n])
        files = export_provided(lesson.parent, lesson.name, by_number[n].lesson_relpath.parent.as_posix())
        write_files(files, stage)
        for rel in files:
            for parent in rel.parents:
                if parent != Path(".") and not (stage / parent / "__init__.py").is_file():
                    write_files({parent / "__init__.py": HEADER.format(source="modules/modules.toml")}, stage)


def _needed(module: ModuleSpec, by_number: dict) -> set[int]:
    need, todo = set(), list(module.prerequisites)
    while todo:
        n = todo.pop()
        if n not in need:
            need.add(n)
            todo += list(by_number[n].prerequisites)
    return need


def _stage_package(task: GradingTask, manifest_modules, stage: Path) -> str:
    """The tinytorch the notebook imports earlier modules from, copied into ``stage``."""
    if task.package_root is not None and (task.package_root / "tinytorch" / "__init__.py").is_file():
        shutil.copytree(task.package_root / "tinytorch", stage / "tinytorch",
                        ignore=shutil.ignore_patterns("__pycache__"), symlinks=False)
        _stage_provided(task, manifest_modules, stage)
        return "student's"
    # Only the prerequisite modules of the reference package: never the graded module's code.
    by_number = {m.number: m for m in manifest_modules}
    need = _needed(task.module, by_number)
    files = []
    ref = Manifest(root=task.reference_root or Path(), modules=tuple(manifest_modules))
    for n in sorted(need):
        m = by_number[n]
        rels = [Path(*m.package.split(".")).with_suffix(".py")]
        if ref.lesson_path(m).is_file():  # every file the lesson exports (module 01: also tinytorch/testing.py)
            rels = list(export_cells(read_cells(ref.lesson_path(m)), m.lesson_relpath.as_posix(), m.export_target))
        for rel in rels:
            src = ref.root / rel
            if src.is_file():
                (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, stage / rel)
                files.append(rel)
    write_files(package_init_files(files, ref), stage)
    _stage_provided(task, manifest_modules, stage)
    return "reference (prerequisites only)" if need else "none needed"


def _decode_obs(kind, payload):
    if kind == "raised":
        exc, values = payload
        return (decode(exc) if exc is not None else None), [decode(v) for v in values]
    return [decode(v) for v in payload]


def judge(probe: Probe, run, expected_ids: list[int] | None, points: float) -> TestResult:
    """The verdict on one graded cell from what the sandbox reported."""
    gid = probe.grade_id
    if run.status == "timeout":
        where = run.stuck_at.split(":")
        msg = run.error
        if len(where) == 3 and where[0] != gid:
            msg += f"; it was running line {where[1]} of cell {where[0]} (in {where[2]})"
        return TestResult(gid, 0, points, "timeout", msg)
    if run.status in ("crashed", "not run"):
        return TestResult(gid, 0, points, "error" if run.status == "crashed" else "not run", run.error)
    seen_hidden = False
    ids = []
    for item in run.observations:
        try:
            cid, kind, payload = item
            check = probe.checks[cid]
            value = _decode_obs(kind, payload)
        except Exception:  # noqa: BLE001 - a malformed observation fails the cell
            return TestResult(gid, 0, points, "failed", "the test's observations were damaged")
        ids.append(cid)
        verdict = evaluate(check, (kind, value))
        if not verdict.passed:
            if check.hidden:
                calls = f" (it calls {', '.join(check.exercises)})" if check.exercises else ""
                return TestResult(gid, 0, points, "failed", f"a hidden test in this cell failed{calls}", hidden=True)
            return TestResult(gid, 0, points, "failed", f"line {check.line}: `{check.source}` failed: {verdict.message}")
        seen_hidden |= check.hidden
    if run.status != "ok":
        last = (run.error.strip().splitlines() or ["error"])[-1]
        return TestResult(gid, 0, points, "error", last)
    if expected_ids is not None and ids != expected_ids:
        return TestResult(gid, 0, points, "failed", f"the test ran {len(ids)} of its {len(expected_ids)} checks "
                          "(the code skipped or repeated some)")
    return TestResult(gid, points, points, "passed")


_EXPECTED: dict[tuple, dict[str, list[int]]] = {}


def expected_checks(lesson: Path, reference_root: Path, limits: Limits) -> dict[str, list[int]]:
    """The sequence of checks every graded cell runs on the reference solution (a trusted
    run: the reference lesson, no student code). A check the reference fails means the
    probe does not match the test: that is an error in the grader, reported loudly."""
    key = (str(lesson), lesson.stat().st_mtime_ns)
    if key in _EXPECTED:
        return _EXPECTED[key]
    cells = read_cells(lesson)
    probes = probes_for(cells)
    nb = assemble(cells, cells, probes)
    with tempfile.TemporaryDirectory(prefix="tito-ref-") as tmp:
        shutil.copytree(lesson.parent, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        runs = run_notebook(nb, Path(tmp), reference_root, limits, sandbox=False)
    out = {}
    for cell, run in zip(nb, runs):
        if cell.probe:
            probe = probes[cell.label]
            result = judge(probe, run, None, 1)
            if result.status != "passed":
                raise RuntimeError(f"{lesson.name}: the reference solution fails its own probe {cell.label}: {result.message}")
            out[cell.label] = [o[0] for o in run.observations]
    _EXPECTED[key] = out
    return out


_REFERENCE: dict[tuple, tuple[list[Cell], dict[str, Probe]]] = {}


def _reference(lesson: Path) -> tuple[list[Cell], dict[str, Probe]]:
    """The reference lesson's cells and probes, parsed once per process (a worker grades many
    submissions of the same lesson)."""
    key = (str(lesson), lesson.stat().st_mtime_ns)
    if key not in _REFERENCE:
        cells = read_cells(lesson)
        _REFERENCE[key] = (cells, probes_for(cells))
    return _REFERENCE[key]


def grade_one(task: GradingTask, manifest_modules, limits: Limits | None = None,
              expected: dict[str, list[int]] | None = None, sandbox: bool = True) -> GradeResult:
    """Grade one submission of one assignment; nothing here trusts the submission's process."""
    from .sandbox import bwrap_works

    limits = limits or Limits()
    t0 = time.perf_counter()
    m = task.module
    result = GradeResult(task.student, m.code, m.dirname, m.slug, 0.0, float(m.points), note=task.note,
                         problem=task.problem, sandbox="bubblewrap" if sandbox and bwrap_works() else "resource limits only")
    reference, probes = _reference(task.lesson)
    graded = test_cells(reference)
    points = {c.grade_id: float(c.nbgrader.get("points", 0) or 0) for c in graded}
    result.max_score = sum(points.values())
    if task.notebook is None:
        result.tests = [TestResult(g, 0, p, "not run", task.problem) for g, p in points.items()]
        return result
    try:
        submitted = read_cells(task.notebook)
    except LessonError as e:
        result.problem = str(e).replace(str(task.notebook.parent), "").lstrip("/")
        result.tests = [TestResult(g, 0, p, "not run", "the notebook could not be read") for g, p in points.items()]
        return result
    cells = assemble(submitted, reference, probes)
    with tempfile.TemporaryDirectory(prefix="tito-grade-") as tmp:
        work, stage = Path(tmp, "work"), Path(tmp, "pkg")
        shutil.copytree(task.notebook.parent, work, ignore=shutil.ignore_patterns("__pycache__", "*.ipynb_checkpoints"),
                        symlinks=False, ignore_dangling_symlinks=True)
        stage.mkdir()
        result.package = _stage_package(task, manifest_modules, stage)
        runs = run_notebook(cells, work, stage, limits, sandbox=sandbox)
    by_label = {}
    for cell, run in zip(cells, runs):
        if cell.probe:
            by_label[cell.label] = run
        result.tampered += [t for t in run.tampered if t not in result.tampered]
    for c in graded:
        run = by_label.get(c.grade_id)
        if run is None:
            result.tests.append(TestResult(c.grade_id, 0, points[c.grade_id], "not run"))
            continue
        ids = expected.get(c.grade_id) if expected is not None else None
        result.tests.append(judge(probes[c.grade_id], run, ids, points[c.grade_id]))
    result.score = sum(t.points for t in result.tests)
    result.seconds = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------- finding submissions

def _match_notebook(folder: Path, m: ModuleSpec) -> tuple[Path | None, str, str]:
    """(notebook, note, problem) for module ``m`` in ``folder``: the exact name, or one
    unambiguous near name (``tensor (1).ipynb``, ``tensor-Copy1.ipynb``, ``Tensor.ipynb``)."""
    exact = folder / f"{m.slug}.ipynb"
    if exact.is_file():
        return exact, "", ""
    found = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    norm = lambda s: re.sub(r"[^a-z0-9]", "", s.lower())  # noqa: E731
    near = [p for p in found if norm(p.stem).startswith(norm(m.slug)) or norm(m.slug) in norm(p.stem)]
    near = [p for p in near if re.fullmatch(rf"{re.escape(norm(m.slug))}(copy)?\d*", norm(p.stem))] or near
    if len(near) == 1:
        return near[0], f"graded {near[0].name} (expected {exact.name})", ""
    if len(near) > 1:
        return None, "", f"several notebooks could be {exact.name}: {', '.join(p.name for p in near)}; keep one"
    if found:
        return None, "", f"no {exact.name}; the folder holds {', '.join(p.name for p in found)}"
    return None, "", f"no notebook in the submission (expected {exact.name})"


def find_tasks(manifest: Manifest, submissions: Path, only: list[ModuleSpec] | None = None) -> list[GradingTask]:
    """Every (student, assignment) to grade, from nbgrader's layout or from workspaces.

    nbgrader: ``submissions`` is the course directory (holding ``submitted/``) or the
    ``submitted/`` folder itself; ``<student>/<assignment>/`` where the assignment is named
    ``01_tensor`` (or ``01`` / ``tensor``). Workspaces: ``<student>/modules/01_tensor/``.
    A folder that holds no recognisable assignment becomes a row with the reason.
    """
    root = submissions / "submitted" if (submissions / "submitted").is_dir() else submissions
    modules = only if only is not None else manifest.existing_lessons()
    tasks = []
    for student_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        student = student_dir.name
        workspace = (student_dir / "modules").is_dir()
        own_pkg = student_dir if (student_dir / "tinytorch" / "__init__.py").is_file() else None
        found_any = False
        for m in modules:
            if workspace:
                folder = student_dir / "modules" / m.dirname
            else:
                folder = next((student_dir / n for n in (m.dirname, m.code, m.slug, str(m.number)) if (student_dir / n).is_dir()), None)
            if folder is None or not folder.is_dir():
                continue
            found_any = True
            nb, note, problem = _match_notebook(folder, m)
            tasks.append(GradingTask(student, m, manifest.lesson_path(m), nb, own_pkg, manifest.root, note, problem))
        if not found_any:
            names = ", ".join(sorted(p.name for p in student_dir.iterdir())[:8]) or "nothing"
            m = modules[0] if len(modules) == 1 else None
            if m is not None:
                tasks.append(GradingTask(student, m, manifest.lesson_path(m), None, None, manifest.root, "",
                                         f"no assignment folder {m.dirname}/ in the submission (found: {names})"))
    return tasks


def grade_submissions(manifest: Manifest, submissions: Path, limits: Limits | None = None,
                      only: list[ModuleSpec] | None = None, sandbox: bool = True, progress=None) -> list[GradeResult]:
    limits = limits or Limits()
    tasks = find_tasks(manifest, submissions, only)
    expected = {}
    results = []
    for task in tasks:
        key = task.module.code
        if key not in expected and task.notebook is not None:
            expected[key] = expected_checks(task.lesson, manifest.root, limits)
        results.append(grade_one(task, manifest.modules, limits, expected.get(key), sandbox))
        if progress is not None:
            progress(results[-1])
    return results
