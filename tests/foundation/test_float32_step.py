"""No silent float64: one training step through modules 02-04 keeps everything float32."""
from __future__ import annotations

import numpy as np
import pytest

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import BCELoss, CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor


def _trace(model: Sequential, x: Tensor) -> list:
    """Every intermediate output of ``model`` on ``x``."""
    outs = []
    for layer in model.layers:
        x = layer(x)
        outs.append(x)
    return outs


@pytest.mark.parametrize("loss_name", ["ce", "bce", "mse"])
def test_one_step_is_float32_everywhere(loss_name):
    autograd = pytest.importorskip("tinytorch.core.autograd", reason="module 05 (autograd) is not exported yet")
    autograd.enable_autograd()
    rng = np.random.default_rng(0)
    x = Tensor(rng.normal(size=(16, 6)).astype(np.float32))                     # (B, 6)
    head = {"ce": [Linear(8, 3, seed=2)], "bce": [Linear(8, 1, seed=2), Sigmoid()],
            "mse": [Linear(8, 2, seed=2), Tanh()]}[loss_name]
    model = Sequential(Linear(6, 8, seed=1), GELU(), Dropout(0.1, seed=0), ReLU(), *head)
    outs = _trace(model, x)
    for i, o in enumerate(outs):
        assert o.dtype == np.float32, f"layer {i} ({model[i]!r}) produced {o.dtype}"
    y = outs[-1]
    if loss_name == "ce":
        loss = CrossEntropyLoss()(y, rng.integers(0, 3, size=16))
    elif loss_name == "bce":
        loss = BCELoss()(y, Tensor((rng.random((16, 1)) > 0.5).astype(np.float32)))
    else:
        loss = MSELoss()(y, Tensor(rng.normal(size=(16, 2)).astype(np.float32)))
    assert loss.dtype == np.float32
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert p.dtype == np.float32 and p.grad.dtype == np.float32, f"{name}: {p.dtype}, grad {p.grad.dtype}"
        p.data[...] -= 0.1 * p.grad.data
        assert p.data.dtype == np.float32


def test_softmax_probabilities_and_losses_stay_float32_without_autograd():
    x = Tensor(np.random.default_rng(1).normal(size=(4, 5)).astype(np.float32))
    assert Softmax()(x).dtype == np.float32
    assert CrossEntropyLoss()(x, np.array([0, 1, 2, 3])).dtype == np.float32
