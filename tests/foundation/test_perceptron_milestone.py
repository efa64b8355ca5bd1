"""Milestone 1 (Perceptron): the script reaches its target, and its pieces behave."""
from __future__ import annotations

import numpy as np
import pytest

from tinytorch.core.layers import Linear
from tito.milestones import load_milestone


@pytest.fixture(scope="module")
def perceptron(manifest):
    return load_milestone("perceptron", manifest)


def test_quick_run_reaches_target(perceptron, capsys):
    assert perceptron.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "tinytorch:" in out and "REACHED" in out and "within the convergence bound on every seed: yes" in out


def test_data_is_separable_with_margin_and_seeded(perceptron):
    X, y, (w, b) = perceptron.make_separable(300, seed=4, margin=0.1)
    assert X.dtype == np.float32 and X.shape == (300, 2) and set(np.unique(y)) == {-1.0, 1.0}
    assert np.all(y * (X @ w + b) >= 0.1 - 1e-6)
    X2, y2, _ = perceptron.make_separable(300, seed=4, margin=0.1)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)


def test_rule_converges_within_novikoff_bound(perceptron):
    X, y, (w, b) = perceptron.make_separable(200, seed=7)
    layer = Linear(2, 1, seed=0)
    layer.weight.data[...] = 0
    layer.bias.data[...] = 0
    epochs, updates, converged = perceptron.train_perceptron(layer, X, y, lr=1.0, max_epochs=100, seed=0)
    assert converged and perceptron.accuracy(layer, perceptron.Tensor(X), y) == 1.0
    assert updates <= perceptron.novikoff_bound(X, y, w, b)


def test_rule_cannot_solve_xor(perceptron):
    """The 1969 objection (milestone 2): no line separates XOR, so the rule never settles."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([-1, 1, 1, -1], dtype=np.float32)
    layer = Linear(2, 1, seed=0)
    _, _, converged = perceptron.train_perceptron(layer, X, y, lr=1.0, max_epochs=50, seed=0)
    assert not converged
    assert perceptron.accuracy(layer, perceptron.Tensor(X), y) <= 0.75
