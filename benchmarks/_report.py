"""Every benchmark report: its shared header (command, machine, package, date, harness
settings) and where it is written (``benchmarks/results/<name>.md``).

The timings themselves come from module 19's harness (tinytorch.benchmarking.benchmark) and
module 14's profiler; this file only formats. Standard library at import time, so that a
script can set its BLAS threads before NumPy loads.
"""
from __future__ import annotations

import datetime as _dt
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def load1() -> float:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return float("nan")


def header(title: str, script: str, argv, load_before: float, settings: list[str]) -> list[str]:
    import tinytorch
    from tinytorch.benchmarking.benchmark import describe_environment
    from tito.machine import describe

    args = " ".join(argv)
    return [f"# {title}", "",
            f"- command: `python benchmarks/{script}{' ' + args if args else ''}`",
            f"- machine: {describe()}",
            f"- environment (module 19): {describe_environment()}",
            f"- tinytorch: {display_path(tinytorch.__file__)}",
            f"- date: {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- load average (1 min) before/after: {load_before:.2f} / {load1():.2f} on {os.cpu_count()} cores "
            "(a load above the core count means other programs shared the machine: compare ratios "
            "measured in the same run, not absolute times)",
            *[f"- harness: {s}" for s in settings], ""]


def fmt_s(s: float) -> str:
    return f"{s:.2f} s" if s >= 1 else f"{s * 1e3:.2f} ms" if s >= 1e-3 else f"{s * 1e6:.1f} us"


def argv() -> list[str]:
    return sys.argv[1:]


def display_path(path: str) -> str:
    """``path`` as ``<repo>/...`` when it lies in this checkout, so that written results name
    no directory of the machine they ran on."""
    p = Path(path).resolve()
    try:
        return "<repo>/" + p.relative_to(REPO).as_posix()
    except ValueError:
        return str(p)


def write_result(name: str, text: str) -> str:
    """Write a benchmark's report to ``benchmarks/results/<name>.md``; returns the path shown."""
    path = REPO / "benchmarks" / "results" / f"{name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    return display_path(str(path))
