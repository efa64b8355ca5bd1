"""Every benchmark script runs (tiny settings, nothing written). Speed is never asserted here:
the numbers live in benchmarks/results/, measured on demand."""
from __future__ import annotations

import subprocess
import sys

import pytest

SMALL = {
    "mlp_step.py": ["--rounds", "1", "--steps", "1"],
    "conv2d.py": ["--rounds", "1", "--loop-filters", "1"],
    "cnn_train.py": ["--rounds", "1", "--steps", "1", "--batch", "8"],
    "loader.py": ["--rounds", "1", "--batches", "2", "--batch", "8", "--images", "64"],
}


@pytest.mark.parametrize("script", sorted(SMALL))
def test_benchmark_runs(script, repo_root):
    assert sorted(p.name for p in (repo_root / "benchmarks").glob("*.py")) == sorted(SMALL), \
        "a benchmark was added or removed: list it in SMALL"
    out = subprocess.run([sys.executable, str(repo_root / "benchmarks" / script), *SMALL[script], "--no-write"],
                         cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "tinytorch" in out.stdout
