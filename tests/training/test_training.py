"""Training loop, gradient clipping, .npz state dicts, checkpoints and step memory."""
from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import SGD, Adam, AdamW, LambdaLR, OneCycleLR, StepLR
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import (
    Trainer,
    accuracy,
    batches,
    clip_grad_norm_,
    evaluate,
    load_checkpoint,
    load_state_dict,
    measure_step_memory,
    save_checkpoint,
    save_state_dict,
    train_epoch,
    train_steps,
)


def _blobs(n=256, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centers = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0]])[:classes]
    x = (rng.standard_normal((n, 2)) * 0.5 + centers[y]).astype(np.float32)
    return x, y.astype(np.int64)


def _model(seed=0):
    return Sequential(Linear(2, 16, seed=seed), ReLU(), Linear(16, 3, seed=seed + 1))


def _param(a, g=None):
    p = Tensor(np.array(a, dtype=np.float32), requires_grad=True)
    if g is not None:
        p.grad = Tensor(np.array(g, dtype=np.float32))
    return p


@settings(max_examples=40, deadline=None)
@given(grads=st.lists(hnp.arrays(np.float32, st.integers(1, 6),
                                 elements=st.floats(-1e3, 1e3, width=32)), min_size=1, max_size=4),
       max_norm=st.floats(0.01, 100.0))
def test_clip_grad_norm_property(grads, max_norm):
    """Property: norm after clipping <= max_norm (+ tolerance), direction kept, pre-norm returned."""
    params = [_param(np.zeros_like(g), g) for g in grads]
    before = [g.astype(np.float64) for g in grads]
    expected = float(np.sqrt(sum((b ** 2).sum() for b in before)))
    total = clip_grad_norm_(params, max_norm)
    assert total == pytest.approx(expected, rel=1e-5, abs=1e-6)
    after = [p.grad.data.astype(np.float64) for p in params]
    new = float(np.sqrt(sum((a ** 2).sum() for a in after)))
    assert new <= max_norm * (1 + 1e-5) + 1e-6
    scale = min(1.0, max_norm / (expected + 1e-6))
    for a, b in zip(after, before):
        np.testing.assert_allclose(a, b * scale, rtol=1e-5, atol=1e-4)
    assert all(p.grad.data.dtype == np.float32 for p in params)


def test_clip_matches_pytorch_if_available():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    gs = [rng.standard_normal(s).astype(np.float32) * 10 for s in [(3, 4), (4,), (2, 2)]]
    ps = [_param(np.zeros_like(g), g) for g in gs]
    tps = [torch.nn.Parameter(torch.zeros(g.shape)) for g in gs]
    for tp, g in zip(tps, gs):
        tp.grad = torch.from_numpy(g.copy())
    ours = clip_grad_norm_(ps, 1.5)
    theirs = float(torch.nn.utils.clip_grad_norm_(tps, 1.5))
    assert ours == pytest.approx(theirs, rel=1e-5)
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-5, atol=1e-7)


@settings(max_examples=25, deadline=None)
@given(arrays=st.dictionaries(st.text("abc._/-xyz019", min_size=1, max_size=12).filter(lambda s: not s.startswith("/")),
                              hnp.arrays(st.sampled_from([np.float32, np.float64, np.int64, np.uint8, np.bool_]),
                                         hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)),
                              max_size=5))
def test_state_dict_roundtrip_property(tmp_path_factory, arrays):
    path = tmp_path_factory.mktemp("sd") / "s.npz"
    save_state_dict(arrays, path)
    back = load_state_dict(path)
    assert set(back) == set(arrays)
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        np.testing.assert_array_equal(back[k], v)


