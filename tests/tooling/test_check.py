"""The lesson checker rejects each kind of broken lesson, and accepts a good one."""
from __future__ import annotations

import pytest

from tito.check import check_lesson
from tito.manifest import load_manifest
from tooling.sample_course import LESSON, make_course


def problems_of(tmp_path, lesson: str) -> list[str]:
    course = make_course(tmp_path, lesson)
    manifest = load_manifest(course)
    m = manifest.modules[0]
    return check_lesson(manifest.lesson_path(m), m)


def test_good_lesson_passes(tmp_path):
    assert problems_of(tmp_path, LESSON) == []


@pytest.mark.parametrize("mutate, expected", [
    (lambda s: s.replace('"grade_id": "test-dtype"', '"grade_id": "test-double"'), "duplicate grade_id"),
    (lambda s: s.replace("    ### END SOLUTION\n", "", 1), "never closed"),
    (lambda s: s.replace("    ### BEGIN SOLUTION\n", "", 1), "without a matching"),
    (lambda s: s.replace("    ### BEGIN SOLUTION\n", "    ### BEGIN SOLUTION\n    #| export\n", 1), "inside a solution region"),
    (lambda s: s.replace("## Connection map", "## Overview"), "no connection map"),
    (lambda s: s.replace("## Reflect", "## Summary"), "no Reflect"),
    (lambda s: s.replace("#| default_exp core.sample", "#| default_exp core.other"), "disagrees with the manifest"),
    (lambda s: s.replace('"points": 1,', '"points": 5,'), "manifest says 3"),
    (lambda s: s.replace('"points": 1, ', ''), "points"),
    (lambda s: s.replace('"schema_version": 3, "solution": true', '"schema_version": 2, "solution": true'), "Outdated schema version"),
    (lambda s: s.replace('"grade": false, "grade_id": "double", ', '"grade_id": "double", '), "'grade' is a required property"),
    (lambda s: s.replace('"solution": true}', '"solution": false}', 1), "not solution: true"),
    (lambda s: s.replace("assert double([1]).dtype == np.float32", "print(double([1]).dtype)"), "checks nothing"),
])
def test_checker_rejects(tmp_path, mutate, expected):
    lesson = mutate(LESSON)
    assert lesson != LESSON, "the mutation did not apply: fix the test"
    problems = problems_of(tmp_path, lesson)
    assert any(expected in p for p in problems), problems


def test_nbgrader_validator_is_consulted(tmp_path):
    # A graded cell with non-numeric points: nbgrader's own validator refuses it.
    problems = problems_of(tmp_path, LESSON.replace('"points": 1,', '"points": "many",'))
    assert any("NBGrader rejects" in p for p in problems), problems


def test_every_course_lesson_passes_the_checker(manifest):
    from tito.check import check_course

    results = check_course(manifest)
    bad = {k: v for k, v in results.items() if v}
    assert not bad, bad
