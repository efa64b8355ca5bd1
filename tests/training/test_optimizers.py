"""Optimizers and schedulers: differential (PyTorch golden fixtures), property and memory tests."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opcheck import load_golden
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import SGD, Adam, AdamW, CosineAnnealingLR, LambdaLR, OneCycleLR, Optimizer, StepLR
from tinytorch.core.tensor import Tensor

from .optim_opcases import CONFIGS


@pytest.fixture(scope="module")
def golden():
    return load_golden("optim_trajectories")


def _param(a):
    return Tensor(np.array(a, dtype=np.float32), requires_grad=True)


@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_matches_pytorch_trajectory(golden, key):
    """5 steps with fixed gradients reproduce torch.optim (the fixture of optim_opcases.py)."""
    name, kw = CONFIGS[key]
    cls = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}[name]
    p = _param(golden["p0"])
    opt = cls([p], **kw)
    for step, g in enumerate(golden["grads"]):
        p.grad = Tensor(g.copy())
        opt.step()
        np.testing.assert_allclose(p.data, golden[f"traj.{key}"][step], rtol=2e-5, atol=2e-6,
                                   err_msg=f"{key}, step {step + 1}")
        assert p.data.dtype == np.float32


def _lrs(sched, n):
    out = [sched.get_last_lr()[0]]
    for _ in range(n):
        sched.optimizer.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
    return np.array(out)


def test_schedulers_match_pytorch(golden):
    def opt():
        p = _param([0.0])
        p.grad = Tensor(np.zeros(1, dtype=np.float32))
        return SGD([p], lr=0.5)
    np.testing.assert_allclose(_lrs(StepLR(opt(), step_size=3, gamma=0.5), 10), golden["lr.step"], rtol=1e-12)
    np.testing.assert_allclose(_lrs(CosineAnnealingLR(opt(), T_max=8, eta_min=0.01), 8), golden["lr.cosine"],
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(_lrs(OneCycleLR(opt(), max_lr=1.0, total_steps=20), 19), golden["lr.onecycle"],
                               rtol=1e-9, atol=1e-12)


@pytest.mark.torch
def test_live_pytorch_if_available():
    """Direct comparison on a random problem when torch is importable (optional)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    p0 = rng.standard_normal((5, 2)).astype(np.float32)
    for cls, tcls, kw in [(SGD, torch.optim.SGD, dict(lr=0.03, momentum=0.5, weight_decay=0.1)),
                          (Adam, torch.optim.Adam, dict(lr=0.003, weight_decay=0.01)),
                          (AdamW, torch.optim.AdamW, dict(lr=0.003, weight_decay=0.3))]:
        p = _param(p0)
        tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
        opt, topt = cls([p], **kw), tcls([tp], **kw)
        for _ in range(10):
            g = rng.standard_normal((5, 2)).astype(np.float32)
            p.grad, tp.grad = Tensor(g), torch.from_numpy(g.copy())
            opt.step()
            topt.step()
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=cls.__name__)


def _mlp(seed=0):
    return Sequential(Linear(20, 32, seed=seed), ReLU(), Linear(32, 4, seed=seed + 1))


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps, lr=1e-2),
                                  lambda ps: AdamW(ps, lr=1e-2)], ids=["sgd-momentum", "adam", "adamw"])
def test_step_keeps_no_graph_alive(make):
    """After a step, no intermediate tensor of that step survives (weakrefs die)."""
    model = _mlp()
    opt = make(model.parameters())
    loss_fn = CrossEntropyLoss()
    rng = np.random.default_rng(0)
    refs = []
    for _ in range(3):
        x = Tensor(rng.standard_normal((8, 20)).astype(np.float32))
        y = Tensor(rng.integers(0, 4, 8))
        hidden = model.layers[0](x)          # (8, 32) intermediate of the graph
        out = model.layers[2](model.layers[1](hidden))
        loss = loss_fn(out, y)
        refs.append(weakref.ref(hidden))
        refs.append(weakref.ref(loss))
        opt.zero_grad()
        loss.backward()
        opt.step()
        del hidden, out, loss
    gc.collect()
    assert [r() for r in refs] == [None] * len(refs), "an optimizer step kept the autograd graph alive"
    for p in model.parameters():
        assert p._ctx is None and p.requires_grad
        assert p.grad is None or getattr(p.grad, "_ctx", None) is None
    for st_ in opt.state.values():
        for arr in st_.values():
            assert isinstance(arr, np.ndarray), "optimizer state must be plain arrays, not Tensors"


