# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 07: Training
#
# You now have every ingredient: tensors, layers, losses, gradients and optimizers. This
# module assembles them into the loop that every deep-learning project runs millions of
# times (forward, loss, backward, clip, step), adds evaluation, saves and restores
# checkpoints safely, and measures what one training step costs in memory, phase by
# phase. After this module your framework trains real networks: milestone 2 solves XOR
# and milestone 3 reaches 97% on MNIST with an MLP built only from your code.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far                   you build now                     this unlocks
#   ------------                   -------------                     ------------
#   01/02 Tensor, activations      07 Training                       milestone 2 (XOR)
#   03 Module, Linear, Sequential    train_step / train_epoch   -->  milestone 3 (MLP, MNIST)
#   04 losses                 -->    train_steps / evaluate          milestone 5 (GPT, by steps)
#   05 autograd (backward)           clip_grad_norm_                 08 DataLoader feeds it
#   06 optimizers, schedulers        save/load_state_dict (.npz)     every later model trains
#                                    checkpoints, Trainer            with this loop
#                                    memory of one step
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp core.training
#| export
#| namespace tinytorch save=save_state_dict load=load_state_dict
#| namespace tinytorch.nn.utils clip_grad_norm_
import math
import os
import sys
import time
import tracemalloc
import zipfile

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.optimizers import LRScheduler, Optimizer
from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## 1. Anatomy of one training step
#
# ```
#     batch (x, y)
#         |
#         v
#   +-----------+   logits    +---------+   loss (scalar Tensor)
#   |  model(x) | ----------> | loss_fn | -----------------------+
#   +-----------+  (B, C)     +---------+                        |
#         ^                                                      v
#         |        optimizer.step()          loss.backward()    grads in every p.grad
#         +---- p.data -= ...  <---- clip_grad_norm_ <-----------+
#
#   order per batch:  zero_grad -> forward -> loss -> backward -> (clip) -> step
# ```
#
# Evaluation is the same forward pass with two differences: no gradients are needed
# (`with no_grad():` so no graph is recorded and no activations are kept), and the model
# is switched to `model.eval()` (layers such as dropout behave differently).
#
# Two provided helpers first: `batches` cuts arrays into mini-batches (module 08's
# `DataLoader` does this properly later), and `accuracy` compares predictions with labels.

