"""Every benchmark script runs (tiny settings, nothing written). Speed is never asserted here:
the numbers live in benchmarks/results/, measured on demand."""
from __future__ import annotations

import subprocess
import sys

import pytest

SMALL = {
    "mlp_step.py": ["--rounds", "9", "--min-time", "0.0005", "--inner", "1"],
    "acceleration.py": ["--batch", "4", "--rounds", "9"],
    "conv2d.py": ["--rounds", "9", "--inner", "1", "--loop-filters", "1", "--min-time", "0.001"],
    "cnn_train.py": ["--rounds", "9", "--batch", "8", "--repeats", "1"],
    "loader.py": ["--rounds", "9", "--batch", "8", "--images", "64"],
    "profile_models.py": ["--quick"],
    "roofline.py": ["--quick"],
    "serve_models.py": ["--quick"],
    "shared_weight.py": ["--quick"],
    "grading.py": ["--submissions", "3", "--workers", "1", "--overhead-rounds", "0"],
    "kv_cache.py": ["--quick", "--rounds", "9", "--position-repeats", "1"],
    "quantization.py": ["--quick", "--test", "100", "--calib", "64"],
    "gpt_train.py": ["--quick"],
    "gpt_speedups.py": ["--quick"],
    "compression.py": ["--quick", "--synthetic", "--prune-steps", "4", "--structured-steps", "2", "--rounds", "9"],
}
NEEDS_TORCH = {"gpt_train.py", "gpt_speedups.py"}   # they time tinytorch against the same model in PyTorch


@pytest.mark.parametrize("script", sorted(SMALL))
def test_benchmark_runs(script, repo_root):
    scripts = sorted(p.name for p in (repo_root / "benchmarks").glob("*.py") if not p.name.startswith("_"))
    assert scripts == sorted(SMALL), "a benchmark was added or removed: list it in SMALL"
    if script in NEEDS_TORCH:
        pytest.importorskip("torch")
    out = subprocess.run([sys.executable, str(repo_root / "benchmarks" / script), *SMALL[script], "--no-write"],
                         cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "tinytorch" in out.stdout
    assert "- harness:" in out.stdout and ("tinytorch.benchmarking" in out.stdout or "tinytorch.profiling" in out.stdout), \
        "a written result must name the harness and settings that produced it"


def test_no_hand_written_timing_loops(repo_root):
    """One harness everywhere: timing goes through tinytorch.benchmarking / tinytorch.profiling."""
    for path in (repo_root / "benchmarks").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for clock in ("perf_counter", "process_time", "time.time("):
            assert clock not in text, f"{path.name} reads the clock itself ({clock}): use the harness"
