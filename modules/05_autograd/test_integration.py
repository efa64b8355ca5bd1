"""Module 05 integration: gradients flow through the layers, activations and losses of 02-04."""
from __future__ import annotations

import numpy as np

import tinytorch
from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import gradcheck, no_grad
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor


def test_package_import_enabled_autograd():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 4.0])
    assert tinytorch.__file__


def test_every_activation_and_loss_has_a_gradient():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)  # (B, C)
    for act in (ReLU(), Sigmoid(), Tanh(), GELU(), Softmax(dim=1)):
        x.zero_grad()
        (act(x) * Tensor(rng.standard_normal((4, 3)).astype(np.float32))).sum().backward()
        assert x.grad is not None and x.grad.dtype == np.float32, type(act).__name__
    targets = {"mse": Tensor(rng.standard_normal((4, 3)).astype(np.float32)),
               "bce": Tensor((rng.random((4, 3)) > 0.5).astype(np.float32)),
               "ce": np.array([0, 2, 1, 1])}
    for name, loss_fn, pred in (("mse", MSELoss(), x), ("bce", BinaryCrossEntropyLoss(), Sigmoid()(x)),
                                ("ce", CrossEntropyLoss(), x)):
        x.zero_grad()
        loss = loss_fn(pred, targets[name])
        assert loss.shape == () and loss.requires_grad
        loss.backward()
        assert np.isfinite(x.grad.data).all() and np.abs(x.grad.data).sum() > 0, name


def test_gradcheck_through_a_linear_layer():
    layer = Linear(3, 2, seed=0)
    x = Tensor(np.random.default_rng(1).standard_normal((4, 3)))

    def fn(w, b, inp):
        return CrossEntropyLoss()(GELU()(inp @ w + b), np.array([0, 1, 1, 0]))

    assert gradcheck(fn, layer.weight, layer.bias, x)


def test_mlp_learns_a_nonlinear_problem():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 2)).astype(np.float32)  # (N, 2)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)  # (N,) XOR of the signs
    model = Sequential(Linear(2, 16, seed=1), Tanh(), Linear(16, 2, seed=2))
    loss_fn = CrossEntropyLoss()
    first = None
    for _ in range(300):
        for p in model.parameters():
            p.zero_grad()
        loss = loss_fn(model(Tensor(X)), y)
        first = first if first is not None else loss.item()
        loss.backward()
        with no_grad():
            for p in model.parameters():
                p.data -= 0.5 * p.grad.data
    with no_grad():
        acc = (model(Tensor(X)).data.argmax(axis=1) == y).mean()
    assert loss.item() < first / 3 and acc >= 0.9, (first, loss.item(), acc)