def test_updates_in_place_and_float32():
    model = _mlp()
    arrays = [p.data for p in model.parameters()]
    opt = Adam(model.parameters(), lr=1e-3)
    x = Tensor(np.random.default_rng(1).standard_normal((4, 20)).astype(np.float32))
    loss = CrossEntropyLoss()(model(x), Tensor(np.array([0, 1, 2, 3])))
    loss.backward()
    for p in model.parameters():
        assert p.grad.data.dtype == np.float32
    opt.step()
    for p, a in zip(model.parameters(), arrays):
        assert p.data is a, "step must modify p.data in place (the model holds that array)"
        assert p.data.dtype == np.float32
    for st_ in opt.state.values():
        for arr in st_.values():
            assert arr.dtype == np.float32


def test_state_memory_ratios():
    """SGD 0x, momentum 1x, Adam/AdamW 2x of parameter bytes after one step."""
    for make, ratio in [(lambda ps: SGD(ps, lr=0.1), 0), (lambda ps: SGD(ps, lr=0.1, momentum=0.9), 1),
                        (lambda ps: Adam(ps), 2), (lambda ps: AdamW(ps), 2)]:
        model = _mlp()
        params = model.parameters()
        for p in params:
            p.grad = Tensor(np.ones_like(p.data))
        opt = make(params)
        opt.step()
        assert opt.state_bytes() == ratio * sum(p.data.nbytes for p in params)