# %% nbgrader={"grade": false, "grade_id": "helpers", "locked": true, "schema_version": 3, "solution": false}
#| export
def batches(x, y, batch_size: int = 32, shuffle: bool = False, seed=None):
    """Yield ``(x_batch, y_batch)`` NumPy slices; with ``shuffle`` the order is a function of ``seed``.

    A list of batches can be made with ``list(batches(...))``; call again for a new epoch.
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if batch_size < 1:
        raise ValueError(f"expected batch_size >= 1, got {batch_size}")
    order = np.random.default_rng(seed).permutation(len(x)) if shuffle else np.arange(len(x))
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        yield x[idx], y[idx]


def _as_tensor(a):
    return a if isinstance(a, Tensor) else Tensor(a)


def _array(a):
    return a.data if isinstance(a, Tensor) else np.asarray(a)


def accuracy(output, targets, threshold: float = 0.5) -> float:
    """Fraction of correct predictions.

    ``output`` of shape (B, C) with C > 1: class = argmax over C (logits or probabilities).
    ``output`` of shape (B,) or (B, 1): class = output > threshold (probabilities).
    ``targets``: class indices (B,) (or (B, 1) for the binary case).
    """
    out, t = _array(output), _array(targets)
    if out.ndim == 2 and out.shape[1] > 1:
        pred = out.argmax(axis=1)
    else:
        pred = (out.reshape(-1) > threshold).astype(np.int64)
    t = t.reshape(-1)
    if pred.shape[0] != t.shape[0]:
        raise ValueError(f"accuracy: {pred.shape[0]} predictions but {t.shape[0]} targets")
    return float((pred == t.astype(pred.dtype)).mean()) if len(t) else 0.0


# %% [markdown]
# ## 2. Gradient clipping
#
# One unlucky batch can produce a huge gradient (a spike) and one step can undo hours of
# training. `clip_grad_norm_` treats *all* gradients as one long vector, measures its
# length, and if it is longer than `max_norm` scales every gradient by the same factor:
#
# ```
#   total_norm = sqrt( sum over params of sum(g^2) )
#   if total_norm > max_norm:  g <- g * max_norm / (total_norm + 1e-6)
#
#   grads a = [3, 0], b = [0, 4]        total_norm = sqrt(9 + 16) = 5
#   max_norm = 1  ->  scale 1/5:        a = [0.6, 0], b = [0, 0.8]   new norm 1
# ```
#
# The direction is kept; only the length changes. The trailing underscore is PyTorch's
# convention for "modifies its argument in place". It returns the norm *before*
# clipping, which is worth logging: a growing norm is an early warning of divergence.

# %% nbgrader={"grade": false, "grade_id": "clip-grad-norm", "locked": false, "schema_version": 3, "solution": true}
#| export
def clip_grad_norm_(params, max_norm: float) -> float:
    """Scale all gradients in place so that their global L2 norm is at most ``max_norm``.

    Parameters without a gradient are ignored. Returns the total norm before clipping
    as a Python float.

    HINTS:
    - ``grads = [p.grad.data for p in params if p.grad is not None]``
    - sum of squares in float64 for accuracy: ``float(np.sum(g.astype(np.float64) ** 2))``
      or ``np.vdot(g, g)``
    - scale in place (``g *= coef``) so the gradients stay float32 and the same arrays
    """
    ### BEGIN SOLUTION
    grads = [p.grad.data if isinstance(p.grad, Tensor) else p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    total = math.sqrt(sum(float(np.vdot(g.ravel().astype(np.float64), g.ravel())) for g in grads))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g *= np.asarray(coef, dtype=g.dtype)
    return total
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-clip-grad-norm", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def _p(values, grad=None):
    t = Tensor(np.array(values, dtype=np.float32), requires_grad=True)
    if grad is not None:
        t.grad = Tensor(np.array(grad, dtype=np.float32))
    return t


def test_unit_clip_grad_norm():
    """The worked example: norm 5 clipped to 1 keeps the direction."""
    a, b = _p([0.0, 0.0], [3.0, 0.0]), _p([0.0, 0.0], [0.0, 4.0])
    norm = clip_grad_norm_([a, b], max_norm=1.0)
    assert abs(norm - 5.0) < 1e-5, f"expected the pre-clipping norm 5.0, got {norm}"
    np.testing.assert_allclose(a.grad.data, [0.6, 0.0], rtol=1e-5)
    np.testing.assert_allclose(b.grad.data, [0.0, 0.8], rtol=1e-5)
    assert a.grad.data.dtype == np.float32
    # below the threshold nothing changes
    c = _p([0.0], [0.5])
    assert abs(clip_grad_norm_([c], max_norm=1.0) - 0.5) < 1e-6
    np.testing.assert_allclose(c.grad.data, [0.5])
    d, e = _p([0.0]), _p([0.0, 0.0], [6.0, 8.0])     # d has no gradient
    assert abs(clip_grad_norm_([d, e], max_norm=5.0) - 10.0) < 1e-4
    np.testing.assert_allclose(e.grad.data, [3.0, 4.0], rtol=1e-5)
    assert d.grad is None
    ### BEGIN HIDDEN TESTS
    f, g, h = _p([0.0], [1.0]), _p([0.0], [2.0]), _p([0.0], [2.0])
    assert abs(clip_grad_norm_([f, g, h], max_norm=1.5) - 3.0) < 1e-5
    np.testing.assert_allclose([f.grad.data[0], g.grad.data[0], h.grad.data[0]], [0.5, 1.0, 1.0], rtol=1e-5)
    ### END HIDDEN TESTS


test_unit_clip_grad_norm()

# %% [markdown]
# ## 3. Saving state safely: `.npz`, never pickle
#
# A state dict is a flat `name -> array` mapping (module 03's `Module.state_dict()`,
# module 06's `Optimizer.state_dict()`). The obvious way to save it, `pickle`, is a trap:
# unpickling can run arbitrary code, so opening a checkpoint someone sent you is like
# running their program. NumPy's `.npz` is a plain zip file of `.npy` arrays (a small
# header with dtype and shape, then the raw bytes) and `np.load(..., allow_pickle=False)`
# refuses anything that is not plain numbers.
#
# ```
#   ckpt.npz  (zip)
#   +-- layers.0.weight.npy   header {'descr': '<f4', 'shape': (784, 256)}  + 802,816 bytes
#   +-- layers.0.bias.npy     header {'descr': '<f4', 'shape': (256,)}      +   1,024 bytes
#   +-- ...
# ```
#
# Write each entry with `np.lib.format.write_array(fh, arr, allow_pickle=False)` inside a
# `zipfile.ZipFile`, exactly what `np.savez` does internally (using `zipfile` directly
# means a key may be any string, even `"file"`, which `np.savez(file, **d)` cannot take).
# Write to a temporary file and `os.replace` it onto the target at the end: a crash in the
# middle of saving then never destroys the previous checkpoint.
#
# These two functions are also PyTorch's `torch.save(model.state_dict(), path)` and
# `model.load_state_dict(torch.load(path))`: once this module is completed they are
# importable as `tinytorch.save` and `tinytorch.load` (the `#| namespace` line of the first
# code cell publishes them under those names).

# %% nbgrader={"grade": false, "grade_id": "state-dict-io", "locked": false, "schema_version": 3, "solution": true}
#| export
def save_state_dict(state: dict, path) -> str:
    """Write ``{name: array}`` to an ``.npz`` file at ``path`` (atomically) and return the path.

    Values are converted with ``np.asarray``; object arrays (which would need pickle)
    raise ``TypeError`` naming the key.

    HINTS:
    - check every key is a ``str`` and every array's ``dtype != object``
    - ``tmp = f"{path}.tmp"``; ``with zipfile.ZipFile(tmp, "w") as zf:``
      ``with zf.open(name + ".npy", "w", force_zip64=True) as fh:``
      ``np.lib.format.write_array(fh, arr, allow_pickle=False)``
    - ``os.replace(tmp, path)``
    """
    ### BEGIN SOLUTION
    path = os.fspath(path)
    arrays = {}
    for name, value in state.items():
        if not isinstance(name, str):
            raise TypeError(f"state dict keys must be str, got {type(name).__name__} {name!r}")
        arr = np.asarray(value.data if isinstance(value, Tensor) else value)
        if arr.dtype == object:
            raise TypeError(f"state[{name!r}] has dtype object: expected a numeric array (no pickle)")
        arrays[name] = arr
    tmp = f"{path}.tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, arr, allow_pickle=False)
    os.replace(tmp, path)
    return path
    ### END SOLUTION


def load_state_dict(path) -> dict:
    """Read an ``.npz`` written by ``save_state_dict``; never unpickles.

    HINT: ``with np.load(path, allow_pickle=False) as z: return {k: z[k] for k in z.files}``
    """
    ### BEGIN SOLUTION
    with np.load(os.fspath(path), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-state-dict-io", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_state_dict_io():
    """Round trip keeps names, dtypes, shapes and values; object arrays are refused."""
    import tempfile

    state = {"layers.0.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
             "step_count": np.array(7, dtype=np.int64),
             "file": np.array([1.5], dtype=np.float32)}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ckpt.npz")
        assert save_state_dict(state, path) == path
        back = load_state_dict(path)
        assert set(back) == set(state), f"keys: expected {sorted(state)}, got {sorted(back)}"
        for k in state:
            assert back[k].dtype == state[k].dtype and back[k].shape == state[k].shape, k
            np.testing.assert_array_equal(back[k], state[k])
        try:
            save_state_dict({"bad": np.array([{"a": 1}], dtype=object)}, os.path.join(d, "bad.npz"))
        except TypeError:
            pass
        else:
            raise AssertionError("object arrays must be refused (they would need pickle)")
        np.save(os.path.join(d, "evil.npy"), np.array([print], dtype=object), allow_pickle=True)
        with zipfile.ZipFile(os.path.join(d, "evil.npz"), "w") as zf:
            zf.write(os.path.join(d, "evil.npy"), "evil.npy")
        try:
            load_state_dict(os.path.join(d, "evil.npz"))
        except ValueError:
            pass
        else:
            raise AssertionError("load_state_dict must refuse pickled content")
        ### BEGIN HIDDEN TESTS
        assert not os.path.exists(os.path.join(d, "ckpt.npz.tmp")), "the temporary file must be renamed"
        ### END HIDDEN TESTS


test_unit_state_dict_io()

# %% [markdown]
# ## 4. Checkpoints: model + optimizer (+ scheduler) in one file
#
# A checkpoint is three state dicts and a little metadata (epoch, best accuracy) in one
# `.npz`, with the keys prefixed so they cannot collide:
#
# ```
#   model.layers.0.weight  model.layers.0.bias ...       Module.state_dict()
#   optimizer.group.0.lr  optimizer.step_count  optimizer.state.0.m ...   Optimizer.state_dict()
#   scheduler.last_epoch  scheduler.base_lrs             LRScheduler.state_dict()
#   meta.epoch  meta.best_accuracy                        anything numeric
# ```

# %% nbgrader={"grade": false, "grade_id": "checkpoint", "locked": false, "schema_version": 3, "solution": true}
#| export
def save_checkpoint(path, model, optimizer=None, scheduler=None, **meta) -> str:
    """Save model (and optimizer, scheduler, numeric metadata) to one ``.npz``.

    HINT: build one dict with prefixes ``model.``, ``optimizer.``, ``scheduler.``,
    ``meta.`` and call ``save_state_dict``.
    """
    ### BEGIN SOLUTION
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    if optimizer is not None:
        state.update({f"optimizer.{k}": v for k, v in optimizer.state_dict().items()})
    if scheduler is not None:
        state.update({f"scheduler.{k}": v for k, v in scheduler.state_dict().items()})
    state.update({f"meta.{k}": np.asarray(v) for k, v in meta.items()})
    return save_state_dict(state, path)
    ### END SOLUTION


def load_checkpoint(path, model, optimizer=None, scheduler=None) -> dict:
    """Restore what ``save_checkpoint`` wrote; return the metadata as Python scalars.

    HINT: split each key at its first ``.`` into (prefix, name) and hand each group to
    ``model.load_state_dict``, ``optimizer.load_state_dict``, ``scheduler.load_state_dict``.
    """
    ### BEGIN SOLUTION
    groups = {"model": {}, "optimizer": {}, "scheduler": {}, "meta": {}}
    for key, arr in load_state_dict(path).items():
        prefix, _, name = key.partition(".")
        if prefix not in groups:
            raise ValueError(f"unexpected key {key!r} in checkpoint {path}: expected a prefix in {sorted(groups)}")
        groups[prefix][name] = arr
    model.load_state_dict(groups["model"])
    if optimizer is not None:
        if not groups["optimizer"]:
            raise ValueError(f"checkpoint {path} holds no optimizer state")
        optimizer.load_state_dict(groups["optimizer"])
    if scheduler is not None:
        if not groups["scheduler"]:
            raise ValueError(f"checkpoint {path} holds no scheduler state")
        scheduler.load_state_dict(groups["scheduler"])
    return {k: (v.item() if v.ndim == 0 else v) for k, v in groups["meta"].items()}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-checkpoint", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.optimizers import SGD, Adam, LambdaLR, StepLR


def test_unit_checkpoint():
    """A checkpoint restores weights, optimizer state, scheduler and metadata."""
    import tempfile

    model = Sequential(Linear(3, 4, seed=0), ReLU(), Linear(4, 2, seed=1))
    opt = Adam(model.parameters(), lr=0.01)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    for p in model.parameters():
        p.grad = Tensor(np.ones_like(p.data))
    opt.step()
    sched.step()
    with tempfile.TemporaryDirectory() as d:
        path = save_checkpoint(os.path.join(d, "c.npz"), model, opt, sched, epoch=3, best=0.875)
        model2 = Sequential(Linear(3, 4, seed=5), ReLU(), Linear(4, 2, seed=6))
        opt2 = Adam(model2.parameters(), lr=0.5)
        sched2 = StepLR(opt2, step_size=1, gamma=0.5)
        meta = load_checkpoint(path, model2, opt2, sched2)
    assert meta == {"epoch": 3, "best": 0.875}, f"metadata: got {meta}"
    for (n1, a), (n2, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=n1)
    assert opt2.step_count == 1 and opt2.lr == opt.lr == 0.005 and sched2.last_epoch == 1
    np.testing.assert_array_equal(opt2.state[0]["m"], opt.state[0]["m"])


test_unit_checkpoint()

# %% [markdown]
# ## 5. The loop: `train_epoch` and `evaluate`
#
# `data` is anything that yields `(x, y)` pairs: a list of batches, `batches(...)`, or
# module 08's `DataLoader`. NumPy arrays are wrapped into Tensors. The epoch's loss is
# the mean over *examples* (weight each batch by its size: the last batch may be smaller).
#
# ```
#   for x, y in data:                        x (B, ...)   y (B,) labels or (B, k) targets
#       optimizer.zero_grad()
#       out  = model(x)                      (B, C)
#       loss = loss_fn(out, y)               scalar
#       loss.backward()
#       if max_grad_norm: clip_grad_norm_(optimizer.params, max_grad_norm)
#       optimizer.step()
#       if scheduler is stepped per batch: scheduler.step()
#       running sums += loss * B, metric * B, B
# ```
#
# Memory discipline: read the loss as a Python float (`float(loss.data)`) before the next
# batch. Keeping the loss *Tensor* in a list would keep its graph, and with it every
# activation of every batch, alive until the end of the epoch.
#
# The body of that loop, one optimizer step on one batch, is its own function,
# `train_step`: `train_epoch` calls it for every batch of an epoch, and section 6's
# `train_steps` calls it for a fixed number of steps. One home for the step means one
# place to get its order right.

# %% nbgrader={"grade": false, "grade_id": "train-step", "locked": false, "schema_version": 3, "solution": true}
#| export
def train_step(model, optimizer, loss_fn, x, y, max_grad_norm=None, scheduler=None):
    """One optimizer step on the batch ``(x, y)`` (Tensors); return ``(output, loss value)``.

    Order: zero_grad, forward, loss, backward, clip (if ``max_grad_norm``), step, then
    ``scheduler.step()`` if a scheduler is given. The loss value is a Python float.

    HINT: clip ``optimizer.params`` (every group's parameters) with ``clip_grad_norm_``.
    """
    ### BEGIN SOLUTION
    optimizer.zero_grad()
    out = model(x)
    loss = loss_fn(out, y)
    loss.backward()
    if max_grad_norm is not None:
        clip_grad_norm_(optimizer.params, max_grad_norm)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return out, float(loss.data)
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "train-epoch", "locked": false, "schema_version": 3, "solution": true}
#| export
def train_epoch(model, optimizer, loss_fn, data, metric=accuracy, max_grad_norm=None,
                scheduler=None, on_batch=None) -> dict:
    """Train one pass over ``data``; return ``{"loss": mean loss, "accuracy": mean metric}``.

    ``metric(output, y)`` is averaged like the loss (None: skip it, no "accuracy" key).
    ``scheduler``, if given, is stepped after every batch (OneCycleLR style); step an
    epoch-level scheduler yourself after this function returns.
    ``on_batch(i, loss_value)``, if given, is called after every batch (progress bars).

    HINTS: ``model.train()`` first; wrap x and y with ``_as_tensor``; ``n = len(x)``;
    ``out, value = train_step(...)`` does the step.
    """
    ### BEGIN SOLUTION
    model.train()
    total_loss, total_metric, count = 0.0, 0.0, 0
    for i, (x, y) in enumerate(data):
        x, y = _as_tensor(x), _as_tensor(y)
        n = x.shape[0]
        out, value = train_step(model, optimizer, loss_fn, x, y, max_grad_norm, scheduler)
        total_loss += value * n
        if metric is not None:
            total_metric += metric(out, y) * n
        count += n
        del out
        if on_batch is not None:
            on_batch(i, value)
    if count == 0:
        raise ValueError("train_epoch got no batches")
    result = {"loss": total_loss / count}
    if metric is not None:
        result["accuracy"] = total_metric / count
    return result
    ### END SOLUTION


def evaluate(model, loss_fn, data, metric=accuracy) -> dict:
    """Mean loss (and metric) over ``data`` in eval mode, without recording a graph.

    HINTS: ``model.eval()``, ``with no_grad():``, the same running sums as train_epoch;
    set ``model.train()`` back before returning.
    """
    ### BEGIN SOLUTION
    model.eval()
    total_loss, total_metric, count = 0.0, 0.0, 0
    try:
        with no_grad():
            for x, y in data:
                x, y = _as_tensor(x), _as_tensor(y)
                n = x.shape[0]
                out = model(x)
                total_loss += float(loss_fn(out, y).data) * n
                if metric is not None:
                    total_metric += metric(out, y) * n
                count += n
    finally:
        model.train()
    if count == 0:
        raise ValueError("evaluate got no batches")
    result = {"loss": total_loss / count}
    if metric is not None:
        result["accuracy"] = total_metric / count
    return result
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-train-epoch", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def _blobs(n=200, seed=0):
    """Two Gaussian blobs in 2-D: class 0 around (-1, -1), class 1 around (+1, +1)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = (rng.standard_normal((n, 2)) * 0.5 + (2 * y[:, None] - 1)).astype(np.float32)
    return x, y.astype(np.int64)


def _ce(out, y):
    """Cross-entropy written with Tensor ops only (module 04's loss works the same)."""
    z = out - Tensor(out.data.max(axis=1, keepdims=True))                # (B, C)
    logp = z - z.exp().sum(axis=1, keepdims=True).log()                  # (B, C)
    onehot = np.eye(out.shape[1], dtype=np.float32)[_array(y)]          # (B, C)
    return -(logp * Tensor(onehot)).sum() * (1.0 / out.shape[0])


def test_unit_train_epoch():
    """train_epoch lowers the loss on separable blobs; evaluate records no graph."""
    x, y = _blobs()
    model = Sequential(Linear(2, 8, seed=0), ReLU(), Linear(8, 2, seed=1))
    opt = SGD(model.parameters(), lr=0.5)
    first = evaluate(model, _ce, batches(x, y, 50))
    for epoch in range(5):
        stats = train_epoch(model, opt, _ce, batches(x, y, 32, shuffle=True, seed=epoch))
    last = evaluate(model, _ce, batches(x, y, 50))
    assert set(stats) == {"loss", "accuracy"}, f"keys: got {sorted(stats)}"
    assert last["loss"] < 0.5 * first["loss"], f"loss {first['loss']:.3f} -> {last['loss']:.3f}"
    assert last["accuracy"] > 0.9, f"accuracy {last['accuracy']:.3f}"
    assert model.training, "evaluate must put the model back in training mode"
    # evaluate runs in eval mode, records no graph and leaves gradients untouched
    from tinytorch.core.layers import Module

    class Spy(Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.seen = inner, []

        def forward(self, x):
            out = self.inner(x)
            self.seen.append((self.training, out.requires_grad))
            return out

    spy = Spy(model)
    for p in model.parameters():
        p.grad = None
    evaluate(spy, _ce, [(x[:10], y[:10])])
    assert all(p.grad is None for p in model.parameters())
    assert spy.seen == [(False, False)], f"evaluate: expected eval mode and no graph, got (training, requires_grad) = {spy.seen}"
    # the epoch loss weights batches by size: one batch of 3 and one of 1
    model2 = Sequential(Linear(2, 2, seed=3))
    zero = SGD(model2.parameters(), lr=0.0)
    got = evaluate(model2, _ce, [(x[:3], y[:3]), (x[3:4], y[3:4])], metric=None)
    ref = evaluate(model2, _ce, [(x[:4], y[:4])], metric=None)
    assert abs(got["loss"] - ref["loss"]) < 1e-5 and "accuracy" not in got
    trained = train_epoch(model2, zero, _ce, [(x[:3], y[:3]), (x[3:4], y[3:4])])  # lr 0: nothing moves
    assert abs(trained["loss"] - ref["loss"]) < 1e-5, f"train_epoch's mean loss: expected {ref['loss']:.5f}, got {trained['loss']:.5f}"

    class Recorder(SGD):  # sees the gradient of every step
        def step(self):
            self.seen.append(self.params[0].grad.data.copy())
            super().step()

    rec = Recorder(model2.parameters(), lr=0.0)
    rec.seen = []
    train_epoch(model2, rec, _ce, [(x[:4], y[:4]), (x[:4], y[:4])])
    np.testing.assert_allclose(rec.seen[1], rec.seen[0], rtol=1e-6,
                               err_msg="the same batch twice must give the same gradient: zero_grad() before each batch")
    ### BEGIN HIDDEN TESTS
    seen = []
    train_epoch(model2, zero, _ce, [(x[:3], y[:3])], on_batch=lambda i, v: seen.append((i, v)))
    assert len(seen) == 1 and seen[0][0] == 0
    ### END HIDDEN TESTS


test_unit_train_epoch()

# %% [markdown]
# ## 6. Training by steps: `train_steps`
#
# Epochs suit a dataset you walk through in order (MNIST: 469 batches of 128). A language
# model samples random windows from a corpus of a million characters; "one epoch" means
# nothing there, and recipes such as nanoGPT's count **optimizer steps** instead: 2,000
# iterations, evaluate every 250, a learning rate that warms up for 100 steps and then
# decays by cosine (a per-step `LambdaLR`, module 06). `train_steps` is that loop. It
# calls the same `train_step`, so clipping, the scheduler and the order of a step are
# those of `train_epoch`:
#
# ```
#   steps done:   0     1     2    ...   250   ...   2000
#   eval_fn():    E                      E             E      at 0, every eval_every, at the end
#   train_step:      S     S     S ... S     S ...  S           one batch, one optimizer step
#
#   history = [{"step": 0,    "seconds": 0.0, "eval": eval_fn()},
#              {"step": 250,  "seconds": training seconds of steps 1-250, "eval": ...}, ...
#              {"step": 2000, "seconds": training seconds of all steps,   "eval": ...}]
# ```
#
# `data` is a function `step -> (x, y)` (a random batch each call) or an iterable of
# batches (a list or a `DataLoader`), started again whenever it runs out. `seconds`
# counts training only (batches and steps): evaluation is not part of a step's cost.

# %% nbgrader={"grade": false, "grade_id": "train-steps", "locked": false, "schema_version": 3, "solution": true}
#| export
def _batch_source(data):
    """A function ``step -> (x, y)`` from a callable or a re-iterable of batches."""
    if callable(data):
        return data
    if isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], tuple):
        raise TypeError("train_steps got one (x, y) pair: pass a list of batches, [(x, y)], "
                        "or a function step -> (x, y)")
    state = {"it": iter(data)}

    def next_batch(step):
        try:
            batch = next(state["it"])
        except StopIteration:
            state["it"] = iter(data)                      # a list or DataLoader starts again
            try:
                batch = next(state["it"])
            except StopIteration:
                raise ValueError(f"train_steps: the data ran out after {step} steps (an iterator "
                                 "cannot start again: pass a list, a DataLoader or a function)") from None
        return batch

    return next_batch


