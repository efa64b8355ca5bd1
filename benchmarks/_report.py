"""Shared header of every benchmark report: command, machine, package, date, harness settings.

The timings themselves come from module 19's harness (tinytorch.benchmarking.benchmark) and
module 14's profiler; this file only formats. Standard library at import time, so that a
script can set its BLAS threads before NumPy loads.
"""
from __future__ import annotations

import datetime as _dt
import os
import sys


def load1() -> float:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return float("nan")


def header(title: str, script: str, argv, load_before: float, settings: list[str]) -> list[str]:
    import tinytorch
    from tinytorch.benchmarking.benchmark import describe_environment
    from tito.machine import describe, display_path

    args = " ".join(argv)
    return [f"# {title}", "",
            f"- command: `python benchmarks/{script}{' ' + args if args else ''}`",
            f"- machine: {describe()}",
            f"- environment (module 19): {describe_environment()}",
            f"- tinytorch: {display_path(tinytorch.__file__)}",
            f"- date: {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- load average (1 min) before/after: {load_before:.2f} / {load1():.2f} on {os.cpu_count()} cores "
            "(above the core count, other programs shared the machine: compare ratios measured in the "
            "same run, not absolute times)",
            *[f"- harness: {s}" for s in settings], ""]


def fmt_s(s: float) -> str:
    return f"{s:.2f} s" if s >= 1 else f"{s * 1e3:.2f} ms" if s >= 1e-3 else f"{s * 1e6:.1f} us"


def argv() -> list[str]:
    return sys.argv[1:]