def test_load_refuses_pickle(tmp_path):
    evil = tmp_path / "evil.npy"
    np.save(evil, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(tmp_path / "evil.npz", "w") as zf:
        zf.write(evil, "weights.npy")
    with pytest.raises(ValueError):
        load_state_dict(tmp_path / "evil.npz")
    with pytest.raises(TypeError, match="object"):
        save_state_dict({"w": np.array([None], dtype=object)}, tmp_path / "x.npz")
    with pytest.raises(TypeError):
        save_state_dict({3: np.zeros(2)}, tmp_path / "y.npz")


def test_save_is_atomic_and_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_state_dict({"a": np.ones(3, dtype=np.float32)}, path)
    with pytest.raises(TypeError):
        save_state_dict({"a": np.zeros(3), "b": np.array([object()], dtype=object)}, path)
    np.testing.assert_array_equal(load_state_dict(path)["a"], np.ones(3, dtype=np.float32))
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]


def test_train_epoch_learns_and_evaluate_is_graph_free():
    x, y = _blobs()
    model = _model()
    opt = Adam(model.parameters(), lr=0.05)
    loss_fn = CrossEntropyLoss()
    before = evaluate(model, loss_fn, batches(x, y, 64))
    for e in range(4):
        stats = train_epoch(model, opt, loss_fn, batches(x, y, 32, shuffle=True, seed=e), max_grad_norm=5.0)
    after = evaluate(model, loss_fn, batches(x, y, 64))
    assert after["loss"] < 0.3 * before["loss"]
    assert after["accuracy"] > 0.95 and stats["accuracy"] > 0.9
    model.zero_grad()
    from tinytorch.core.autograd import is_grad_enabled
    evaluate(model, loss_fn, [(x[:5], y[:5])])
    assert is_grad_enabled(), "evaluate must restore grad mode"
    assert all(p.grad is None for p in model.parameters()), "evaluate must not produce gradients"
    assert model.training, "evaluate must put the model back in training mode"


def test_loss_is_example_weighted():
    x, y = _blobs(10)
    model = _model()
    loss_fn = CrossEntropyLoss()
    split = evaluate(model, loss_fn, [(x[:7], y[:7]), (x[7:], y[7:])])
    whole = evaluate(model, loss_fn, [(x, y)])
    assert split["loss"] == pytest.approx(whole["loss"], rel=1e-5)
    assert split["accuracy"] == pytest.approx(whole["accuracy"])


def test_batches_cover_everything_and_are_seeded():
    x = np.arange(10).reshape(10, 1)
    y = np.arange(10)
    got = np.concatenate([b for _, b in batches(x, y, 3, shuffle=True, seed=4)])
    assert sorted(got.tolist()) == list(range(10))
    again = np.concatenate([b for _, b in batches(x, y, 3, shuffle=True, seed=4)])
    np.testing.assert_array_equal(got, again)
    assert [len(b) for _, b in batches(x, y, 4)] == [4, 4, 2]
    with pytest.raises(ValueError, match="same length"):
        list(batches(x, y[:3], 2))


