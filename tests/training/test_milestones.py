"""Milestones 2 (XOR) and 3 (MLP) run end to end in small configurations."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tito.manifest import load_manifest
from tito.milestones import load_milestone

ROOT = Path(__file__).resolve().parents[2]


def _load(slug: str):
    return load_milestone(slug, load_manifest(ROOT))


def test_xor_milestone_three_seeds(capsys):
    xor = _load("xor")
    assert xor.main(["--seeds", "3"]) == 0
    out = capsys.readouterr().out
    assert "two layers  : worst accuracy over 3 seeds 100%" in out and "PASS" in out
    assert "running tinytorch from" in out


def test_single_layer_cannot_exceed_75_percent():
    xor = _load("xor")
    for seed in range(3):
        assert xor.train(xor.single_layer(seed), 200, lr=0.1)["accuracy"] <= 0.75


def test_mlp_milestone_tinydigits_save_and_rebuild(tmp_path, capsys):
    mlp = _load("mlp")
    pytest.importorskip("tinytorch.data.datasets")
    path = tmp_path / "mlp.npz"
    code = mlp.main(["--dataset", "tinydigits", "--tiny-epochs", "2", "--train-limit", "2000", "--save", str(path), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "tinydigits" in out and path.exists()
    from tinytorch.core.tensor import Tensor
    from tinytorch.core.training import load_state_dict
    from tinytorch.data.datasets import load_tinydigits
    model = mlp.build_model()
    model.load_state_dict(load_state_dict(path))
    (_, _), (xte, yte) = load_tinydigits()
    logits = model(Tensor(mlp.prepare(xte[:500])))          # (500, 10)
    acc = float((logits.data.argmax(axis=1) == yte[:500]).mean())
    assert acc > 0.75, f"rebuilt model accuracy {acc:.2f} after 2 epochs on 2,000 TinyDigits"
    assert mlp.main(["--dataset", "tinydigits", "--load", str(path)]) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_mlp_prepare_is_float32_and_standardized():
    mlp = _load("mlp")
    x = mlp.prepare(np.full((2, 28, 28), 255, dtype=np.uint8))
    assert x.shape == (2, 784) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 0], (1 - 0.1307) / 0.3081, rtol=1e-6)
