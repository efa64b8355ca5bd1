"""Integration tests for module 09: the spatial layers compose with modules 01-08.

Imports only the exported package (tinytorch.*), so `tito module test 9` runs them against
the learner's own code.
"""
import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import SGD
from tinytorch.core.spatial import AvgPool2d, BatchNorm2d, Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor


def _stripes(n, seed):
    """Images of horizontal (class 0) or vertical (class 1) stripes with noise: (n, 1, 8, 8)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    base = np.zeros((n, 1, 8, 8), np.float32)
    phase = rng.integers(0, 2, n)
    for i in range(n):
        if y[i] == 0:
            base[i, 0, phase[i]::2, :] = 1
        else:
            base[i, 0, :, phase[i]::2] = 1
    return (base + 0.3 * rng.standard_normal(base.shape)).astype(np.float32), y


def _net(seed=0):
    return Sequential(Conv2d(1, 4, 3, padding=1, bias=False, seed=seed), BatchNorm2d(4), ReLU(), MaxPool2d(2),
                      Conv2d(4, 8, 3, padding=1, seed=seed + 1), ReLU(), AvgPool2d(2),
                      Flatten(), Linear(8 * 2 * 2, 2, seed=seed + 2))


def _accuracy(model, x, y):
    model.eval()
    with no_grad():
        pred = model(Tensor(x)).data.argmax(axis=1)
    model.train()
    return float((pred == y).mean())


def test_cnn_learns_stripes_with_optimizer():
    """Conv/BN/pool/flatten + Linear, SGD with momentum: a real training loop solves stripes."""
    x, y = _stripes(256, seed=0)
    xt, yt = _stripes(128, seed=1)
    model = _net()
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = CrossEntropyLoss()
    first = None
    for step in range(40):
        idx = np.arange(step * 32, step * 32 + 32) % 256
        loss = loss_fn(model(Tensor(x[idx])), Tensor(y[idx]))
        first = float(loss.data) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.data) < first, f"loss should fall: first {first:.3f}, last {float(loss.data):.3f}"
    acc = _accuracy(model, xt, yt)
    assert acc >= 0.95, f"a CNN should separate stripes on held-out images: expected >= 95%, got {acc:.1%}"


def test_everything_stays_float32_after_a_step():
    x, y = _stripes(16, seed=2)
    model = _net()
    opt = SGD(model.parameters(), lr=0.01)
    loss = CrossEntropyLoss()(model(Tensor(x)), Tensor(y))
    opt.zero_grad()
    loss.backward()
    opt.step()
    for name, p in model.named_parameters():
        assert p.data.dtype == np.float32, f"{name}: parameter became {p.data.dtype}"
        assert p.grad is not None and p.grad.data.dtype == np.float32, f"{name}: gradient dtype"
    for k, v in model.state_dict().items():
        assert np.asarray(v).dtype == np.float32, f"state_dict[{k}] is {np.asarray(v).dtype}"


def test_state_dict_round_trip_keeps_batchnorm_buffers():
    x, y = _stripes(32, seed=3)
    a = _net(seed=0)
    a(Tensor(x))                                   # one training forward updates running stats
    sd = a.state_dict()
    assert any("running_mean" in k for k in sd) and any("running_var" in k for k in sd), list(sd)
    b = _net(seed=7)
    b.load_state_dict(sd)
    a.eval()
    b.eval()
    with no_grad():
        np.testing.assert_allclose(a(Tensor(x)).data, b(Tensor(x)).data, rtol=1e-6, atol=1e-6)


def test_no_grad_builds_no_graph_and_eval_is_deterministic():
    x, _ = _stripes(8, seed=4)
    model = _net()
    model.eval()
    with no_grad():
        out1 = model(Tensor(x))
        out2 = model(Tensor(x))
    assert out1._ctx is None and not out1.requires_grad, "no_grad() must not record a graph"
    np.testing.assert_array_equal(out1.data, out2.data)
    # one image at a time gives the same answer as the batch in eval mode (running stats)
    with no_grad():
        single = np.concatenate([model(Tensor(x[i:i + 1])).data for i in range(len(x))])
    np.testing.assert_allclose(single, out1.data, rtol=1e-5, atol=1e-5)
