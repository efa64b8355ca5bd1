"""The isolated runner: per-cell results, limits, and a report even when the child dies."""
from __future__ import annotations

from tito.lesson import Cell
from tito.runner import run_cells


def cells(*sources, graded=()):
    out = []
    for i, s in enumerate(sources):
        meta = {"nbgrader": {"grade": True, "grade_id": f"t{i}", "points": 1}} if i in graded else {}
        out.append(Cell(kind="code", source=s, metadata=meta, index=i))
    return out


def test_cells_share_a_namespace_and_errors_do_not_stop_later_cells(tmp_path):
    report = run_cells(cells("x = 2", "assert x == 3, 'x is not 3'", "print(x * 2)", "%timeit x", graded=(1, 2)),
                       tmp_path, None, timeout=60)
    assert [c.status for c in report.cells] == ["ok", "error", "ok", "ok"]
    assert "AssertionError: x is not 3" in report.cells[1].error
    assert report.cells[2].output.strip() == "4"
    assert report.score == 1 and report.max_score == 2 and not report.passed


def test_memory_limit_gives_a_clear_error(tmp_path):
    report = run_cells(cells("big = bytearray(3 * 1024**3)", "ok = 1", graded=(1,)), tmp_path, None,
                       timeout=60, memory_mb=1024)
    assert report.cells[0].status == "error" and "MemoryError" in report.cells[0].error
    assert report.cells[1].status == "ok"


def test_exit_and_crash_are_reported(tmp_path):
    report = run_cells(cells("import os", "os._exit(3)", "never = 1", graded=(2,)), tmp_path, None, timeout=60)
    assert "exited with code 3" in report.killed
    assert report.cells[2].status == "not run" and not report.passed
    report = run_cells(cells("raise SystemExit(0)", "after = 1", graded=(1,)), tmp_path, None, timeout=60)
    assert report.cells[0].status == "error" and report.passed  # SystemExit is just a cell error


def test_child_sees_only_the_given_pythonpath(tmp_path):
    pkg = tmp_path / "pp" / "tinytorch"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("WHO = 'staged'\n")
    report = run_cells(cells("import tinytorch; assert tinytorch.WHO == 'staged', tinytorch.__file__", graded=(0,)),
                       tmp_path, tmp_path / "pp", timeout=60)
    assert report.passed, report.cells[0].error
