"""The lesson checker: rejects lessons that would break export, release or grading.

Run by ``tito check`` and in CI. Each problem is one line naming the lesson and the cell.
"""
from __future__ import annotations

import re
from pathlib import Path

from .answers import answer_problems
from .lesson import (
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    DIRECTIVE,
    Cell,
    LessonError,
    default_exp,
    provided_sources,
    read_cells,
    read_notebook,
    scan_markers,
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
    scan = scan_markers(cell.source)
    problems = [f"{cell.label()} line {n}: {msg}" if n else f"{cell.label()}: {msg}" for n, msg in scan.problems]
    for ln in scan.lines:
        where = f"{cell.label()} line {ln.number}"
        if ln.region == "solution" and DIRECTIVE.match(ln.text):
            problems.append(
                f"{where}: export directive {ln.text.strip()!r} inside a solution region; the student release "
                "would strip it and the learner's cell would no longer export"
            )
        if ln.marker == BEGIN_SOLUTION and not cell.is_solution:
            problems.append(f"{where}: solution region in a cell whose NBGrader metadata is not solution: true")
        if ln.marker == BEGIN_HIDDEN and not cell.is_graded:
            problems.append(f"{where}: hidden tests in a cell that is not graded")
    return problems


# What a graded cell must contain for it to be able to fail.
CHECKS = ("assert", "raises", "np.testing", "gradcheck")


def _first_line(cell: Cell) -> str:
    for line in cell.source.splitlines():
        if line.strip():
            return line
    return ""


# --------------------------------------------------------------------------- connection maps

MAP_COLUMNS = ("built so far", "you build now", "this unlocks")
# A module named in a map: two digits, a range (12-13), an alternative (06/07) or "09+" (09 and
# every later module); never part of a longer token (CIFAR-10, 75%, float32).
_MODULE_REF = re.compile(r"(?<![\w.%/-])(\d{2})((?:[-/]\d{2})*)(\+?)(?![\w%.])")
_MILESTONE_REF = re.compile(r"\bmilestones?\s+(\d+)(?:\s*-\s*(\d+))?", re.IGNORECASE)


def _closure(manifest: Manifest, numbers) -> set[int]:
    """The modules ``numbers`` need, themselves included (prerequisites of prerequisites ...)."""
    by_number = {m.number: m for m in manifest.modules}
    out, todo = set(), list(numbers)
    while todo:
        n = todo.pop()
        if n not in out and n in by_number:
            out.add(n)
            todo += by_number[n].prerequisites
    return out


def _module_refs(text: str, last: int) -> list[tuple[int, list[int]]]:
    """(column where the reference starts, module numbers it names) for every module reference."""
    out = []
    for m in _MODULE_REF.finditer(text):
        first, rest, plus = int(m.group(1)), m.group(2), m.group(3)
        numbers = [first]
        for sep, num in re.findall(r"([-/])(\d{2})", rest):
            numbers += list(range(numbers[-1] + 1, int(num) + 1)) if sep == "-" else [int(num)]
        if plus:
            numbers += list(range(numbers[-1] + 1, last + 1))
        out.append((m.start(), numbers))
    return out


def connection_map_problems(text: str, spec: ModuleSpec, manifest: Manifest) -> list[str]:
    """The connection map against the manifest: what it shows as built are the module's
    prerequisites (every direct one; others only if the learner built them on the way), the
    middle column is this module, and everything it unlocks (modules, milestones) needs it."""
    lines = text.splitlines()
    head = next((i for i, ln in enumerate(lines) if all(c in ln.lower() for c in MAP_COLUMNS)), None)
    if head is None:
        return ["connection map: no header line with the columns " + " / ".join(repr(c) for c in MAP_COLUMNS)
                + " (see modules/TEMPLATE.py)"]
    low = lines[head].lower()
    mid, right = low.index(MAP_COLUMNS[1]), low.index(MAP_COLUMNS[2])
    known = {m.number for m in manifest.modules}
    last = max(known)
    built, middle, unlocks, milestones = set(), set(), set(), set()
    for ln in lines[head + 1:]:
        if ln.strip().startswith("```"):
            break
        for col, numbers in _module_refs(ln, last):
            (built if col < mid else middle if col < right else unlocks).update(numbers)
        for m in _MILESTONE_REF.finditer(ln):
            if m.start() >= right:
                a = int(m.group(1))
                milestones.update(range(a, int(m.group(2) or a) + 1))
    problems = []
    unknown = sorted((built | middle | unlocks) - known)
    if unknown:
        problems.append(f"connection map names modules {unknown} that modules/modules.toml does not have")
    needed = _closure(manifest, spec.prerequisites)
    wrong = sorted((built & known) - needed)
    if wrong:
        problems.append(f"connection map shows {', '.join(f'{n:02d}' for n in wrong)} as built so far, but module "
                        f"{spec.code} does not need {'it' if len(wrong) == 1 else 'them'} (prerequisites in "
                        f"modules/modules.toml: {list(spec.prerequisites)})")
    missing = sorted(set(spec.prerequisites) - built)
    if missing:
        problems.append(f"connection map does not show the prerequisites {', '.join(f'{n:02d}' for n in missing)} "
                        f"under 'built so far' (modules/modules.toml lists {list(spec.prerequisites)})")
    other = sorted((middle & known) - {spec.number})
    if other:
        problems.append(f"connection map shows {', '.join(f'{n:02d}' for n in other)} under 'you build now': "
                        f"that column is module {spec.code}")
    by_number = {m.number: m for m in manifest.modules}
    free = sorted(n for n in unlocks & known if spec.number not in _closure(manifest, by_number[n].prerequisites))
    if free:
        problems.append(f"connection map says module {spec.code} unlocks {', '.join(f'{n:02d}' for n in free)}, "
                        f"which do{'es' if len(free) == 1 else ''} not depend on it in modules/modules.toml")
    ms_by_number = {ms.number: ms for ms in manifest.milestones}
    for n in sorted(milestones):
        ms = ms_by_number.get(n)
        if ms is None:
            problems.append(f"connection map names milestone {n}, which modules/modules.toml does not have")
        elif spec.number not in _closure(manifest, ms.requires):
            problems.append(f"connection map says module {spec.code} unlocks milestone {n} ({ms.slug}), which does "
                            f"not need it (it requires modules {list(ms.requires)})")
    return problems


# Words about the lesson's scaffolding that mean nothing in the package a learner imports.
LESSON_ONLY_PHRASES = ("solution region",)


def _shipped_text_problems(cell: Cell) -> list[str]:
    text = "\n".join(ln.text for ln in scan_markers(cell.source).lines if ln.region is None and ln.marker is None)
    return [f"{cell.label()}: exported text mentions {p!r}: the package's docstrings would ship lesson scaffolding"
            for p in LESSON_ONLY_PHRASES if p in text.lower()]


def _provided_problems(lesson: Path) -> list[str]:
    """The folder's provided source files: a target line, no lesson markers, nothing that only
    makes sense in a lesson."""
    try:
        sources = provided_sources(lesson.parent, lesson.name)
    except LessonError as e:
        return [str(e)]
    problems = []
    for src, _ in sources:
        text = src.read_text(encoding="utf-8")
        if any(ln.marker for ln in scan_markers(text).lines):
            problems.append(f"{src.name}: a provided file has no solution or hidden-test regions (it ships as is)")
        problems += [f"{src.name}: mentions {p!r}, lesson scaffolding the package would ship"
                     for p in LESSON_ONLY_PHRASES if p in text.lower()]
    return problems


def check_lesson(path: Path, spec: ModuleSpec | None = None, manifest: Manifest | None = None) -> list[str]:
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
            if cell.export_target() is not None:
                problems += _shipped_text_problems(cell)
            if cell.export_target() is not None and not cell.nbgrader:
                problems.append(f"{cell.label()}: export cell without NBGrader metadata (release could not lock or stub it)")
    markdown_heads = [_first_line(c) for c in cells if c.kind == "markdown"]
    maps = [c for c in cells if c.kind == "markdown" and "connection map" in _first_line(c).lower()]
    if not maps:
        problems.append("no connection map (a markdown cell whose first line contains 'Connection map')")
    elif spec is not None and manifest is not None:
        problems += connection_map_problems(maps[0].source, spec, manifest)
    if not any("reflect" in h.lower() for h in markdown_heads):
        problems.append("no Reflect section (a markdown cell whose first line contains 'Reflect')")
    problems += _provided_problems(path)
    problems += answer_problems(path, cells)
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
        out[m.lesson_relpath.as_posix()] = check_lesson(manifest.lesson_path(m), m, manifest)
    return out
