"""Run a learner's notebook and its integration tests in an isolated child process.

Student code is untrusted: it runs in a separate process with a wall-clock timeout, a CPU
time limit and an address-space limit, in its own process group so that everything it
starts is killed with it. The parent never imports the learner's code.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .lesson import Cell
from .sandbox import rlimits

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
    """Execute the code cells in order in a fresh interpreter; one result per code cell."""
    code_cells = [c for c in cells if c.kind == "code"]
    with tempfile.TemporaryDirectory(prefix="tito-run-") as tmp:
        cells_json, report_json = Path(tmp, "cells.json"), Path(tmp, "report.json")
        cells_json.write_text(json.dumps([
            {"index": c.index, "label": c.label(), "source": c.source} for c in code_cells
        ]), encoding="utf-8")
        # A copy of the runner in the temp dir: the child's sys.path then holds neither tito's
        # modules nor the course checkout, only what ``pythonpath`` names.
        script = Path(tmp, "cellrunner.py")
        shutil.copyfile(Path(__file__).with_name("_cellrunner.py"), script)
        cmd = [sys.executable, str(script), str(cells_json), str(report_json)]
        code, output = run_process(cmd, cwd, pythonpath, timeout, memory_mb)
        raw = json.loads(report_json.read_text(encoding="utf-8")) if report_json.is_file() else []
    by_index = {r["index"]: r for r in raw}
    report = RunReport()
    if code is None:
        report.killed = f"stopped after {timeout:.0f} s (time limit): an infinite loop or a very slow cell?"
    elif code != 0:
        tail = output.strip().splitlines()[-3:]
        if code < 0 and -code == signal.SIGXCPU or code == -signal.SIGKILL:
            report.killed = "stopped by the CPU-time limit"
        elif "MemoryError" in output or code == -signal.SIGSEGV:
            report.killed = f"stopped: out of memory (limit {memory_mb} MB)"
        else:
            report.killed = f"the notebook process exited with code {code}: {' '.join(tail)}"
    for c in code_cells:
        r = by_index.get(c.index)
        status = r["status"] if r else "not run"
        if status == "running":
            status = "error"
            r["error"] = report.killed or "the cell did not finish"
        report.cells.append(CellResult(
            index=c.index, label=c.label(), status=status,
            output=r["output"] if r else "", error=r["error"] if r else "",
            graded=c.is_graded, points=float(c.nbgrader.get("points", 0) or 0),
        ))
    return report