def test_accuracy_cases():
    assert accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1])) == 0.5
    assert accuracy(np.array([[0.7], [0.2], [0.6]]), np.array([[1], [0], [0]])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        accuracy(np.zeros((3, 2)), np.zeros(4))


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    """Train 4 epochs straight == train 2, checkpoint, restore into fresh objects, train 2."""
    x, y = _blobs(128, seed=5)
    data = lambda e: batches(x, y, 16, shuffle=True, seed=e)   # noqa: E731
    steps = 4 * 8

    def fresh():
        model = _model(seed=9)
        opt = Adam(model.parameters(), lr=0.01, weight_decay=1e-3)
        return model, opt, OneCycleLR(opt, max_lr=0.05, total_steps=steps)

    m1, o1, s1 = fresh()
    Trainer(m1, o1, CrossEntropyLoss(), batch_scheduler=s1, max_grad_norm=1.0).fit(data, 4, progress=False)

    m2, o2, s2 = fresh()
    t2 = Trainer(m2, o2, CrossEntropyLoss(), batch_scheduler=s2, max_grad_norm=1.0)
    t2.fit(data, 2, progress=False)
    path = save_checkpoint(tmp_path / "half.npz", m2, o2, s2, epoch=t2.epoch, note=1.5)
    m3, o3, s3 = fresh()
    meta = load_checkpoint(path, m3, o3, s3)
    assert meta == {"epoch": 2, "note": 1.5}
    t3 = Trainer(m3, o3, CrossEntropyLoss(), batch_scheduler=s3, max_grad_norm=1.0)
    t3.epoch = meta["epoch"]
    t3.fit(data, 2, progress=False)
    for (name, a), (_, b) in zip(m1.state_dict().items(), m3.state_dict().items()):
        np.testing.assert_array_equal(b, a, err_msg=name)
    assert o3.lr == o1.lr and o3.step_count == o1.step_count == steps


def test_checkpoint_errors(tmp_path):
    model = _model()
    path = save_checkpoint(tmp_path / "m.npz", model)
    with pytest.raises(ValueError, match="optimizer"):
        load_checkpoint(path, _model(), SGD(_model().parameters(), lr=0.1))
    other = Sequential(Linear(2, 8), ReLU(), Linear(8, 3))
    with pytest.raises((ValueError, KeyError)):
        load_checkpoint(path, other)


def test_trainer_history_schedulers_and_best_checkpoint(tmp_path, capsys):
    x, y = _blobs(96, seed=1)
    model = _model()
    opt = SGD(model.parameters(), lr=0.2, momentum=0.9)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    trainer = Trainer(model, opt, CrossEntropyLoss(), scheduler=sched)
    hist = trainer.fit([(x, y)], 3, val_data=[(x, y)], progress=True, checkpoint_path=tmp_path / "best.npz")
    printed = capsys.readouterr().out
    assert printed.count("epoch") == 3 and "val acc" in printed
    assert [h["lr"] for h in hist] == pytest.approx([0.2, 0.1, 0.05])
    saved = load_state_dict(tmp_path / "best.npz")
    assert {k for k in saved if k.startswith("model.")} == {"model." + k for k in model.state_dict()}
    assert saved["meta.epoch"] >= 1 and "optimizer.state.0.momentum_buffer" in saved


def test_one_step_everything_float32():
    """Train one step; every parameter, gradient and activation stays float32."""
    x, y = _blobs(16)
    model = _model()
    opt = Adam(model.parameters())
    h = model.layers[0](Tensor(x))
    out = model.layers[2](model.layers[1](h))
    assert h.data.dtype == np.float32 and out.data.dtype == np.float32
    loss = CrossEntropyLoss()(out, Tensor(y))
    assert loss.data.dtype == np.float32
    loss.backward()
    opt.step()
    for p in model.parameters():
        assert p.data.dtype == np.float32 and p.grad.data.dtype == np.float32


def test_measure_step_memory_lifecycle():
    """Gradients ~ 1x params after backward; Adam adds 2x params of state; activations grow with batch."""
    rng = np.random.default_rng(0)

    def measure(make, batch):
        model = Sequential(Linear(100, 200, seed=0), ReLU(), Linear(200, 10, seed=1))
        opt = make(model.parameters())
        x = rng.standard_normal((batch, 100)).astype(np.float32)
        return measure_step_memory(model, CrossEntropyLoss(), opt, x, rng.integers(0, 10, batch))

    sgd = measure(lambda ps: SGD(ps, lr=0.1), 64)
    adam = measure(lambda ps: Adam(ps), 64)
    pb = sgd["params"]
    assert 0.9 * pb <= sgd["after_backward"] <= 1.3 * pb, sgd
    assert adam["after_step"] - sgd["after_step"] == pytest.approx(2 * pb, rel=0.1), (sgd, adam)
    big = measure(lambda ps: SGD(ps, lr=0.1), 1024)
    assert big["after_forward"] > 4 * sgd["after_forward"], (sgd, big)
    assert big["peak"] >= big["after_forward"]


def test_progress_display_rich_and_plain(monkeypatch, capsys):
    """Rich is optional: with it a styled line, without it (import fails) a plain print."""
    import sys

    from tinytorch.core.training import ProgressDisplay
    stats, val = {"loss": 0.5, "accuracy": 0.75}, {"loss": 0.25, "accuracy": 0.875}
    if __import__("importlib").util.find_spec("rich") is not None:
        d = ProgressDisplay(1, use_rich=True)
        assert d._rich is not None
        d.start_epoch(0, 3)
        d.batch(0, 0.5)
        d.end_epoch(0, stats, val, 1.0, 0.01)
        assert "val acc 0.8750" in capsys.readouterr().out.replace("\n", " ")
    monkeypatch.setitem(sys.modules, "rich", None)          # import rich -> ImportError
    monkeypatch.setitem(sys.modules, "rich.console", None)
    monkeypatch.setitem(sys.modules, "rich.progress", None)
    d = ProgressDisplay(1, use_rich=True)
    assert d._rich is None
    d.start_epoch(0, 3)
    d.batch(0, 0.5)
    d.end_epoch(0, stats, val, 1.0, 0.01)
    out = capsys.readouterr().out
    assert out.startswith("epoch   1/1 | train loss 0.5000") and "val acc 0.8750" in out


# ---------------------------------------------------------------- train_steps
def test_train_steps_equals_train_epoch_over_the_same_batches():
    """One step body: train_steps over a list of batches == train_epoch over it, bit for bit
    (two AdamW groups, clipping and a per-step schedule included)."""
    x, y = _blobs(96, seed=7)
    data = list(batches(x, y, 16, shuffle=True, seed=0))          # 6 batches

    def fresh():
        model = _model(seed=4)
        decay = [p for p in model.parameters() if p.ndim >= 2]
        rest = [p for p in model.parameters() if p.ndim < 2]
        opt = AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=0.05)
        return model, opt, LambdaLR(opt, lambda s: min(1.0, (s + 1) / 3))

    m1, o1, s1 = fresh()
    stats = train_epoch(m1, o1, CrossEntropyLoss(), data, max_grad_norm=0.5, scheduler=s1)
    m2, o2, s2 = fresh()
    out = train_steps(m2, o2, CrossEntropyLoss(), data, len(data), max_grad_norm=0.5, scheduler=s2)
    for (name, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items()):
        np.testing.assert_array_equal(b, a, err_msg=name)
    sizes = [len(b[0]) for b in data]
    assert stats["loss"] == pytest.approx(np.dot(out["losses"], sizes) / sum(sizes), rel=1e-12)
    assert s1.get_last_lr() == s2.get_last_lr() and o1.step_count == o2.step_count == len(data)


