"""Student release made with nbgrader: stubs, no hidden tests, locked cells, exports kept.

The round trip for every lesson: the released notebook contains none of the reference
solution code, still exports to the same module files, and (with the reference solutions
put back) passes its graded tests; the last part is run by the learner flow test
(tests/course/test_lessons.py), which completes every module from its released notebook.
"""
from __future__ import annotations

import pytest

from tito.export import export_cells
from tito.lesson import Cell, read_notebook
from tito.release import release_notebook, restore_solutions, solution_lines
from tito.runner import run_cells
from tooling.sample_course import make_course


def cells_of(nb) -> list[Cell]:
    return [Cell(kind=c.cell_type, source=c.source, metadata=dict(c.metadata), index=i) for i, c in enumerate(nb.cells)]


def test_sample_release_strips_solutions_and_hidden_tests(tmp_path):
    course = make_course(tmp_path)
    lesson = course / "modules" / "01_sample" / "sample.py"
    released = release_notebook(lesson)
    text = "\n".join(c.source for c in released.cells)
    assert "secret_reference_line" not in text
    assert "raise NotImplementedError()" in text
    assert "hidden_marker" not in text
    assert "#| export" in text and "#| default_exp core.sample" in text
    for c in released.cells:
        meta = c.metadata.get("nbgrader", {})
        if meta.get("grade") or meta.get("locked"):
            assert "checksum" in meta and c.metadata.get("editable") is False
    # Released, the stub fails the tests; with the reference put back, they pass.
    report = run_cells(cells_of(released), tmp_path, None, timeout=60)
    assert [c.status for c in report.graded] == ["error", "error"]
    assert "NotImplementedError" in report.graded[0].error
    restored = restore_solutions(released, read_notebook(lesson))
    report = run_cells(cells_of(restored), tmp_path, None, timeout=60)
    assert report.passed and report.score == 3


@pytest.fixture(scope="module")
def course_lessons():
    from tito.manifest import load_manifest as lm
    m = lm()
    lessons = m.existing_lessons()
    if not lessons:
        pytest.skip("the course has no lessons yet")
    return m, lessons


def test_release_round_trip_static_for_every_lesson(course_lessons):
    manifest, lessons = course_lessons
    for m in lessons:
        lesson_nb = read_notebook(manifest.lesson_path(m))
        released = release_notebook(manifest.lesson_path(m))
        released_text = "\n".join(c.source for c in released.cells)
        leaked = [line for line in solution_lines(lesson_nb) if line in released_text]
        assert not leaked, f"{m.dirname}: reference solution lines left in the release: {leaked[:3]}"
        assert "### BEGIN HIDDEN TESTS" not in released_text
        # The released notebook still exports to the same files; with the solutions restored,
        # it exports exactly what the lesson exports.
        ref = export_cells(cells_of(lesson_nb), "x", m.export_target)
        out = export_cells(cells_of(released), "x", m.export_target)
        assert set(out) == set(ref), m.dirname
        back = export_cells(cells_of(restore_solutions(released, lesson_nb)), "x", m.export_target)
        assert back == ref, m.dirname
