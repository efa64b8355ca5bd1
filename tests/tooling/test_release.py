"""Student release made with nbgrader: stubs, no hidden tests, locked cells, exports kept.

The round trip for every lesson: the released notebook contains none of the reference
solution code, still exports to the same module files, and (with the reference solutions
put back) passes its graded tests; the last part is run by the learner flow test
(tests/course/test_lessons.py), which completes every module from its released notebook.
"""
from __future__ import annotations

import pytest

from tito.answers import ANSWERS_NAME, numbered_items
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
        # The Reflect answer sketches live beside the lesson, never in a notebook.
        sketches = numbered_items((manifest.lesson_path(m).parent / ANSWERS_NAME).read_text(encoding="utf-8"))
        assert sketches, m.dirname
        shown = [n for n, text in sketches.items() if text.splitlines()[0][3:60] in released_text]
        assert not shown, f"{m.dirname}: answer sketches {shown} are in the released notebook"


def test_kit_seals_the_answer_sketches_and_ships_provided_files(tmp_path):
    from tito.answers import answer_sketches, sealed_relpath
    from tito.manifest import load_manifest
    from tito.release import release_kit

    course = make_course(tmp_path / "course")
    (course / "modules" / "01_sample" / "helpers.py").write_text(
        "#| export core.sample_helpers\nHELPER = 'provided'\n", encoding="utf-8")
    manifest = load_manifest(course)
    kit = tmp_path / "kit"
    release_kit(manifest, kit)
    m = manifest.modules[0]
    assert (kit / sealed_relpath(m)).is_file()
    texts = [p.read_bytes() for p in kit.rglob("*") if p.is_file()]
    assert not any(b"secret_answer_marker" in t for t in texts), "an answer sketch is readable in the kit"
    assert "secret_answer_marker" in answer_sketches(load_manifest(kit), m)
    # the provided file is shipped next to the notebook, as it is
    assert (kit / "modules/01_sample/helpers.py").read_text() == "#| export core.sample_helpers\nHELPER = 'provided'\n"
    # a workspace made from the kit has the provided code in its package from the start,
    # and none of the learner's modules
    from tito.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws", load_manifest(kit))
    assert "HELPER = 'provided'" in (ws.package_dir / "core" / "sample_helpers.py").read_text()
    assert not (ws.package_dir / "core" / "sample.py").exists()
