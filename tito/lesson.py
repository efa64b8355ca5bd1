"""Reading lessons (Jupytext percent ``.py``) and notebooks (``.ipynb``) as a list of cells.

Both the reference lessons and a learner's notebooks go through here, so export, checking
and testing treat them the same way.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

DIRECTIVE = re.compile(r"^\s*#\|\s*(\w+)(?:\s+(.*?))?\s*$")
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


class LessonError(Exception):
    """A lesson or notebook cannot be read."""


# --------------------------------------------------------------------------- the marker scanner
# The one reader of ``### BEGIN/END SOLUTION`` and ``### BEGIN/END HIDDEN TESTS``: export drops
# the marker lines, the checker reports the scanner's problems, release and the grader find
# what is inside a region with it.
REGION_OF = {BEGIN_SOLUTION: "solution", END_SOLUTION: "solution", BEGIN_HIDDEN: "hidden", END_HIDDEN: "hidden"}


@dataclass(frozen=True)
class MarkedLine:
    number: int           # 1-based, within the cell
    text: str
    marker: str | None    # this line is that marker (BEGIN_SOLUTION ...), else None
    region: str | None    # "solution" | "hidden" | None: the region an ordinary line is in


@dataclass
class MarkerScan:
    lines: list[MarkedLine]
    problems: list[tuple[int, str]]  # (line number, what is wrong): unbalanced or nested markers

    def inside(self, region: str) -> list[MarkedLine]:
        """The ordinary lines inside regions of one kind ("solution" or "hidden")."""
        return [ln for ln in self.lines if ln.region == region]

    def without_markers(self) -> list[str]:
        return [ln.text for ln in self.lines if ln.marker is None]


def scan_markers(source: str) -> MarkerScan:
    """Every line of a cell, with the marker it is or the region it is in."""
    lines, problems, open_marker = [], [], None
    for n, text in enumerate(source.splitlines(), 1):
        s = text.strip()
        if s in (BEGIN_SOLUTION, BEGIN_HIDDEN):
            if open_marker:
                problems.append((n, f"{s!r} inside an open {open_marker!r} region"))
            open_marker = s
            lines.append(MarkedLine(n, text, s, None))
        elif s in (END_SOLUTION, END_HIDDEN):
            expected = BEGIN_SOLUTION if s == END_SOLUTION else BEGIN_HIDDEN
            if open_marker != expected:
                problems.append((n, f"{s!r} without a matching {expected!r}"))
            open_marker = None
            lines.append(MarkedLine(n, text, s, None))
        else:
            lines.append(MarkedLine(n, text, None, REGION_OF[open_marker] if open_marker else None))
    if open_marker:
        problems.append((0, f"{open_marker!r} is never closed"))
    return MarkerScan(lines, problems)


@dataclass
class Cell:
    kind: str  # "code" | "markdown" | "raw"
    source: str
    metadata: dict = field(default_factory=dict)
    index: int = 0

    @property
    def nbgrader(self) -> dict:
        return self.metadata.get("nbgrader", {}) or {}

    @property
    def grade_id(self) -> str | None:
        return self.nbgrader.get("grade_id")

    @property
    def is_graded(self) -> bool:
        return bool(self.nbgrader.get("grade"))

    @property
    def is_solution(self) -> bool:
        return bool(self.nbgrader.get("solution"))

    def directives(self) -> list[tuple[str, str]]:
        """``(name, argument)`` for every ``#| name argument`` line of a code cell."""
        if self.kind != "code":
            return []
        out = []
        for line in self.source.splitlines():
            m = DIRECTIVE.match(line)
            if m:
                out.append((m.group(1), m.group(2) or ""))
        return out

    def export_target(self) -> str | None:
        """``""`` for ``#| export`` (the lesson's default), a module for ``#| export x.y``."""
        for name, arg in self.directives():
            if name == "export":
                return arg
        return None

    def label(self) -> str:
        return self.grade_id or f"cell {self.index + 1}"


def read_notebook(path: Path):
    """An ``nbformat`` v4 notebook from a lesson ``.py`` or an ``.ipynb``."""
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise LessonError(f"{path}: no such file")
    try:
        if path.suffix == ".ipynb":
            nb = nbformat.read(str(path), as_version=4)
        else:
            import jupytext

            nb = jupytext.read(str(path), fmt="py:percent")
            nb = nbformat.reads(jupytext.writes(nb, fmt="ipynb"), as_version=4)
    except (json.JSONDecodeError, nbformat.reader.NotJSONError) as e:
        raise LessonError(f"{path} is not a readable notebook ({e}). Restore it with `tito module reset`.") from None
    except Exception as e:  # jupytext/nbformat raise many types on malformed input
        raise LessonError(f"{path} cannot be read: {type(e).__name__}: {e}") from None
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata.setdefault("language_info", {"name": "python"})
    for cell in nb.cells:  # jupytext bookkeeping would differ between lesson and release
        cell.metadata.pop("lines_to_next_cell", None)
    return nb


def _read_ipynb_cells(path: Path) -> list[Cell]:
    """Cells of an ``.ipynb`` read as plain JSON: much faster than importing nbformat, which
    matters for every ``tito module test``. Structural damage gets a clear message."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LessonError(f"{path} is not a readable notebook ({e}). Restore it with `tito module reset`.") from None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        raise LessonError(f"{path} is not a notebook (no list of cells). Restore it with `tito module reset`.")
    out = []
    for i, c in enumerate(cells):
        if not isinstance(c, dict) or "cell_type" not in c:
            raise LessonError(f"{path}: cell {i + 1} is damaged (no cell_type). Restore it with `tito module reset`.")
        source = c.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        out.append(Cell(kind=c["cell_type"], source=source, metadata=dict(c.get("metadata") or {}), index=i))
    return out


def read_cells(path: Path) -> list[Cell]:
    path = Path(path)
    if path.suffix == ".ipynb":
        if not path.is_file():
            raise LessonError(f"{path}: no such file")
        return _read_ipynb_cells(path)
    nb = read_notebook(path)
    return [
        Cell(kind=c.cell_type, source=c.source, metadata=dict(c.metadata), index=i)
        for i, c in enumerate(nb.cells)
    ]


def default_exp(cells: list[Cell]) -> str | None:
    for cell in cells:
        for name, arg in cell.directives():
            if name == "default_exp":
                return arg
    return None


# --------------------------------------------------------------------------- provided source files
# A module folder may hold plain Python files besides the lesson and its tests: code the course
# provides (module 08's dataset loaders) that a learner reads but does not write. The first line
# of such a file, ``#| export data.datasets``, names the package module it becomes. Export writes
# it, release ships it next to the notebook, and a workspace's package has it from the start.
PROVIDED_DIRECTIVE = re.compile(r"^#\|\s*export\s+([\w.]+)\s*$")


def provided_sources(folder: Path, lesson_name: str) -> list[tuple[Path, str]]:
    """``(file, target)`` for the provided source files of a module folder (sorted by name).
    ``lesson_name``: the lesson's file name (``dataloader.py``), or its notebook's."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.py")):
        if path.name in (lesson_name, Path(lesson_name).with_suffix(".py").name) or path.name.startswith("test_"):
            continue
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        m = PROVIDED_DIRECTIVE.match(first)
        if m is None:
            raise LessonError(f"{path}: a provided source file must start with `#| export <module>` "
                              f"(e.g. `#| export data.datasets`), found {first[:60]!r}")
        out.append((path, m.group(1)))
    return out