def train_steps(model, optimizer, loss_fn, data, steps: int, max_grad_norm=None, scheduler=None,
                eval_fn=None, eval_every=None, on_step=None, on_eval=None) -> dict:
    """Train ``steps`` optimizer steps, one batch each, with ``train_step``.

    ``data``: a function ``step -> (x, y)`` or an iterable of batches (restarted when it
    runs out). ``scheduler`` is stepped after every step. ``eval_fn()`` (returns anything,
    typically a dict of losses) runs before the first step, after every ``eval_every``
    steps and after the last one; each result is recorded as ``{"step": s, "seconds":
    training seconds so far, "eval": result}`` and passed to ``on_eval(record)``.
    ``on_step(step, loss_value, seconds)`` is called after every step (step = 0, 1, ...;
    seconds of training so far, for a progress line).
    Returns ``{"losses": [loss of every step], "history": [records], "seconds": total}``.

    HINTS: ``batch = _batch_source(data)``; per step: ``x, y = batch(step)``, wrap them with
    ``_as_tensor``, ``_, value = train_step(...)``; time the batch and the step with
    ``time.perf_counter()``; evaluate when ``s % eval_every == 0`` (s = steps done) or
    ``s == steps``.
    """
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"train_steps: expected steps >= 1, got {steps!r}")
    if eval_every is not None and not (isinstance(eval_every, int) and eval_every >= 1):
        raise ValueError(f"train_steps: expected eval_every >= 1, got {eval_every!r}")
    ### BEGIN SOLUTION
    batch = _batch_source(data)
    losses, history, seconds = [], [], 0.0

    def evaluate_now(done):
        record = {"step": done, "seconds": seconds, "eval": eval_fn()}
        history.append(record)
        if on_eval is not None:
            on_eval(record)

    model.train()
    if eval_fn is not None:
        evaluate_now(0)
    for step in range(steps):
        t0 = time.perf_counter()
        x, y = batch(step)
        _, value = train_step(model, optimizer, loss_fn, _as_tensor(x), _as_tensor(y),
                              max_grad_norm, scheduler)
        seconds += time.perf_counter() - t0
        losses.append(value)
        if on_step is not None:
            on_step(step, value, seconds)
        done = step + 1
        if eval_fn is not None and ((eval_every is not None and done % eval_every == 0) or done == steps):
            evaluate_now(done)
    return {"losses": losses, "history": history, "seconds": seconds}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-train-steps", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_train_steps():
    """train_steps trains, evaluates at 0, every eval_every and the end; the step clips and schedules."""
    x, y = _blobs(128, seed=4)
    model = Sequential(Linear(2, 8, seed=0), ReLU(), Linear(8, 2, seed=1))
    opt = SGD(model.parameters(), lr=0.5)
    rng = np.random.default_rng(0)

    def batch(step):                                         # a random batch of 16 per step
        idx = rng.integers(0, len(x), 16)
        return x[idx], y[idx]

    evals, steps_seen = [], []
    out = train_steps(model, opt, _ce, batch, 25, eval_every=10,
                      eval_fn=lambda: evaluate(model, _ce, [(x, y)])["loss"],
                      on_step=lambda s, v, t: steps_seen.append(s), on_eval=evals.append)
    assert set(out) == {"losses", "history", "seconds"}, f"keys: got {sorted(out)}"
    assert len(out["losses"]) == 25 and all(isinstance(v, float) for v in out["losses"])
    assert [r["step"] for r in out["history"]] == [0, 10, 20, 25], \
        f"evaluations at steps {[r['step'] for r in out['history']]}, expected [0, 10, 20, 25]"
    assert evals == out["history"] and steps_seen == list(range(25))
    assert out["history"][-1]["eval"] < 0.5 * out["history"][0]["eval"], "the loss must fall"
    assert out["history"][0]["seconds"] == 0.0 and out["seconds"] >= out["history"][-2]["seconds"] > 0
    # a list of batches starts again when it runs out: 5 steps over 2 batches
    seen = []
    model2 = Sequential(Linear(2, 2, seed=3))

    class Count(SGD):
        def step(self):
            seen.append(self.params[0].grad.data.copy())
            super().step()

    train_steps(model2, Count(model2.parameters(), lr=0.0), _ce, [(x[:4], y[:4]), (x[4:8], y[4:8])], 5)
    assert len(seen) == 5, f"expected 5 steps over a list of 2 batches, got {len(seen)}"
    np.testing.assert_allclose(seen[2], seen[0], rtol=1e-6, err_msg="batch 0 comes again at step 2")
    # the step clips the global gradient norm, then steps, then moves the schedule on
    model3 = Sequential(Linear(2, 2, seed=5))
    lrs = []

    class Look(SGD):
        def step(self):
            norm = math.sqrt(sum(float((p.grad.data.astype(np.float64) ** 2).sum()) for p in self.params))
            lrs.append((self.lr, norm))
            super().step()

    opt3 = Look(model3.parameters(), lr=1.0)
    sched = LambdaLR(opt3, lambda s: 0.5 ** s)
    train_steps(model3, opt3, _ce, lambda s: (100 * x[:8], y[:8]), 3, max_grad_norm=0.01, scheduler=sched)
    assert [round(lr, 6) for lr, _ in lrs] == [1.0, 0.5, 0.25], \
        f"step t must use the lr of schedule step t (scheduler after optimizer): got {[lr for lr, _ in lrs]}"
    assert all(n <= 0.01 * (1 + 1e-4) for _, n in lrs), f"gradient norms after clipping: {[n for _, n in lrs]}"
    try:
        train_steps(model3, opt3, _ce, iter([(x[:4], y[:4])]), 2)
    except ValueError:
        pass
    else:
        raise AssertionError("an iterator that runs out must raise a clear ValueError")
    ### BEGIN HIDDEN TESTS
    out = train_steps(model3, opt3, _ce, [(x[:4], y[:4])], 3, eval_fn=lambda: 1.0)
    assert [r["step"] for r in out["history"]] == [0, 3]
    ### END HIDDEN TESTS


