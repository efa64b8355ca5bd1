"""Child process of test_bug_catalogue.py: run one lesson's cells once, and fork at every cell
where a catalogued bug is made to run that cell with the bug, and the cells after it up to the
next graded test cell. Usage: python _bugrunner.py JOB.json REPORT.json

JOB: {"cells": [{"label", "source", "graded"}], "bugs": [{"id", "at", "target", "source"}]}
(``at``: position of the buggy cell, ``target``: position of the graded cell that must fail,
``source``: the buggy cell's source). REPORT: {"reference": {label: error or ""},
"bugs": {id: {"target": error or "", "errors": {label: error}}}}.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import traceback

BUG_TIMEOUT = 60  # seconds for one bug's cells


def strip_magics(source: str) -> str:
    return "\n".join(("# " + line) if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def run_cell(source: str, label: str, namespace: dict) -> str:
    """'' when the cell runs, else the last line of its error."""
    try:
        code = compile(strip_magics(source), f"<{label}>", "exec")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            exec(code, namespace)
        return ""
    except BaseException as e:  # noqa: BLE001 - a bug may raise anything
        return "".join(traceback.format_exception_only(type(e), e)).strip().splitlines()[-1] or type(e).__name__


def run_bug(cells, bug, namespace) -> dict:
    signal.alarm(BUG_TIMEOUT)
    errors = {}
    for pos in range(bug["at"], bug["target"] + 1):
        cell = cells[pos]
        source = bug["source"] if pos == bug["at"] else cell["source"]
        err = run_cell(source, cell["label"], namespace)
        if err:
            errors[cell["label"]] = err
    return {"target": errors.get(cells[bug["target"]]["label"], ""), "errors": errors}


def main(job_path: str, report_path: str) -> int:
    with open(job_path, encoding="utf-8") as f:
        job = json.load(f)
    cells, bugs = job["cells"], job["bugs"]
    report = {"reference": {}, "bugs": {}}
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    for pos, cell in enumerate(cells):
        for bug in (b for b in bugs if b["at"] == pos):
            r, w = os.pipe()
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:  # the copy of the lesson so far runs the bug; the parent stays clean
                os.close(r)
                try:
                    out = run_bug(cells, bug, namespace)
                except BaseException as e:  # noqa: BLE001
                    out = {"target": "", "errors": {}, "crashed": repr(e)}
                with os.fdopen(w, "w", encoding="utf-8") as pipe:
                    json.dump(out, pipe)
                os._exit(0)
            os.close(w)
            with os.fdopen(r, encoding="utf-8") as pipe:
                data = pipe.read()
            _, status = os.waitpid(pid, 0)
            report["bugs"][bug["id"]] = json.loads(data) if data else {"target": "", "errors": {},
                                                                       "crashed": f"exit status {status}"}
        err = run_cell(cell["source"], cell["label"], namespace)
        if cell["graded"]:
            report["reference"][cell["label"]] = err
    with open(report_path, "w", encoding="utf-8") as f:
        json.dump(report, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
