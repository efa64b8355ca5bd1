"""A one-module course in a temporary directory, for testing the tools in isolation."""
from __future__ import annotations

import textwrap
from pathlib import Path

MANIFEST = textwrap.dedent('''
    [[module]]
    number = 1
    slug = "sample"
    title = "Sample"
    tier = "foundation"
    prerequisites = []
    package = "tinytorch.core.sample"
    points = 3
    hours = 1
    unlocks = "nothing: it is a test fixture"
''')

LESSON = textwrap.dedent('''
    # %% [markdown]
    # # Module 01: Sample

    # %% [markdown]
    # ## Connection map
    #
    # ```
    #   built so far       you build now       this unlocks
    #   ------------       -------------       ------------
    #   NumPy       -->    01 Sample     -->   nothing: a test fixture
    # ```

    # %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
    #| default_exp core.sample
    #| export
    import numpy as np

    # %% nbgrader={"grade": false, "grade_id": "double", "locked": false, "schema_version": 3, "solution": true}
    #| export
    def double(x):
        """Return 2 * x as float32."""
        ### BEGIN SOLUTION
        secret_reference_line = np.asarray(x, dtype=np.float32)
        return 2 * secret_reference_line
        ### END SOLUTION

    # %% nbgrader={"grade": true, "grade_id": "test-double", "locked": true, "points": 2, "schema_version": 3, "solution": false}
    def test_unit_double():
        np.testing.assert_allclose(double(np.array([1, 2])), [2, 4])
        ### BEGIN HIDDEN TESTS
        hidden_marker = double(np.array([3]))
        assert hidden_marker[0] == 6
        ### END HIDDEN TESTS
    test_unit_double()

    # %% nbgrader={"grade": true, "grade_id": "test-dtype", "locked": true, "points": 1, "schema_version": 3, "solution": false}
    assert double([1]).dtype == np.float32

    # %% [markdown]
    # ## Reflect
    #
    # 1. Why float32?
''').lstrip()


# The answer sketch of the Reflect question (revealed by `tito module complete`).
ANSWERS = textwrap.dedent('''
    # Module 01 Sample: answer sketches

    1. float32 halves the memory and memory traffic of float64 (secret_answer_marker), and it
       is the precision networks train in.
''').lstrip()


def make_course(root: Path, lesson: str = LESSON, answers: str | None = ANSWERS) -> Path:
    (root / "modules" / "01_sample").mkdir(parents=True)
    (root / "modules" / "modules.toml").write_text(MANIFEST, encoding="utf-8")
    (root / "modules" / "01_sample" / "sample.py").write_text(lesson, encoding="utf-8")
    if answers is not None:
        (root / "modules" / "01_sample" / "reflect_answers.md").write_text(answers, encoding="utf-8")
    return root
