"""Child processes and their reports: a command (the integration tests, an import check) run
isolated, and the course's own notebooks run cell by cell with :func:`run_cells`.

A child runs in a separate process with a wall-clock timeout, a CPU time limit and an
address-space limit, in its own process group so that everything it starts is killed with
it. The parent never imports the child's code. Learner notebooks are run by
:mod:`tito.sandbox` (``run_cells`` uses the same harness).
"""
from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .lesson import Cell
from .sandbox import Limits, NotebookCell, rlimits, run_notebook

DEFAULT_TIMEOUT = 600.0  # seconds of wall clock for one notebook
DEFAULT_MEMORY_MB = 8192


@dataclass
class CellResult:
    index: int
    label: str
    status: str  # ok | error | not run
    output: str = ""
    error: str = ""
    graded: bool = False
    points: float = 0.0


@dataclass
class RunReport:
    cells: list[CellResult] = field(default_factory=list)
    killed: str = ""  # why the process was stopped early ("" if it finished)

    @property
    def graded(self) -> list[CellResult]:
        return [c for c in self.cells if c.graded]

    @property
    def failed_graded(self) -> list[CellResult]:
        return [c for c in self.graded if c.status != "ok"]

    @property
    def errors(self) -> list[CellResult]:
        return [c for c in self.cells if c.status == "error"]

    @property
    def score(self) -> float:
        return sum(c.points for c in self.graded if c.status == "ok")

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.graded)

    @property
    def passed(self) -> bool:
        return not self.killed and bool(self.graded) and not self.failed_graded


def child_env(pythonpath: Path | None) -> dict[str, str]:
    """Environment for a child: ``pythonpath`` first, so its ``tinytorch`` shadows any other."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    # Whose package a child imports is decided by ``pythonpath`` and its working directory
    # only: a workspace named in the caller's environment would hand the course's package over.
    env.pop("TINYTORCH_WORKSPACE", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    env.setdefault("PYTHONHASHSEED", "0")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_process(cmd: list[str], cwd: Path, pythonpath: Path | None, timeout: float,
                memory_mb: int = DEFAULT_MEMORY_MB) -> tuple[int | None, str]:
    """Run ``cmd`` isolated; returns (exit code or None if killed on timeout, combined output)."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=child_env(pythonpath), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, text=True, preexec_fn=rlimits(memory_mb, int(timeout * 2) + 1, cpu_grace=5),
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, _ = proc.communicate()
        return None, out
    except BaseException:  # Ctrl-C: the learner's code stops with us, not later
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        raise


def run_cells(cells: list[Cell], cwd: Path, pythonpath: Path | None,
              timeout: float = DEFAULT_TIMEOUT, memory_mb: int = DEFAULT_MEMORY_MB) -> RunReport:
    """Execute the code cells in order in one fresh interpreter, as a kernel would; one result
    per code cell. For the course's own notebooks (the reference lessons, a release's): the
    grading harness of :mod:`tito.sandbox`, trusted (this environment's packages, limits only),
    ``timeout`` seconds per cell; a crash or a hang stops the notebook (``RunReport.killed``)."""
    code_cells = [c for c in cells if c.kind == "code"]
    limits = Limits(cell_timeout=timeout, memory_mb=memory_mb, cpu_seconds=int(2 * timeout) + 1)
    runs = run_notebook([NotebookCell(c.label(), c.source) for c in code_cells], Path(cwd), pythonpath, limits,
                        max_restarts=0, trusted=True)
    report = RunReport()
    for c, run in zip(code_cells, runs):
        if run.status in ("timeout", "crashed") and not report.killed:
            report.killed = run.error
        report.cells.append(CellResult(
            index=c.index, label=c.label(), status=run.status if run.status in ("ok", "not run") else "error",
            output=run.output, error=run.error, graded=c.is_graded, points=float(c.nbgrader.get("points", 0) or 0),
        ))
    return report
