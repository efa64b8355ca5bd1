"""Integration tests of module 06 on the exported package (tinytorch.* only)."""
import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss, MSELoss
from tinytorch.core.optimizers import SGD, Adam, AdamW, CosineAnnealingLR, StepLR
from tinytorch.core.tensor import Tensor


def _spirals(n=120, seed=0):
    """Two interleaved spirals: not linearly separable, an MLP must bend space."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.25, 1.0, n) * 3 * np.pi
    y = rng.integers(0, 2, n)
    sign = 2 * y - 1
    x = np.stack([sign * t * np.cos(t), sign * t * np.sin(t)], axis=1) / 10
    return (x + rng.normal(0, 0.02, x.shape)).astype(np.float32), y.astype(np.int64)


def test_each_optimizer_trains_an_mlp_on_spirals():
    x, y = _spirals()
    for make in (lambda ps: SGD(ps, lr=0.2, momentum=0.9), lambda ps: Adam(ps, lr=0.02),
                 lambda ps: AdamW(ps, lr=0.02, weight_decay=1e-4)):
        model = Sequential(Linear(2, 32, seed=1), ReLU(), Linear(32, 32, seed=2), ReLU(), Linear(32, 2, seed=3))
        opt = make(model.parameters())
        sched = CosineAnnealingLR(opt, T_max=300)
        loss_fn = CrossEntropyLoss()
        for _ in range(300):
            opt.zero_grad()
            loss = loss_fn(model(Tensor(x)), Tensor(y))
            loss.backward()
            opt.step()
            sched.step()
        acc = (model(Tensor(x)).data.argmax(axis=1) == y).mean()
        assert acc >= 0.95, f"{type(opt).__name__}: spiral training accuracy {acc:.2f}"


def test_regression_with_steplr_converges():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    w_true = np.array([[1.0], [-1.0], [2.0], [0.5]], dtype=np.float32)
    y = x @ w_true + np.float32(0.3)
    model = Linear(4, 1, seed=0)
    opt = SGD(model.parameters(), lr=0.1)
    sched = StepLR(opt, step_size=50, gamma=0.5)
    for _ in range(200):
        opt.zero_grad()
        loss = MSELoss()(model(Tensor(x)), Tensor(y))
        loss.backward()
        opt.step()
        sched.step()
    np.testing.assert_allclose(model.weight.data, w_true, atol=1e-2)
    assert float(loss.data) < 1e-4
