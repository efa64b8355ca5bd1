"""The lesson checker: rejects lessons that would break export, release or grading.

Run by ``tito check`` and in CI. Each problem is one line naming the lesson and the cell.
"""
from __future__ import annotations

from pathlib import Path

from .lesson import (
    BEGIN_HIDDEN, BEGIN_SOLUTION, DIRECTIVE, END_HIDDEN, END_SOLUTION, Cell, LessonError,
    default_exp, read_cells, read_notebook,
)
from .manifest import Manifest, ModuleSpec


def _nbgrader_problems(path: Path) -> list[str]:
    """What nbgrader 0.9.x's own validator says about the lesson's metadata."""
    try:
        from nbgrader.nbgraderformat import MetadataValidator
    except ImportError:
        return ["nbgrader is not installed: cannot validate NBGrader metadata (pip install -e '.[tito]')"]
    nb = read_notebook(path)
    try:
        MetadataValidator().validate_nb(nb)
    except Exception as e:  # ValidationError, SchemaTooOldError, SchemaTooNewError, ...
        return [f"NBGrader rejects the metadata: {type(e).__name__}: {e}"]
    problems = []
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader")
        if meta is None:
            continue
        # The validator upgrades old schemas silently; a lesson must already be current.
        if meta.get("schema_version") != 3:
            problems.append(f"cell {i + 1}: nbgrader schema_version must be 3, found {meta.get('schema_version')!r}")
        missing = {"grade", "grade_id", "locked", "solution", "schema_version"} - set(meta)
        if missing:
            problems.append(f"cell {i + 1}: nbgrader metadata lacks {sorted(missing)}")
        if meta.get("grade") and "points" not in meta:
            problems.append(f"cell {i + 1} ({meta.get('grade_id')}): graded cell without points")
    return problems


def _marker_problems(cell: Cell) -> list[str]:
    problems = []
    open_marker = None
    for n, line in enumerate(cell.source.splitlines(), 1):
        s = line.strip()
        where = f"{cell.label()} line {n}"
        if s in (BEGIN_SOLUTION, BEGIN_HIDDEN):
            if open_marker:
                problems.append(f"{where}: {s!r} inside an open {open_marker!r} region")
            open_marker = s
        elif s in (END_SOLUTION, END_HIDDEN):
            expected = BEGIN_SOLUTION if s == END_SOLUTION else BEGIN_HIDDEN
            if open_marker != expected:
                problems.append(f"{where}: {s!r} without a matching {expected!r}")
            open_marker = None
        elif open_marker == BEGIN_SOLUTION and DIRECTIVE.match(line):
            problems.append(
                f"{where}: export directive {s!r} inside a solution region; the student release "
                "would strip it and the learner's cell would no longer export"
            )
        if s == BEGIN_SOLUTION and not cell.is_solution:
            problems.append(f"{where}: solution region in a cell whose NBGrader metadata is not solution: true")
        if s == BEGIN_HIDDEN and not cell.is_graded:
            problems.append(f"{where}: hidden tests in a cell that is not graded")
    if open_marker:
        problems.append(f"{cell.label()}: {open_marker!r} is never closed")
    return problems


# What a graded cell must contain for it to be able to fail.
CHECKS = ("assert", "raises", "np.testing", "gradcheck")


def _first_line(cell: Cell) -> str:
    for line in cell.source.splitlines():
        if line.strip():
            return line
    return ""


def check_lesson(path: Path, spec: ModuleSpec | None = None) -> list[str]:
    """All problems of one lesson (empty list: the lesson is fine)."""
    try:
        cells = read_cells(path)
    except LessonError as e:
        return [str(e)]
    problems = _nbgrader_problems(path)
    seen: dict[str, str] = {}
    for cell in cells:
        gid = cell.grade_id
        if gid:
            if gid in seen:
                problems.append(f"duplicate grade_id {gid!r} (cells {seen[gid]} and {cell.index + 1})")
            seen[gid] = str(cell.index + 1)
        if cell.kind == "code":
            problems += _marker_problems(cell)
            if cell.is_graded and not cell.is_solution and not any(k in cell.source for k in CHECKS):
                problems.append(f"{cell.label()}: graded cell checks nothing (no assert, pytest.raises, "
                                "np.testing or gradcheck): a test that cannot fail gives free points")
            if cell.is_graded and not cell.is_solution:
                from .probe import ProbeError, build_probe

                try:
                    build_probe(cell.label(), cell.source)
                except ProbeError as e:
                    problems.append(f"{e} (the grader decides only checks it can observe: assert, "
                                    "np.testing.assert_*, try/except with one handler)")
            if cell.export_target() is not None and not cell.nbgrader:
                problems.append(f"{cell.label()}: export cell without NBGrader metadata (release could not lock or stub it)")
    markdown_heads = [_first_line(c) for c in cells if c.kind == "markdown"]
    if not any("connection map" in h.lower() for h in markdown_heads):
        problems.append("no connection map (a markdown cell whose first line contains 'Connection map')")
    if not any("reflect" in h.lower() for h in markdown_heads):
        problems.append("no Reflect section (a markdown cell whose first line contains 'Reflect')")
    exp = default_exp(cells)
    if exp is None:
        problems.append("no `#| default_exp` directive")
    if spec is not None:
        if exp is not None and exp != spec.export_target:
            problems.append(f"`#| default_exp {exp}` disagrees with the manifest's package {spec.package}")
        try:
            points = sum(float(c.nbgrader.get("points", 0)) for c in cells if c.is_graded)
        except (TypeError, ValueError):
            points = None
            problems.append("graded cells have non-numeric points")
        if points is not None and points != spec.points:
            problems.append(f"graded cells add up to {points:g} points, the manifest says {spec.points}")
        if not any(c.is_graded for c in cells):
            problems.append("no graded test cells")
    return [f"{path.name}: {p}" for p in problems]


def check_course(manifest: Manifest, only: list[ModuleSpec] | None = None) -> dict[str, list[str]]:
    """Problems per lesson (lesson relpath -> problems) for every existing lesson."""
    out = {}
    for m in only if only is not None else manifest.existing_lessons():
        out[m.lesson_relpath.as_posix()] = check_lesson(manifest.lesson_path(m), m)
    return out
