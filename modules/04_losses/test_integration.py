"""Module 04 integration: losses scoring the outputs of layers and activations.

Imports only from tinytorch.*; `tito module test 04` runs this against the learner's own
exported package. The last test needs module 05 and skips until it exists.
"""
import numpy as np
import pytest

from tinytorch.core.activations import Sigmoid, Softmax
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import BCELoss, CrossEntropyLoss, MSELoss, log_softmax
from tinytorch.core.tensor import Tensor


def test_cross_entropy_of_a_linear_classifier():
    rng = np.random.default_rng(0)
    x = Tensor(rng.normal(size=(32, 5)).astype(np.float32))
    y = rng.integers(0, 4, size=32)
    logits = Linear(5, 4, seed=0)(x)                                          # (32, 4)
    loss = CrossEntropyLoss()(logits, y)
    assert loss.shape == () and loss.dtype == np.float32
    manual = -np.mean(np.log(Softmax()(logits).data[np.arange(32), y]))
    np.testing.assert_allclose(loss.item(), manual, rtol=1e-5)
    assert 0.5 * np.log(4) < loss.item() < 2 * np.log(4), "an untrained small layer scores near log(C)"


def test_log_softmax_agrees_with_softmax_module():
    x = Tensor(np.random.default_rng(1).normal(size=(3, 7)).astype(np.float32) * 5)
    np.testing.assert_allclose(np.exp(log_softmax(x).data), Softmax()(x).data, rtol=1e-5, atol=1e-7)


def test_bce_on_sigmoid_network_and_mse_on_regression():
    rng = np.random.default_rng(2)
    x = Tensor(rng.normal(size=(16, 3)).astype(np.float32))
    p = Sequential(Linear(3, 1, seed=0), Sigmoid())(x)                        # (16, 1)
    t = Tensor((rng.random((16, 1)) > 0.5).astype(np.float32))
    bce = BCELoss()(p, t)
    ref = -np.mean(t.data * np.log(p.data) + (1 - t.data) * np.log(1 - p.data))
    np.testing.assert_allclose(bce.item(), ref, rtol=1e-5)
    pred = Linear(3, 2, seed=1)(x)
    np.testing.assert_allclose(MSELoss()(pred, pred).item(), 0.0)


def test_logits_memory_scales_with_vocabulary():
    small = Tensor(np.zeros((64, 10), dtype=np.float32))
    big = Tensor(np.zeros((64, 10_000), dtype=np.float32))
    assert big.memory_footprint() == 1000 * small.memory_footprint()
    assert np.isfinite(CrossEntropyLoss()(big, np.zeros(64, dtype=np.int64)).item())


def test_loss_gradient_trains_a_step_once_autograd_exists():
    autograd = pytest.importorskip("tinytorch.core.autograd", reason="module 05 (autograd) is not exported yet")
    autograd.enable_autograd()
    rng = np.random.default_rng(3)
    x = Tensor(rng.normal(size=(20, 4)).astype(np.float32))
    y = rng.integers(0, 3, size=20)
    layer = Linear(4, 3, seed=0)
    before = CrossEntropyLoss()(layer(x), y)
    before.backward()
    for p in layer.parameters():
        assert p.grad is not None and p.grad.dtype == np.float32
        p.data[...] -= 0.5 * p.grad.data                                   # one manual SGD step
    after = CrossEntropyLoss()(layer(x), y)
    assert after.item() < before.item(), f"a gradient step must lower the loss: {before.item()} -> {after.item()}"