def test_train_steps_callable_data_evaluation_schedule_and_errors():
    x, y = _blobs(128, seed=2)
    model = _model()
    opt = Adam(model.parameters(), lr=0.02)
    asked = []

    def batch(step):
        asked.append(step)
        rng = np.random.default_rng(step)
        idx = rng.integers(0, len(x), 32)
        return x[idx], y[idx]

    out = train_steps(model, opt, CrossEntropyLoss(), batch, 30, eval_every=12,
                      eval_fn=lambda: evaluate(model, CrossEntropyLoss(), [(x, y)]))
    assert asked == list(range(30))
    assert [r["step"] for r in out["history"]] == [0, 12, 24, 30]
    assert out["history"][-1]["eval"]["accuracy"] > 0.9 and model.training
    secs = [r["seconds"] for r in out["history"]]
    assert secs == sorted(secs) and secs[-1] == out["seconds"]
    out = train_steps(model, opt, CrossEntropyLoss(), [(x[:8], y[:8])], 24, eval_every=12, eval_fn=lambda: 0)
    assert [r["step"] for r in out["history"]] == [0, 12, 24]
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="steps"):
            train_steps(model, opt, CrossEntropyLoss(), batch, bad)
    with pytest.raises(ValueError, match="eval_every"):
        train_steps(model, opt, CrossEntropyLoss(), batch, 3, eval_every=0)
    with pytest.raises(ValueError, match="ran out after 1 steps"):
        train_steps(model, opt, CrossEntropyLoss(), iter([(x[:4], y[:4])]), 3)
    with pytest.raises(ValueError, match="ran out after 0 steps"):
        train_steps(model, opt, CrossEntropyLoss(), [], 3)
    with pytest.raises(TypeError, match="one \\(x, y\\) pair"):
        train_steps(model, opt, CrossEntropyLoss(), (x, y), 3)
