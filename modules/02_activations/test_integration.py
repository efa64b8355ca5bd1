"""Module 02 integration: activations on the package's Tensor, composed with Tensor ops.

Imports only from tinytorch.*; `tito module test 02` runs this against the learner's own
exported package. The last test needs module 05 and skips until it exists.
"""
import numpy as np
import pytest

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.tensor import Tensor


def test_activations_consume_results_of_tensor_ops():
    a = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    b = Tensor(np.ones((3, 2), dtype=np.float32))
    h = a @ b - 5.0                                   # (2, 2) from module 01 ops
    out = ReLU()(h)
    assert isinstance(out, Tensor) and out.dtype == np.float32
    np.testing.assert_array_equal(out.data, np.maximum(h.data, 0))


def test_softmax_output_feeds_tensor_reductions():
    x = Tensor(np.random.default_rng(0).normal(size=(4, 10)).astype(np.float32))
    p = Softmax()(x)                                  # (4, 10)
    total = p.sum(axis=-1)                            # module 01 reduction on a module 02 output
    np.testing.assert_allclose(total.data, np.ones(4), rtol=1e-5)


def test_activation_identities_hold_together():
    x = Tensor(np.linspace(-5, 5, 41).astype(np.float32))
    s2 = Sigmoid()(x * 2.0)
    np.testing.assert_allclose(Tanh()(x).data, (s2 * 2.0 - 1.0).data, atol=1e-6)   # tanh = 2 sig(2x) - 1
    g = GELU()(x).data
    assert np.all(g <= np.maximum(x.data, 0) + 1e-6), "GELU never exceeds ReLU"


def test_memory_of_activation_outputs():
    x = Tensor(np.zeros((128, 256), dtype=np.float32))
    for act in (ReLU(), Sigmoid(), Tanh(), GELU(), Softmax()):
        y = act(x)
        assert y.memory_footprint() == x.memory_footprint() == 128 * 256 * 4


def test_gradients_flow_once_autograd_exists():
    autograd = pytest.importorskip("tinytorch.core.autograd", reason="module 05 (autograd) is not exported yet")
    autograd.enable_autograd()
    x = Tensor(np.array([[-1.0, 0.5, 2.0]], dtype=np.float32), requires_grad=True)
    (Sigmoid()(ReLU()(x))).sum().backward()
    s = 1 / (1 + np.exp(-np.array([0.0, 0.5, 2.0])))
    np.testing.assert_allclose(x.grad.data, [[0.0, *(s[1:] * (1 - s[1:]))]], rtol=1e-5)
