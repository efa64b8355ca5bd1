"""The learner's workspace: student notebooks, the learner's own ``tinytorch``, progress.

Layout of a workspace made by ``tito init DIR``::

    DIR/
      README.md                  what to do next
      progress.json              completed modules (written atomically)
      modules/NN_slug/slug.ipynb the student notebooks (solutions are stubs)
      tinytorch/                 the learner's package: fills as modules are completed (with
                                 `tito init DIR --start NN`, modules before NN are the reference
                                 solution, recorded as provided in progress.json); the
                                 course's provided source files (module 08's loaders) are
                                 in it from the start
      .tinytorch/workspace.json  which course this workspace belongs to
      .tinytorch/pristine/       untouched student notebooks, for `tito module reset`
      .tinytorch/backups/        the learner's notebooks saved before a reset

Python started anywhere inside a workspace imports only this package: the course's package
hands over to it (see WORKSPACE_GUARD in tito/export.py). Every test runs the learner's code:
their notebook, and their exported package (staged in a temporary directory first, so that
nothing reaches ``tinytorch/`` unless it passes).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import progress as progress_mod
from .export import ExportError, atomic_write, export_cells, export_provided, package_init_files, write_files
from .lesson import Cell, LessonError, read_cells
from .manifest import Manifest, ModuleSpec, load_manifest
from .release import notebook_relpath, release
from .runner import CellResult, RunReport, run_process
from .sandbox import DEFAULT_CELL_TIMEOUT

META_DIR = ".tinytorch"
CONFIG = "workspace.json"
PROGRESS = "progress.json"


class WorkspaceError(Exception):
    """Something a learner can act on: the message says what and how."""


@dataclass
class Workspace:
    root: Path
    manifest: Manifest

    @property
    def progress_path(self) -> Path:
        return self.root / PROGRESS

    @property
    def package_dir(self) -> Path:
        return self.root / "tinytorch"

    def notebook(self, m: ModuleSpec) -> Path:
        return self.root / notebook_relpath(m)

    def pristine(self, m: ModuleSpec) -> Path:
        return self.root / META_DIR / "pristine" / notebook_relpath(m)

    def progress(self) -> progress_mod.Progress:
        return progress_mod.load(self.progress_path, self.manifest)

    def missing_prerequisites(self, m: ModuleSpec) -> list[ModuleSpec]:
        done = self.progress()
        return [self.manifest.module(p) for p in m.prerequisites if not done.is_done(p)]


# --------------------------------------------------------------------------- init / find

def provided_modules(manifest: Manifest, start: ModuleSpec | None) -> list[ModuleSpec]:
    """The modules before ``start``: a learner who starts there gets their reference solution."""
    if start is None:
        return []
    lessons = manifest.existing_lessons()
    if start not in lessons:
        raise WorkspaceError(f"Module {start.code} {start.slug} has no lesson yet: it cannot be a starting point.")
    before = [m for m in manifest.modules if m.number < start.number]
    missing = [m for m in before if m not in lessons]
    if missing:
        raise WorkspaceError(f"Cannot start at {start.code}: modules " + ", ".join(m.code for m in missing)
                             + " before it have no lesson to provide.")
    return before


def init_workspace(dest: Path, manifest: Manifest, start: ModuleSpec | None = None) -> Workspace:
    """A new workspace. With ``start``, the modules before it are provided: their reference
    solution is exported into the workspace's package and recorded as provided, so the learner
    begins at ``start`` and everything still imports from inside the workspace."""
    dest = Path(dest).resolve()
    if dest.exists() and any(dest.iterdir()):
        raise WorkspaceError(f"{dest} exists and is not empty: choose a new directory for the workspace.")
    lessons = manifest.existing_lessons()
    if not lessons:
        raise WorkspaceError(f"The course at {manifest.root} has no lessons yet.")
    provided = provided_modules(manifest, start)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Build next to the destination and move it into place at the end: a failed init leaves nothing.
    build = Path(tempfile.mkdtemp(prefix=f".{dest.name}.init-", dir=dest.parent))
    try:
        release(manifest, build, lessons)
        for m in lessons:
            src = build / notebook_relpath(m)
            pristine = build / META_DIR / "pristine" / notebook_relpath(m)
            pristine.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, pristine)
        package: dict[Path, str] = {}
        for m in provided:  # the reference solution, exported like a learner's completed module
            try:
                package.update(export_cells(read_cells(manifest.lesson_path(m)), m.lesson_relpath.as_posix(),
                                            m.export_target))
            except (LessonError, ExportError) as e:
                raise WorkspaceError(f"Cannot provide module {m.code}: {e}") from None
        for m in lessons:  # provided source files (module 08's loaders) are the course's code, not the learner's
            folder = build / notebook_relpath(m).parent
            try:
                package.update(export_provided(folder, notebook_relpath(m).name, notebook_relpath(m).parent.as_posix()))
            except ExportError as e:
                raise WorkspaceError(f"Cannot provide the files of module {m.code}: {e}") from None
        install_package_files(build, package, manifest, data_from=manifest.root)
        (build / META_DIR).mkdir(exist_ok=True)
        atomic_write(build / META_DIR / CONFIG, json.dumps(
            {"format": 1, "course": str(manifest.root), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
            indent=2) + "\n")
        progress_mod.save(build / PROGRESS, progress_mod.Progress())
        progress_mod.provide(build / PROGRESS, manifest, [m.number for m in provided])
        first = start or lessons[0]
        atomic_write(build / "README.md", (
            "# My TinyTorch workspace\n\n"
            "Your notebooks are in `modules/`; the package you build fills `tinytorch/` as you\n"
            "complete modules. From this directory:\n\n"
            f"    tito module start {first.code}     open the first module\n"
            f"    tito module test {first.code}      run its tests on your code\n"
            f"    tito module complete {first.code}  test, then export your code into tinytorch/\n"
            "    tito status                see progress and what is next\n"
            + (f"\nModules {provided[0].code}-{provided[-1].code} are provided: their reference solution is in\n"
               "`tinytorch/` so that you can start here. Complete one yourself at any time to replace it.\n"
               if provided else "")
        ))
        if dest.exists():
            dest.rmdir()
        os.replace(build, dest)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return Workspace(dest, manifest)


def find_workspace(start: Path | None = None) -> Workspace:
    env = os.environ.get("TINYTORCH_WORKSPACE")
    here = Path(start or Path.cwd()).resolve()
    candidates = [Path(env)] if env else [here, *here.parents]
    for p in candidates:
        cfg = p / META_DIR / CONFIG
        if cfg.is_file():
            try:
                data = json.loads(cfg.read_text(encoding="utf-8"))
                course = Path(data["course"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise WorkspaceError(f"{cfg} is damaged ({e}); it must name the course directory.") from None
            try:
                manifest = load_manifest(course)
            except Exception as e:
                raise WorkspaceError(f"This workspace's course ({course}) cannot be read: {e}") from None
            return Workspace(p.resolve(), manifest)
    raise WorkspaceError(
        "This is not a TinyTorch workspace (no .tinytorch/workspace.json here or above). "
        "Create one with `tito init DIR` and run tito inside it."
    )


# --------------------------------------------------------------------------- test / complete

HINTS = [
    ("NotImplementedError", "A solution cell still raises NotImplementedError: replace the stub "
     "`raise NotImplementedError()` with your implementation and run the cell again."),
    ("'numpy.ndarray' object has no attribute", "Something returned a NumPy array where a Tensor was "
     "expected: wrap results as Tensor(...) so that later modules (and gradients) can use them."),
    ("NameError", "A name is not defined: an earlier cell probably failed first, or was renamed. "
     "Fix the first failing cell."),
    ("Shape mismatch", "Check the shapes: print x.shape before the failing line."),
    ("SyntaxError", "Python could not read a cell: fix the line shown, then test again."),
    ("ModuleNotFoundError: No module named 'tinytorch", "An import of an earlier module failed: "
     "complete the prerequisite modules first (tito status)."),
]


def hint_for(text: str) -> str | None:
    for needle, hint in HINTS:
        if needle in text:
            return hint
    return None


@dataclass
class TestOutcome:
    module: ModuleSpec
    report: RunReport | None = None
    syntax_errors: list[str] = field(default_factory=list)
    export_error: str = ""
    integration_ok: bool | None = None  # None: the module has no integration tests
    integration_output: str = ""
    package_origin: str = ""
    staged_files: dict[Path, str] = field(default_factory=dict)
    restored: list[str] = field(default_factory=list)  # locked cells put back for the run
    sandbox_warning: str = ""
    answers: Path | None = None  # the Reflect answer sketches, written when the module is completed

    @property
    def passed(self) -> bool:
        return (not self.syntax_errors and not self.export_error and self.report is not None
                and self.report.passed and self.integration_ok is not False)

    def failure_summary(self) -> list[str]:
        """One line per failure, naming the test, what went wrong and a hint."""
        lines = list(self.syntax_errors)
        if self.export_error:
            lines.append(f"export failed: {self.export_error}")
        if self.report is not None:
            if self.report.killed:
                lines.append(self.report.killed)
            if not self.report.graded:
                lines.append("the notebook has no graded test cells")
            for c in self.report.failed_graded:
                last = (c.error.strip().splitlines() or ["did not run"])[-1]
                lines.append(f"FAILED {c.label} ({c.points:g} pts): {last}")
            first_error = next((c for c in self.report.errors if not c.graded), None)
            if first_error is not None:
                last = first_error.error.strip().splitlines()[-1]
                lines.append(f"first error outside the tests: {first_error.label}: {last}")
        if self.integration_ok is False:
            lines.append("integration tests on your exported package FAILED:")
            lines += ["    " + l for l in self.integration_output.strip().splitlines()[-15:]]
        all_text = "\n".join(lines) + "\n" + "\n".join(c.error for c in (self.report.cells if self.report else []))
        hint = hint_for(all_text)
        if hint:
            lines.append(f"hint: {hint}")
        return lines


def _syntax_errors(cells: list[Cell]) -> list[str]:
    from .probe import strip_magics

    errors = []
    for c in cells:
        if c.kind != "code":
            continue
        try:
            compile(strip_magics(c.source), c.label(), "exec")
        except SyntaxError as e:
            errors.append(f"SyntaxError in {c.label()} line {e.lineno}: {e.msg}: {(e.text or '').strip()}")
    return errors


def install_package_files(root: Path, files: dict[Path, str], manifest: Manifest,
                          data_from: Path | None = None) -> None:
    """Install exported module ``files`` (paths relative to ``root``) into the package
    ``root/tinytorch``, next to the modules already there, and regenerate its ``__init__``
    files for all of them. ``data_from``: a folder whose ``package_data`` folders (the
    manifest's bundled datasets and weights: data, not learner code) are copied in too. The one
    way a package is made: ``tito init``, the staged copy that ``tito module test`` runs, and
    ``tito module complete``."""
    pkg = root / "tinytorch"
    existing = [p.relative_to(root) for p in pkg.rglob("*.py")] if pkg.is_dir() else []
    write_files(files, root)
    write_files(package_init_files(existing + list(files), manifest), root)
    for rel in manifest.package_data if data_from is not None else ():
        src, dest = data_from / rel, root / rel
        if src.is_dir() and not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(src, dest)


def _stage_package(ws: Workspace, files: dict[Path, str], stage: Path) -> None:
    """Copy the learner's package into ``stage`` and add this module's export to it (the data
    is copied too: the sandbox sees nothing outside the staged package)."""
    if ws.package_dir.is_dir():
        shutil.copytree(ws.package_dir, stage / "tinytorch",
                        ignore=shutil.ignore_patterns("__pycache__", "files"))
    install_package_files(stage, files, ws.manifest, data_from=ws.package_dir.parent)


def nbgrader_checksum(source: str, cell_type: str, meta: dict) -> str:
    """nbgrader 0.9's ``compute_checksum`` of a cell with this source and nbgrader metadata
    (reimplemented: importing nbgrader costs seconds on every ``tito module test``)."""
    import hashlib

    grade, solution = bool(meta.get("grade", False)), bool(meta.get("solution", False))
    locked = False if solution else True if grade else bool(meta.get("locked", False))
    m = hashlib.md5()
    for part in (source, cell_type, str(meta.get("grade", False)), str(meta.get("solution", False)), str(locked),
                 meta["grade_id"]):
        m.update(part.encode("utf-8"))
    if grade:
        m.update(str(float(meta["points"])).encode("utf-8"))
    return m.hexdigest()


def locked_cell_changes(learner: list[Cell], pristine: list[Cell]) -> list[str]:
    """Locked cells (tests and provided code) the learner changed or deleted, found with
    nbgrader's checksums: one line each, saying the original is used for this run."""
    mine = {c.grade_id: c for c in learner if c.grade_id}
    out = []
    for cell in pristine:
        meta = cell.nbgrader
        if not meta.get("locked") or "checksum" not in meta:
            continue
        gid = meta["grade_id"]
        if gid not in mine:
            out.append(f"the locked cell {gid} was deleted: its original is restored for this run")
        elif nbgrader_checksum(mine[gid].source, mine[gid].kind, meta) != meta["checksum"]:
            out.append(f"the locked cell {gid} was changed: its original is restored for this run "
                       "(`tito module reset` gives you a fresh notebook)")
    return out


def test_module(ws: Workspace, m: ModuleSpec, timeout: float = DEFAULT_CELL_TIMEOUT) -> TestOutcome:
    """Run module ``m``'s visible graded tests on the learner's notebook (in the sandbox where
    bubblewrap is available, ``timeout`` seconds per cell) and its integration tests on the
    learner's exported package. Locked cells come from the pristine notebook, so a deleted
    or edited test changes nothing. Changes nothing in the workspace."""
    from .grade import assemble, judge, probes_for
    from .sandbox import Limits, run_notebook

    outcome = TestOutcome(module=m)
    nb_path = ws.notebook(m)
    if not nb_path.is_file():
        raise WorkspaceError(f"{nb_path} does not exist. Restore the pristine notebook with `tito module reset {m.code}`.")
    try:
        cells = read_cells(nb_path)
    except LessonError as e:
        raise WorkspaceError(str(e)) from None
    outcome.syntax_errors = _syntax_errors(cells)
    if outcome.syntax_errors:
        return outcome
    try:
        outcome.staged_files = export_cells(cells, notebook_relpath(m).as_posix(), m.export_target)
    except ExportError as e:
        outcome.export_error = str(e)
        return outcome
    pristine_path = ws.pristine(m) if ws.pristine(m).is_file() else nb_path
    pristine = read_cells(pristine_path)
    outcome.restored = locked_cell_changes(cells, pristine) if pristine_path != nb_path else []
    with tempfile.TemporaryDirectory(prefix="tito-stage-") as tmp:
        stage = Path(tmp, "pkg")
        stage.mkdir()
        _stage_package(ws, outcome.staged_files, stage)
        code, out = run_process([sys.executable, "-c", "import tinytorch; print(tinytorch.__file__)"],
                                cwd=stage, pythonpath=stage, timeout=120)
        origin = out.strip().splitlines()[-1] if out.strip() else ""
        if code != 0 or not origin.startswith(str(stage)):
            outcome.export_error = f"your exported package does not import: {out.strip()[-500:]}"
            return outcome
        outcome.package_origin = "your exported package"
        probes = probes_for(pristine, strict=False)
        run_cells_ = assemble(cells, pristine, probes)
        work = Path(tmp, "work")
        shutil.copytree(nb_path.parent, work, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            runs = run_notebook(run_cells_, work, stage, Limits(cell_timeout=timeout))
        outcome.sandbox_warning = next((str(w.message) for w in caught), "")
        report = RunReport()
        for cell, run in zip(run_cells_, runs):
            if cell.probe:
                c = next(c for c in pristine if c.grade_id == cell.label)
                pts = float(c.nbgrader.get("points", 0) or 0)
                res = judge(probes[cell.label], run, None, pts)
                report.cells.append(CellResult(index=len(report.cells), label=cell.label,
                                               status="ok" if res.status == "passed" else res.status,
                                               output=run.output, error=res.message, graded=True, points=pts))
            else:
                err = run.error
                if run.status == "timeout" and run.stuck_at:
                    err += f" (stuck at {run.stuck_at.replace(':', ' line ', 1).replace(':', ', in ', 1)})"
                report.cells.append(CellResult(index=len(report.cells), label=cell.label,
                                               status="ok" if run.status == "ok" else "error",
                                               output=run.output, error=err))
        outcome.report = report
        integration = nb_path.parent / "test_integration.py"
        if integration.is_file():
            code, out = run_process(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(stage),
                 str(integration)],
                cwd=stage, pythonpath=stage, timeout=max(60.0, 10 * timeout),
            )
            outcome.integration_ok = code == 0
            outcome.integration_output = out if code is not None else out + "\n(stopped: time limit)"
    return outcome


def complete_module(ws: Workspace, m: ModuleSpec, timeout: float = DEFAULT_CELL_TIMEOUT) -> TestOutcome:
    """Test; only if everything passes, export into the workspace package and record progress."""
    missing = ws.missing_prerequisites(m)  # also validates the progress file before any work
    if missing:
        raise WorkspaceError(prerequisite_message(m, missing))
    outcome = test_module(ws, m, timeout)
    if not outcome.passed:
        return outcome
    install_package_files(ws.root, outcome.staged_files, ws.manifest)
    progress_mod.record(ws.progress_path, ws.manifest, m.number, outcome.report.score, outcome.report.max_score)
    outcome.answers = reveal_answers(ws, m)
    return outcome


def reveal_answers(ws: Workspace, m: ModuleSpec) -> Path | None:
    """Write the module's Reflect answer sketches next to its notebook (once it is completed)."""
    from .answers import ANSWERS_NAME, answer_sketches

    text = answer_sketches(ws.manifest, m)
    if text is None:
        return None
    path = ws.notebook(m).parent / ANSWERS_NAME
    atomic_write(path, text)
    return path


def prerequisite_message(m: ModuleSpec, missing: list[ModuleSpec]) -> str:
    names = ", ".join(f"{p.code} {p.slug}" for p in missing)
    return (f"Module {m.code} {m.slug} needs {names} completed first. "
            f"Start with `tito module start {missing[0].code}`.")


def reset_module(ws: Workspace, m: ModuleSpec) -> Path | None:
    """Restore the pristine student notebook; the learner's version goes to .tinytorch/backups/."""
    pristine = ws.pristine(m)
    if not pristine.is_file():
        raise WorkspaceError(f"No pristine copy of module {m.code} in this workspace ({pristine}).")
    nb = ws.notebook(m)
    backup = None
    if nb.is_file():
        backup = ws.root / META_DIR / "backups" / f"{m.dirname}-{time.strftime('%Y%m%d-%H%M%S')}.ipynb"
        n = 1
        while backup.exists():
            backup = backup.with_name(f"{m.dirname}-{time.strftime('%Y%m%d-%H%M%S')}-{n}.ipynb")
            n += 1
        backup.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(nb, backup)
    nb.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(nb, pristine.read_text(encoding="utf-8"))
    return backup


def module_status(ws: Workspace) -> list[tuple[ModuleSpec, str]]:
    """(module, "done" | "provided" | "ready" | "locked" | "not released") for every module."""
    done = ws.progress()
    out = []
    for m in ws.manifest.modules:
        if done.is_provided(m.number):
            state = "provided"
        elif done.is_done(m.number):
            state = "done"
        elif not ws.notebook(m).is_file() and not ws.pristine(m).is_file():
            state = "not released"
        elif all(done.is_done(p) for p in m.prerequisites):
            state = "ready"
        else:
            state = "locked"
        out.append((m, state))
    return out
