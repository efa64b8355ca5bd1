"""Child process that executes a notebook's code cells in order, like a fresh kernel.

Started by :mod:`tito.runner` under time and memory limits; never imported by the parent.
Usage: python -m tito._cellrunner CELLS.json REPORT.json
Each cell's outcome (ok / error with a short traceback / output) is written to REPORT.json
after every cell, so a submission that is killed (time or memory) still leaves a report.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback

MAX_OUTPUT = 4000


def _strip_magics(source: str) -> str:
    """Comment out IPython-only lines (``%timeit``, ``!pip``) so plain Python can run the cell."""
    out = []
    for line in source.splitlines():
        s = line.lstrip()
        out.append(("# (notebook-only) " + line) if s.startswith(("%", "!")) else line)
    return "\n".join(out)


def _short_traceback(exc: BaseException, filename: str) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    lines = traceback.format_list(frames[-4:])
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def main(cells_path: str, report_path: str) -> int:
    with open(cells_path, encoding="utf-8") as f:
        cells = json.load(f)
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    results = []

    def flush():
        tmp = report_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(results, f)
        os.replace(tmp, report_path)

    for cell in cells:
        label = cell["label"]
        result = {"index": cell["index"], "label": label, "status": "running", "output": "", "error": ""}
        results.append(result)
        flush()
        filename = f"<{label}>"
        try:
            code = compile(_strip_magics(cell["source"]), filename, "exec")
        except SyntaxError as e:
            result.update(status="error", error=f"SyntaxError in {label}, line {e.lineno}: {e.msg}\n    {(e.text or '').rstrip()}")
            flush()
            continue
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                exec(code, namespace)
            result["status"] = "ok"
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - a learner's cell may raise anything, even SystemExit
            result.update(status="error", error=_short_traceback(e, filename))
        out = buf.getvalue()
        result["output"] = out if len(out) <= MAX_OUTPUT else "...\n" + out[-MAX_OUTPUT:]
        flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