test_unit_train_steps()

# %% [markdown]
# ## 7. A `Trainer` with a progress display (provided)
#
# `Trainer` packages the pieces: `fit` runs epochs of `train_epoch` and `evaluate`, steps
# an epoch scheduler, keeps a history, and can save a checkpoint whenever validation
# accuracy improves. The display uses `rich` when it is installed (a live progress bar
# and a coloured epoch line) and plain `print` otherwise: NumPy stays the only runtime
# dependency, so `rich` is imported lazily, inside the function that uses it.

# %% nbgrader={"grade": false, "grade_id": "trainer", "locked": true, "schema_version": 3, "solution": false}
#| export
class ProgressDisplay:
    """Per-epoch lines, plus a live per-batch bar when ``rich`` is available and stdout is a terminal."""

    def __init__(self, epochs: int, enabled: bool = True, use_rich=None):
        self.epochs, self.enabled = epochs, enabled
        self._rich = None
        if enabled and (use_rich or (use_rich is None and sys.stdout.isatty())):
            try:
                import rich.console
                import rich.progress
                self._rich = rich
                self._console = rich.console.Console()
            except ImportError:
                self._rich = None
        self._bar = None

    def start_epoch(self, epoch: int, total_batches=None):
        if self._rich is not None:
            p = self._rich.progress
            self._bar = p.Progress(p.TextColumn(f"epoch {epoch + 1}/{self.epochs}"), p.BarColumn(),
                                   p.MofNCompleteColumn(), p.TextColumn("loss {task.fields[loss]:.4f}"),
                                   p.TimeElapsedColumn(), transient=True, console=self._console)
            self._bar.start()
            self._task = self._bar.add_task("train", total=total_batches, loss=float("nan"))

    def batch(self, i: int, loss: float):
        if self._bar is not None:
            self._bar.update(self._task, advance=1, loss=loss)

    def end_epoch(self, epoch: int, train: dict, val=None, seconds: float = 0.0, lr=None):
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if not self.enabled:
            return
        parts = [f"epoch {epoch + 1:>3}/{self.epochs}", f"train loss {train['loss']:.4f}"]
        if "accuracy" in train:
            parts.append(f"acc {train['accuracy']:.4f}")
        if val is not None:
            parts.append(f"val loss {val['loss']:.4f}")
            if "accuracy" in val:
                parts.append(f"val acc {val['accuracy']:.4f}")
        if lr is not None:
            parts.append(f"lr {lr:.2e}")
        parts.append(f"{seconds:.1f}s")
        line = " | ".join(parts)
        if self._rich is not None:
            self._console.print(line, style="bold green" if val is not None else None)
        else:
            print(line, flush=True)


