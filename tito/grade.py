"""Autograding submitted notebooks, the way nbgrader's ``autograde`` does it.

For every submitted notebook, the graded test cells are put back from the reference lesson
(hidden tests included), so that a student who edited or deleted a test gains nothing; then
the notebook runs in an isolated process with time and memory limits (student code is
untrusted) and each graded cell that runs without error earns its points.

Submissions are laid out as ``SUBMISSIONS/<student>/modules/NN_slug/slug.ipynb`` (a copy of
the student's workspace, or just their notebooks). When a student's ``tinytorch/`` is
included, earlier modules are imported from it; otherwise from the reference package, and
the report says so.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .lesson import Cell, LessonError, read_cells
from .manifest import Manifest
from .release import notebook_relpath
from .runner import DEFAULT_TIMEOUT, run_cells


@dataclass
class Grade:
    student: str
    module: str
    score: float
    max_score: float
    package: str  # whose tinytorch the notebook imported earlier modules from
    problem: str = ""


def with_reference_tests(submitted: list[Cell], reference: list[Cell]) -> list[Cell]:
    """The submission with every graded test cell restored from the reference lesson.
    Reference test cells the student deleted are put back in place (after the cell that
    preceded them in the lesson, or at the end)."""
    ref_tests = {c.grade_id: c for c in reference if c.is_graded and not c.is_solution}
    out, seen = [], set()
    for cell in submitted:
        gid = cell.grade_id
        if gid in ref_tests:
            out.append(Cell(kind="code", source=ref_tests[gid].source, metadata=ref_tests[gid].metadata))
            seen.add(gid)
        else:
            out.append(cell)
    for gid, cell in ref_tests.items():
        if gid not in seen:
            out.append(Cell(kind="code", source=cell.source, metadata=cell.metadata))
    for i, cell in enumerate(out):
        cell.index = i
    return out


def grade_submissions(manifest: Manifest, submissions: Path, timeout: float = DEFAULT_TIMEOUT) -> list[Grade]:
    grades = []
    lessons = manifest.existing_lessons()
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir()):
        own_package = (student_dir / "tinytorch" / "__init__.py").is_file()
        pythonpath = student_dir if own_package else manifest.root
        whose = "student's" if own_package else "reference"
        for m in lessons:
            nb = student_dir / notebook_relpath(m)
            if not nb.is_file():
                continue
            try:
                cells = with_reference_tests(read_cells(nb), read_cells(manifest.lesson_path(m)))
            except LessonError as e:
                grades.append(Grade(student_dir.name, m.code, 0, m.points, whose, str(e)))
                continue
            report = run_cells(cells, cwd=nb.parent, pythonpath=pythonpath, timeout=timeout)
            grades.append(Grade(student_dir.name, m.code, report.score, report.max_score, whose, report.killed))
    return grades


def write_csv(grades: list[Grade], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student", "module", "score", "max_score", "package", "problem"])
        for g in grades:
            w.writerow([g.student, g.module, f"{g.score:g}", f"{g.max_score:g}", g.package, g.problem])
