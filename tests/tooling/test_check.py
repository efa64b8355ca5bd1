"""The lesson checker rejects each kind of broken lesson, and accepts a good one."""
from __future__ import annotations

import pytest

from tito.check import check_lesson
from tito.manifest import load_manifest
from tooling.sample_course import ANSWERS, LESSON, make_course


def problems_of(tmp_path, lesson: str, answers: str | None = ANSWERS) -> list[str]:
    course = make_course(tmp_path, lesson, answers)
    manifest = load_manifest(course)
    m = manifest.modules[0]
    return check_lesson(manifest.lesson_path(m), m, manifest)


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
    (lambda s: s.replace('"""Return 2 * x as float32."""', '"""Return 2 * x (write it in the solution region)."""'),
     "mentions 'solution region'"),
    (lambda s: s.replace("built so far       you build now", "before             now          "), "no header line"),
])
def test_checker_rejects(tmp_path, mutate, expected):
    lesson = mutate(LESSON)
    assert lesson != LESSON, "the mutation did not apply: fix the test"
    problems = problems_of(tmp_path, lesson)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("answers, expected", [
    (None, "no reflect_answers.md"),
    (ANSWERS.replace("1. float32", "2. float32"), "no sketch for Reflect question(s) [1]"),
    (ANSWERS + "\n2. An answer to a question that the Reflect cell does not ask at all, which is a mistake.\n",
     "does not ask"),
    (ANSWERS.split("1. ")[0] + "1. Because.\n", "too short"),
])
def test_checker_wants_an_answer_sketch_per_reflect_question(tmp_path, answers, expected):
    problems = problems_of(tmp_path, LESSON, answers)
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


# --------------------------------------------------------------------------- connection maps
# Checked against the course's own manifest. Module 08 needs 01 and 07; 09 needs it; 10 does
# not; milestone 4 needs it, milestone 1 does not.
MAP_08 = """## Connection map

```
  built so far          you build now          this unlocks
  ------------          -------------          ------------
  01 arrays      -->    08 batching     -->    09 convs on CIFAR-10 batches
  07 loops              batches                milestone 4: CNN
```
"""


def map_problems(manifest, text, number=8):
    from tito.check import connection_map_problems

    return connection_map_problems(text, manifest.module(number), manifest)


def test_a_true_connection_map_passes(manifest):
    assert map_problems(manifest, MAP_08) == []


@pytest.mark.parametrize("mutate, expected", [
    # shows as built a module that is not a prerequisite
    (lambda s: s.replace("07 loops      ", "09 Spatial    "), "as built so far, but module 08 does not need it"),
    # leaves out a prerequisite of the manifest
    (lambda s: s.replace("07 loops      ", "Training loop "), "does not show the prerequisites 07"),
    # unlocks a module that does not depend on it (a range and "NN+" count every module they name)
    (lambda s: s.replace("09 convs on ", "10-11 tokens "), "unlocks 10, 11, which do not depend on it"),
    (lambda s: s.replace("09 convs on ", "09+ convs   "), "unlocks 10, 11, 12"),
    # unlocks a milestone that does not need it
    (lambda s: s.replace("milestone 4: CNN", "milestone 1: MLP"), "unlocks milestone 1 (perceptron)"),
    # a milestone or module the manifest does not have
    (lambda s: s.replace("milestone 4: CNN", "milestone 9: CNN"), "names milestone 9"),
    (lambda s: s.replace("09 convs on ", "42 Conv2d on"), "names modules [42]"),
    # another module in the "you build now" column
    (lambda s: s.replace("08 batching", "09 batching"), "under 'you build now'"),
])
def test_connection_map_defects(manifest, mutate, expected):
    text = mutate(MAP_08)
    assert text != MAP_08, "the mutation did not apply: fix the test"
    problems = map_problems(manifest, text)
    assert any(expected in p for p in problems), problems


def test_tokens_that_are_not_modules_are_ignored(manifest):
    # CIFAR-10, 75%, float32 and (7 loops) name no module
    text = MAP_08.replace("milestone 4: CNN", "milestone 4: CNN, CIFAR-10 >= 75%, float32 (7 loops)")
    assert map_problems(manifest, text) == []


def test_the_package_ships_no_lesson_scaffolding(repo_root):
    from tito.check import LESSON_ONLY_PHRASES

    hits = [f"{p.relative_to(repo_root)}: {phrase}" for p in sorted((repo_root / "tinytorch").rglob("*.py"))
            for phrase in LESSON_ONLY_PHRASES if phrase in p.read_text(encoding="utf-8").lower()]
    assert not hits, hits