class Trainer:
    """``Trainer(model, optimizer, loss_fn).fit(train_data, epochs, val_data)``.

    ``train_data``/``val_data``: a re-iterable of ``(x, y)`` batches (list, DataLoader)
    or a callable ``epoch -> iterable`` (e.g. ``lambda e: batches(x, y, 128, True, seed=e)``).
    ``scheduler`` is stepped once per epoch, ``batch_scheduler`` once per batch.
    """

    def __init__(self, model, optimizer: Optimizer, loss_fn, scheduler: LRScheduler = None,
                 batch_scheduler: LRScheduler = None, max_grad_norm=None, metric=accuracy):
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.batch_scheduler = scheduler, batch_scheduler
        self.max_grad_norm, self.metric = max_grad_norm, metric
        self.history = []
        self.epoch = 0

    @staticmethod
    def _data(data, epoch):
        return data(epoch) if callable(data) else data

    def train_epoch(self, data) -> dict:
        return train_epoch(self.model, self.optimizer, self.loss_fn, data, metric=self.metric,
                           max_grad_norm=self.max_grad_norm, scheduler=self.batch_scheduler)

    def evaluate(self, data) -> dict:
        return evaluate(self.model, self.loss_fn, data, metric=self.metric)

    def fit(self, train_data, epochs: int, val_data=None, progress: bool = True,
            checkpoint_path=None, total_batches=None) -> list:
        """Train ``epochs`` more epochs; returns the history (one dict per epoch)."""
        display = ProgressDisplay(self.epoch + epochs, enabled=progress)
        best = -math.inf
        for _ in range(epochs):
            e = self.epoch
            display.start_epoch(e, total_batches)
            t0 = time.perf_counter()
            stats = train_epoch(self.model, self.optimizer, self.loss_fn, self._data(train_data, e),
                                metric=self.metric, max_grad_norm=self.max_grad_norm,
                                scheduler=self.batch_scheduler, on_batch=display.batch)
            train_seconds = time.perf_counter() - t0
            val = self.evaluate(self._data(val_data, e)) if val_data is not None else None
            lr = self.optimizer.lr
            if self.scheduler is not None:
                self.scheduler.step()
            self.epoch += 1
            record = {"epoch": self.epoch, "train": stats, "val": val, "seconds": train_seconds, "lr": lr}
            self.history.append(record)
            display.end_epoch(e, stats, val, time.perf_counter() - t0, lr)
            score = (val or stats).get("accuracy", -(val or stats)["loss"])
            if checkpoint_path is not None and score > best:
                best = score
                save_checkpoint(checkpoint_path, self.model, self.optimizer, self.scheduler,
                                epoch=self.epoch, score=score)
        return self.history


