"""Regrading overwrites auto scores in nbgrader's gradebook, keeps manual ones, adds nothing twice."""
from __future__ import annotations

from tito.grade import GradeResult, TestResult
from tito.gradebook import write_gradebook


def _result(points_a, points_b):
    return GradeResult("ada", "01", "01_tensor", "tensor", points_a + points_b, 3.0, tests=[
        TestResult("test-a", points_a, 1.0, "passed" if points_a else "failed"),
        TestResult("test-b", points_b, 2.0, "passed" if points_b else "failed")])


def test_regrade_overwrites_auto_scores_and_keeps_manual_ones(tmp_path):
    from nbgrader.api import Gradebook

    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    write_gradebook([_result(1.0, 0.0)], url)
    with Gradebook(url) as gb:
        assert gb.find_submission("01_tensor", "ada").score == 1.0
        assert gb.find_submission("01_tensor", "ada").max_score == 3.0
        gb.find_grade("test-b", "tensor", "01_tensor", "ada").manual_score = 1.5  # a TA's override
        gb.db.commit()
    write_gradebook([_result(0.0, 2.0)], url)
    with Gradebook(url) as gb:
        assert len(gb.assignment_submissions("01_tensor")) == 1 and len(gb.students) == 1
        grade_a = gb.find_grade("test-a", "tensor", "01_tensor", "ada")
        grade_b = gb.find_grade("test-b", "tensor", "01_tensor", "ada")
        assert (grade_a.auto_score, grade_b.auto_score, grade_b.manual_score) == (0.0, 2.0, 1.5)
        assert gb.find_submission("01_tensor", "ada").score == 1.5
