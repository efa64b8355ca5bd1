"""What machine a measurement ran on, and the BLAS thread setting, for milestones and benchmarks
(benchmark reports are written by benchmarks/_report.py).

Standard library only, and cheap to import: milestone scripts import it before NumPy, because
OpenBLAS reads its thread count once, when NumPy loads.
"""
from __future__ import annotations

import os
import platform

BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def set_blas_threads(n: int, override: bool = True) -> None:
    """Ask BLAS for ``n`` threads; call before NumPy is imported. With ``override=False`` a
    value the user already set wins."""
    for var in BLAS_VARS:
        if override or var not in os.environ:
            os.environ[var] = str(n)


def blas_threads() -> str:
    return os.environ.get("OPENBLAS_NUM_THREADS", "default")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def describe() -> str:
    """One line: CPU, cores, NumPy, Python, BLAS threads, load average (when known)."""
    import numpy as np

    load = load_average()
    parts = [cpu_model(), f"{os.cpu_count()} cores", f"numpy {np.__version__}",
             f"python {platform.python_version()}", f"BLAS threads {blas_threads()}"]
    if load is not None:
        parts.append(f"load average {load:.1f}")
    return ", ".join(parts)