# %% [markdown]
# ## 8. Systems measurement: the memory lifecycle of one step
#
# What occupies memory during one step of the milestone-3 MLP (784-256-128-10, batch 128)?
#
# ```
#   bytes ^                      peak
#         |                 _____/\____
#         |      forward   /  backward  \  step       (grads stay until zero_grad)
#         |       _______ /              \___________
#         |______/  activations kept      grads (1x params), optimizer state (Adam 2x)
#         | params                                                    time ->
# ```
#
# Forward stores, for the backward pass, every intermediate that a gradient formula
# needs (each layer's input, the ReLU masks...): this grows with the batch size. Backward
# turns them into gradients and frees the graph. The optimizer adds its state the first
# time it steps. The helper below measures each phase with `tracemalloc`, which sees
# every NumPy allocation, while running *your* forward, backward and step.

# %% nbgrader={"grade": false, "grade_id": "step-memory", "locked": true, "schema_version": 3, "solution": false}
#| export
def measure_step_memory(model, loss_fn, optimizer, x, y) -> dict:
    """Run one training step and report memory (bytes) held after each phase.

    Returned keys: ``params`` (bytes of parameters), ``after_forward`` (memory added by
    the forward pass and the loss, i.e. the graph), ``after_backward`` (gradients left
    once the graph is freed), ``after_step`` (gradients + optimizer state),
    ``peak`` (highest extra memory at any moment of the step). All relative to before the step.
    """
    x, y = _as_tensor(x), _as_tensor(y)
    optimizer.zero_grad()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        out = model(x)
        loss = loss_fn(out, y)
        after_forward = tracemalloc.get_traced_memory()[0] - base
        loss.backward()
        del out, loss
        after_backward = tracemalloc.get_traced_memory()[0] - base
        optimizer.step()
        after_step, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return {"params": int(sum(p.data.nbytes for p in optimizer.params)),
            "after_forward": int(after_forward), "after_backward": int(after_backward),
            "after_step": int(after_step - base), "peak": int(peak - base)}