def test_errors_are_clear():
    with pytest.raises(ValueError, match="requires_grad|require grad"):
        SGD([Tensor([1.0])], lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        Adam([])
    with pytest.raises(ValueError):
        SGD([_param([1.0])], lr=0.1, nesterov=True)
    p = _param([1.0, 2.0])
    p.grad = Tensor(np.ones(3, dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        SGD([p], lr=0.1).step()


def test_zero_grad_and_skip_missing_grads():
    a, b = _param([1.0]), _param([1.0])
    a.grad = Tensor(np.array([1.0], dtype=np.float32))
    opt = Adam([a, b], lr=0.1)
    opt.step()
    assert b.data[0] == 1.0 and 1 not in opt.state
    opt.zero_grad()
    assert a.grad is None


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.integers(1, 4), which=st.sampled_from(["sgd", "adam", "adamw"]))
def test_state_dict_resume_is_exact(seed, steps, which):
    """Property: save after k steps, restore into a fresh optimizer, continue: bit-identical."""
    rng = np.random.default_rng(seed)
    make = {"sgd": lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
            "adam": lambda ps: Adam(ps, lr=0.01, weight_decay=0.1),
            "adamw": lambda ps: AdamW(ps, lr=0.01)}[which]
    shapes = [(3, 2), (2,)]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(steps + 2)]
    ps = [_param(rng.standard_normal(s)) for s in shapes]
    opt = make(ps)
    for gs in grads[:steps]:
        for p, g in zip(ps, gs):
            p.grad = Tensor(g)
        opt.step()
    saved = opt.state_dict()
    ps2 = [_param(p.data.copy()) for p in ps]
    opt2 = make(ps2)
    opt2.load_state_dict(saved)
    for gs in grads[steps:]:
        for p, p2, g in zip(ps, ps2, gs):
            p.grad, p2.grad = Tensor(g), Tensor(g.copy())
        opt.step()
        opt2.step()
    for p, p2 in zip(ps, ps2):
        np.testing.assert_array_equal(p.data, p2.data)


def test_base_class_contract():
    assert issubclass(AdamW, Optimizer) and issubclass(SGD, Optimizer)
    with pytest.raises(NotImplementedError):
        Optimizer([_param([1.0])], {"lr": 0.1}).step()


@pytest.mark.torch
def test_mlp_training_trajectory_matches_pytorch():
    """End to end: same MLP weights, data, loss and Adam -> same losses and weights for 5 steps."""
    torch = pytest.importorskip("torch")
    from tinytorch.core.training import train_epoch
    rng = np.random.default_rng(11)
    x = rng.standard_normal((32, 20)).astype(np.float32)
    y = rng.integers(0, 4, 32)
    model = _mlp(seed=4)
    lins = [m for m in model.layers if isinstance(m, Linear)]
    tmodel = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    with torch.no_grad():
        for tl, ol in zip([tmodel[0], tmodel[2]], lins):
            tl.weight.copy_(torch.from_numpy(ol.weight.data.T.copy()))
            tl.bias.copy_(torch.from_numpy(ol.bias.data.copy()))
    opt = AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    topt = torch.optim.AdamW(tmodel.parameters(), lr=0.01, weight_decay=0.1)
    for step in range(5):
        ours = train_epoch(model, opt, CrossEntropyLoss(), [(x, y)], metric=None)["loss"]
        topt.zero_grad()
        theirs = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(x)), torch.from_numpy(y))
        theirs.backward()
        topt.step()
        assert ours == pytest.approx(float(theirs.detach()), rel=1e-5, abs=1e-6), f"step {step}"
    np.testing.assert_allclose(lins[0].weight.data, tmodel[0].weight.detach().numpy().T, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- parameter groups
@pytest.mark.parametrize("which", ["sgd", "adam", "adamw"])
def test_two_groups_equal_two_optimizers(which):
    """Property of groups: one optimizer with two groups steps exactly like two optimizers."""
    make = {"sgd": lambda ps, **kw: SGD(ps, momentum=0.9, **kw),
            "adam": lambda ps, **kw: Adam(ps, betas=(0.9, 0.99), **kw),
            "adamw": lambda ps, **kw: AdamW(ps, betas=(0.9, 0.99), **kw)}[which]
    rng = np.random.default_rng(3)
    shapes = [(4, 3), (3,), (2, 2), (2,)]
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(6)]
    ps = [_param(a) for a in init]
    qs = [_param(a) for a in init]
    grouped = make([{"params": ps[::2], "weight_decay": 0.1}, {"params": ps[1::2], "weight_decay": 0.0, "lr": 0.02}],
                   lr=0.01)
    apart = [make(qs[::2], lr=0.01, weight_decay=0.1), make(qs[1::2], lr=0.02, weight_decay=0.0)]
    for gs in grads:
        for p, q, g in zip(ps, qs, gs):
            p.grad, q.grad = Tensor(g), Tensor(g.copy())
        grouped.step()
        for o in apart:
            o.step()
    for p, q in zip(ps, qs):
        np.testing.assert_array_equal(p.data, q.data)
    assert grouped.params == ps[::2] + ps[1::2]


@pytest.mark.torch
def test_groups_match_pytorch_if_available():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    a0, b0 = rng.standard_normal((3, 2)).astype(np.float32), rng.standard_normal(2).astype(np.float32)
    a, b = _param(a0), _param(b0)
    ta, tb = torch.nn.Parameter(torch.from_numpy(a0.copy())), torch.nn.Parameter(torch.from_numpy(b0.copy()))
    opt = AdamW([{"params": [a], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}], lr=1e-2,
                betas=(0.9, 0.99))
    topt = torch.optim.AdamW([{"params": [ta], "weight_decay": 0.1}, {"params": [tb], "weight_decay": 0.0}],
                             lr=1e-2, betas=(0.9, 0.99))
    sched = LambdaLR(opt, lambda s: 1.0 / (1 + s))
    tsched = torch.optim.lr_scheduler.LambdaLR(topt, lambda s: 1.0 / (1 + s))
    for _ in range(5):
        ga, gb = rng.standard_normal((3, 2)).astype(np.float32), rng.standard_normal(2).astype(np.float32)
        a.grad, b.grad = Tensor(ga), Tensor(gb)
        ta.grad, tb.grad = torch.from_numpy(ga.copy()), torch.from_numpy(gb.copy())
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
    np.testing.assert_allclose(a.data, ta.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.data, tb.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12)


