"""Where grades go: nbgrader's gradebook, a per-test CSV, and feedback a student can read.

The gradebook is nbgrader's own (``nbgrader.api.Gradebook``, SQLite ``gradebook.db`` by
default), filled the way ``nbgrader autograde`` fills it (assignment, notebook, one grade
cell per graded test with its points, the student's submission with each cell's
``auto_score``), so ``nbgrader export`` and formgrader read it. Regrading overwrites the
scores of the same submission. Only the process that calls these functions writes: a
parallel grader sends results here, it never lets workers write.
"""
from __future__ import annotations

import csv
from pathlib import Path

from .grade import GradeResult

CSV_FIELDS = ["student", "assignment", "notebook", "test", "points", "max_points", "status", "message", "note", "problem"]


def write_gradebook(results: list[GradeResult], db_url: str) -> None:
    import os
    import shutil
    import sys

    from nbgrader.api import Gradebook

    if shutil.which("alembic") is None:  # nbgrader runs `alembic` to stamp a new database
        os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    import warnings

    with warnings.catch_warnings(), Gradebook(db_url) as gb:
        warnings.simplefilter("ignore")  # SQLAlchemy's autoflush notes on nbgrader's own models
        for r in results:
            gb.update_or_create_assignment(r.assignment)
            gb.update_or_create_notebook(r.notebook, r.assignment)
            for t in r.tests:
                gb.update_or_create_grade_cell(t.grade_id, r.notebook, r.assignment, max_score=t.max_points,
                                               cell_type="code")
        for r in results:
            gb.update_or_create_student(r.student)
            gb.update_or_create_submission(r.assignment, r.student)
            for t in r.tests:
                grade = gb.find_grade(t.grade_id, r.notebook, r.assignment, r.student)
                grade.auto_score = t.points
                grade.needs_manual_grade = False
            gb.db.commit()


def write_test_csv(results: list[GradeResult], path: Path) -> None:
    """One row per student, assignment and graded test; a submission that could not be
    graded has one row per test with the reason (never a missing row)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for r in results:
            for t in r.tests:
                w.writerow([r.student, r.assignment, r.notebook, t.grade_id, f"{t.points:g}", f"{t.max_points:g}",
                            t.status, t.message.replace("\n", " ")[:500], r.note, r.problem])


def feedback_text(r: GradeResult) -> str:
    lines = [f"# Feedback: {r.assignment} ({r.student})", "",
             f"Score: {r.score:g} / {r.max_score:g}", ""]
    if r.note:
        lines += [f"Note: {r.note}", ""]
    if r.problem:
        lines += [f"Problem: {r.problem}", ""]
    lines += ["| test | points | result |", "|---|---|---|"]
    for t in r.tests:
        lines.append(f"| {t.grade_id} | {t.points:g} / {t.max_points:g} | {t.status} |")
    failed = [t for t in r.tests if t.status != "passed"]
    if failed:
        lines += ["", "## What went wrong", ""]
        for t in failed:
            msg = t.message.strip() or t.status
            lines.append(f"- **{t.grade_id}** ({t.status}): {msg}")
    if any(t.hidden for t in r.tests):
        lines += ["", "Hidden tests check cases the notebook does not show; their inputs and expected values "
                  "stay with the instructor. Test the edge cases of the function named in the cell."]
    if r.tampered:
        lines += ["", f"Your code changed parts of Python or NumPy that tests rely on ({', '.join(r.tampered[:5])}); "
                  "they were put back before every test."]
    return "\n".join(lines) + "\n"


def write_feedback(results: list[GradeResult], root: Path) -> list[Path]:
    """``root/<student>/<assignment>/feedback.md`` (nbgrader's feedback folder layout)."""
    out = []
    for r in results:
        path = root / r.student / r.assignment / "feedback.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(feedback_text(r), encoding="utf-8")
        out.append(path)
    return out