# %%
def milestone_mlp(seed=0):
    return Sequential(Linear(784, 256, seed=seed), ReLU(), Linear(256, 128, seed=seed + 1), ReLU(),
                      Linear(128, 10, seed=seed + 2))


rng = np.random.default_rng(0)
print(f"{'batch':>6} {'optimizer':>9} {'params MB':>10} {'forward MB':>11} {'backward MB':>12} "
      f"{'after step MB':>14} {'peak MB':>8}")
for batch_size in (32, 128, 512):
    for name, make in (("SGD", lambda ps: SGD(ps, lr=0.01)), ("Adam", lambda ps: Adam(ps, lr=1e-3))):
        model = milestone_mlp()
        opt = make(model.parameters())
        xb = rng.standard_normal((batch_size, 784)).astype(np.float32)          # (B, 784)
        yb = rng.integers(0, 10, batch_size)                                     # (B,)
        m = measure_step_memory(model, _ce, opt, xb, yb)
        print(f"{batch_size:>6} {name:>9} {m['params'] / 1e6:>10.2f} {m['after_forward'] / 1e6:>11.2f} "
              f"{m['after_backward'] / 1e6:>12.2f} {m['after_step'] / 1e6:>14.2f} {m['peak'] / 1e6:>8.2f}")

# a lower bound from the shapes: the outputs of the five layers (x existed before the step)
for batch_size in (32, 128, 512):
    floats = batch_size * (256 + 256 + 128 + 128 + 10)                       # Linear, ReLU, Linear, ReLU, Linear
    print(f"batch {batch_size}: the layer outputs alone are {floats * 4 / 1e6:.2f} MB of float32")