def test_group_errors_are_clear():
    a, b = _param([1.0]), _param([2.0])
    with pytest.raises(ValueError, match="already in group 0"):
        SGD([{"params": [a]}, {"params": [a, b]}], lr=0.1)
    with pytest.raises(ValueError, match="already in group 0"):
        SGD([a, a], lr=0.1)
    with pytest.raises(ValueError, match=r"unknown key.*'lr_rate'"):
        SGD([{"params": [a], "lr_rate": 0.1}], lr=0.1)
    with pytest.raises(ValueError, match="group 1 is empty"):
        Adam([{"params": [a]}, {"params": []}])
    with pytest.raises(ValueError, match="no 'params'"):
        Adam([{"lr": 0.1}])
    with pytest.raises(TypeError, match="mix"):
        Adam([{"params": [a]}, b])
    with pytest.raises(TypeError, match="single Tensor"):
        Adam(a)
    with pytest.raises(ValueError, match="group 1"):
        SGD([{"params": [a]}, {"params": [b], "lr": -1.0}], lr=0.1)
    with pytest.raises(ValueError, match="betas"):
        Adam([{"params": [a], "betas": (0.9, 1.5)}])
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([{"params": [a], "nesterov": True}], lr=0.1)
    opt = SGD([{"params": a}], lr=0.1)                       # a lone Tensor as a group's params
    assert opt.params == [a] and opt.param_groups[0]["momentum"] == 0.0


def test_group_state_dict_roundtrip_and_mismatch():
    rng = np.random.default_rng(0)
    ps = [_param(rng.standard_normal((2, 2))), _param(rng.standard_normal(2))]
    opt = AdamW([{"params": [ps[0]], "weight_decay": 0.1}, {"params": [ps[1]], "weight_decay": 0.0, "lr": 0.5}],
                lr=0.01, betas=(0.8, 0.9))
    for p in ps:
        p.grad = Tensor(np.ones(p.shape, dtype=np.float32))
    opt.step()
    saved = opt.state_dict()
    assert {"group.0.lr", "group.1.lr", "group.1.weight_decay", "group.0.betas", "group.0.size"} <= set(saved)
    qs = [_param(p.data.copy()) for p in ps]
    opt2 = AdamW([{"params": [qs[0]]}, {"params": [qs[1]]}])
    opt2.load_state_dict(saved)
    assert [g["lr"] for g in opt2.param_groups] == [0.01, 0.5]
    assert [g["weight_decay"] for g in opt2.param_groups] == [0.1, 0.0]
    assert opt2.param_groups[0]["betas"] == (0.8, 0.9) and opt2.step_count == 1
    # a different grouping is refused, and the refused load changes nothing
    one = AdamW([_param(p.data.copy()) for p in ps], lr=0.3)
    with pytest.raises(ValueError, match="group"):
        one.load_state_dict(saved)
    swapped = AdamW([{"params": [_param(np.ones(2))]}, {"params": [_param(np.ones((2, 2)))]}], lr=0.3)
    with pytest.raises(ValueError, match="shape"):
        swapped.load_state_dict(saved)
    assert [g["lr"] for g in swapped.param_groups] == [0.3, 0.3] and swapped.step_count == 0 and not swapped.state


def test_schedulers_set_every_group():
    def two():
        return SGD([{"params": [_param([0.0])]}, {"params": [_param([0.0])], "lr": 0.1}], lr=1.0)
    opt = two()
    sched = CosineAnnealingLR(opt, T_max=4, eta_min=0.0)
    for _ in range(2):
        sched.step()
    np.testing.assert_allclose(sched.get_last_lr(), [0.5, 0.05])
    opt = two()
    sched = LambdaLR(opt, lambda s: 0.5 ** s)
    sched.step()
    np.testing.assert_allclose([g["lr"] for g in opt.param_groups], [0.5, 0.05])
    restored = LambdaLR(two(), lambda s: 0.5 ** s)
    restored.load_state_dict(sched.state_dict())
    np.testing.assert_allclose(restored.get_last_lr(), [0.5, 0.05])
    with pytest.raises(ValueError, match="group"):
        LambdaLR(SGD([_param([0.0])], lr=1.0), lambda s: 1.0).load_state_dict(sched.state_dict())
    with pytest.raises(TypeError, match="function"):
        LambdaLR(two(), 0.5)
    opt = two()
    opt.lr = 0.3                                             # the convenience setter: every group
    assert opt.lr == 0.3 and [g["lr"] for g in opt.param_groups] == [0.3, 0.3]
