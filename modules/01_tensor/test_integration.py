"""Module 01 integration: the exported Tensor as the later modules use it."""
from __future__ import annotations

import numpy as np
import pytest

from tinytorch.core.tensor import Tensor, matmul_loops


def test_dense_layer_forward_in_float32():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((16, 8)))  # (B, in) float64 data -> float32
    W = Tensor(rng.uniform(-0.35, 0.35, (8, 4)))  # (in, out)
    b = Tensor(np.zeros(4))  # (out,)
    y = x @ W + b  # (B, out)
    assert y.shape == (16, 4) and y.dtype == np.float32
    np.testing.assert_allclose(y.data, x.data @ W.data, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(matmul_loops(x, W).data, y.data, rtol=1e-4, atol=1e-5)


def test_stable_softmax_from_tensor_ops():
    logits = Tensor([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])  # (B, C)
    z = (logits - logits.max(axis=1, keepdims=True)).exp()  # (B, C)
    p = z / z.sum(axis=1, keepdims=True)  # (B, C)
    assert np.isfinite(p.data).all()
    np.testing.assert_allclose(p.sum(axis=1).data, [1.0, 1.0], rtol=1e-6)


def test_memory_of_the_matmul_measurement():
    a = Tensor(np.zeros((1000, 1000), dtype=np.float32))
    c = a @ a
    assert a.memory_footprint() + a.memory_footprint() + c.memory_footprint() == 12_000_000


def test_shape_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\) @ \(5, 2\)"):
        Tensor(np.ones((3, 4))) @ Tensor(np.ones((5, 2)))


def test_accuracy_style_computation():
    logits = Tensor(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], dtype=np.float32))
    labels = Tensor(np.array([1, 0, 0]))
    pred = Tensor(logits.data.argmax(axis=1))
    acc = (pred == labels).mean()
    assert acc.dtype == np.float32 and abs(acc.item() - 2 / 3) < 1e-6
    picked = logits[np.arange(3), labels]  # (B,) the logit of the true class
    np.testing.assert_allclose(picked.data, [0.9, 0.8, 0.3])
