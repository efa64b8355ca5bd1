"""Module 03 integration: Module, Linear, Dropout and Sequential with Tensor and activations.

Imports only from tinytorch.*; `tito module test 03` runs this against the learner's own
exported package. Tests that need module 05 skip until it exists.
"""
import numpy as np
import pytest

from tinytorch.core.activations import ReLU, Sigmoid, Softmax
from tinytorch.core.layers import Dropout, Linear, Module, Sequential
from tinytorch.core.tensor import Tensor


class TwoLayer(Module):
    def __init__(self, seed=0):
        super().__init__()
        self.hidden = Linear(4, 8, seed=seed)
        self.act = ReLU()
        self.drop = Dropout(0.5, seed=seed)
        self.out = Linear(8, 3, seed=seed + 1)

    def forward(self, x):
        return Softmax()(self.out(self.drop(self.act(self.hidden(x)))))   # (B, 4) -> (B, 3)


def test_custom_module_end_to_end():
    net = TwoLayer()
    assert [n for n, _ in net.named_parameters()] == ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    x = Tensor(np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32))
    net.eval()
    p = net(x)
    assert isinstance(p, Tensor) and p.shape == (5, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p.data.sum(axis=1), np.ones(5), rtol=1e-5)
    np.testing.assert_array_equal(net(x).data, p.data)            # eval: deterministic
    net.train()
    assert not np.array_equal(net(x).data, p.data)               # train: dropout is active


def test_checkpoint_round_trip_reproduces_outputs():
    a, b = TwoLayer(seed=0).eval(), TwoLayer(seed=5).eval()
    x = Tensor(np.ones((2, 4), dtype=np.float32))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_parameter_memory_accounting():
    net = Sequential(Linear(784, 128, seed=0), ReLU(), Linear(128, 10, seed=1))
    n = 784 * 128 + 128 + 128 * 10 + 10
    assert sum(p.size for p in net.parameters()) == n
    assert sum(p.memory_footprint() for p in net.parameters()) == 4 * n


def test_sequential_output_is_a_tensor_built_from_tensor_ops():
    net = Sequential(Linear(3, 3, seed=0), Sigmoid())
    y = net(Tensor(np.zeros((1, 3), dtype=np.float32)))
    np.testing.assert_allclose(y.data, 1 / (1 + np.exp(-net[0].bias.data[None, :])), rtol=1e-6)


def test_gradients_reach_every_parameter_once_autograd_exists():
    autograd = pytest.importorskip("tinytorch.core.autograd", reason="module 05 (autograd) is not exported yet")
    autograd.enable_autograd()
    net = Sequential(Linear(4, 6, seed=0), ReLU(), Dropout(0.2, seed=0), Linear(6, 2, seed=1))
    x = Tensor(np.random.default_rng(1).normal(size=(8, 4)).astype(np.float32))
    net(x).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, f"no gradient reached {name}: Linear must use Tensor ops, not .data"
        assert p.grad.shape == p.shape and p.grad.dtype == np.float32, f"{name}: {p.grad!r}"
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
