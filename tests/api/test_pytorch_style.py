"""A PyTorch-style training script runs unchanged on tinytorch and learns."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("pytorch_style_train.py")


def test_pytorch_style_script_learns_and_round_trips(repo_root, tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(repo_root), "PATH": "", "OPENBLAS_NUM_THREADS": "1"}, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    losses = r["epoch_losses"]
    assert losses[0] > losses[1] > losses[2], f"the training loss must go down every epoch: {losses}"
    assert r["before"] < 0.3, f"an untrained network is near chance (10%), got {r['before']:.1%}"
    assert r["after"] > 0.8, f"3 epochs on 2,000 TinyDigits reach > 80% test accuracy, got {r['after']:.1%}"
    assert r["restored_same"], "a model rebuilt from tinytorch.save/load must predict the same"
    assert r["dtype"] == "float32"
