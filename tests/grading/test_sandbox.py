"""The sandboxed notebook run: shared namespace, magics, errors that do not stop later cells."""
from __future__ import annotations

from tito.sandbox import Limits, NotebookCell, run_notebook


def test_cells_share_a_namespace_magics_run_and_errors_do_not_stop(tmp_path):
    cells = [NotebookCell("a", "x = 2\n%timeit x\n!ls"), NotebookCell("b", "for i in range(2):\n    %time y = i\nassert x == 3"),
             NotebookCell("c", "print(x * 2)"), NotebookCell("d", f"import os; print(os.getcwd() == {str(tmp_path)!r})")]
    runs = run_notebook(cells, tmp_path, None, Limits(cell_timeout=20), sandbox=False)
    assert [r.status for r in runs] == ["ok", "error", "ok", "ok"]
    assert "AssertionError" in runs[1].error and runs[2].output.strip() == "4" and runs[3].output.strip() == "True"