# %% [markdown]
# Read the table: `after_backward` is about the parameter bytes (one gradient per
# parameter), whatever the batch size; `after_step` adds nothing for SGD and 2x the
# parameters for Adam; `after_forward` and `peak` grow with the batch size (activations).
#
# Finally, everything together: train on the blobs with the `Trainer`, checkpoint in the
# middle, and check that resuming from the checkpoint gives exactly the same model as
# training straight through.

# %% nbgrader={"grade": true, "grade_id": "test-module", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_module():
    """Trainer learns; a run resumed from a checkpoint equals an uninterrupted run."""
    import tempfile

    x, y = _blobs(256, seed=2)
    xv, yv = _blobs(128, seed=3)
    train_data = lambda e: batches(x, y, 32, shuffle=True, seed=e)   # noqa: E731

    def fresh():
        model = Sequential(Linear(2, 16, seed=0), ReLU(), Linear(16, 2, seed=1))
        opt = Adam(model.parameters(), lr=0.02)
        return model, opt, StepLR(opt, step_size=2, gamma=0.5)

    model, opt, sched = fresh()
    straight = Trainer(model, opt, _ce, scheduler=sched)
    hist = straight.fit(train_data, epochs=4, val_data=[(xv, yv)], progress=False)
    assert hist[-1]["val"]["accuracy"] > 0.9, f"val accuracy {hist[-1]['val']['accuracy']:.3f}"
    assert [round(h["lr"], 6) for h in hist] == [0.02, 0.02, 0.01, 0.01], [h["lr"] for h in hist]

    with tempfile.TemporaryDirectory() as d:
        model1, opt1, sched1 = fresh()
        first = Trainer(model1, opt1, _ce, scheduler=sched1)
        first.fit(train_data, epochs=2, progress=False)
        path = save_checkpoint(os.path.join(d, "half.npz"), model1, opt1, sched1, epoch=first.epoch)
        model2, opt2, sched2 = fresh()
        meta = load_checkpoint(path, model2, opt2, sched2)
        resumed = Trainer(model2, opt2, _ce, scheduler=sched2)
        resumed.epoch = meta["epoch"]
        resumed.fit(train_data, epochs=2, progress=False)
    for (name, a), (_, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7, err_msg=f"resumed {name} differs")
    for p in model2.parameters():
        assert p.data.dtype == np.float32, f"parameter became {p.data.dtype}"


test_module()

# %% [markdown]
# ## Reflect
#
# 1. In the measurement, which columns grew with the batch size and which stayed put?
#    Using the printed numbers, estimate the largest batch that fits in 1 GB of memory
#    for this MLP with Adam. What would you change first to fit a 4x larger batch
#    (think: which tensors does backward really need)?
# 2. `train_epoch` reads `float(loss.data)` each batch. Suppose someone appends `loss`
#    (the Tensor) to a list instead, to average later. With the activation size you
#    measured at batch 128, how much memory would 469 batches (one MNIST epoch) pin?
# 3. Gradient clipping rescales the *global* norm. What could go wrong if each parameter
#    were clipped separately to `max_norm`?
# 4. Why must a checkpoint contain the optimizer's step count `t` for Adam to resume
#    exactly? What is the size of the first Adam update after a restart that forgot
#    `m`, `v` and `t`?
# 5. Loading a pickle can run code. Which field of an `.npy` header would a malicious file
#    need to abuse to do harm when loaded with `allow_pickle=False`, and why is there none?
# 6. Milestone 5 trains for 2,000 `train_steps` on random batches of 12 windows of 64
#    characters from a 1,003,854-character training split. How many characters does it
#    see in total, and how many "epochs" is that? Why does counting steps, not epochs,
#    suit random windows better (can the loop know when it has seen every window?)
