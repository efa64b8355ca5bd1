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
# # Module 16: Compression (pruning and distillation)
#
# A trained network holds far more numbers than it needs. Most of the weights of your CIFAR-10
# CNN are small, and setting the smallest 90% of them to zero costs surprisingly little accuracy
# once the network has had a few hundred steps to adapt. Zeros alone buy nothing, though: a
# float32 array full of zeros is exactly as big and exactly as slow as before. This module
# builds the three tools that turn "fewer useful numbers" into real savings, and measures each:
#
# - **unstructured pruning** (zero individual weights) plus a **sparse file format** that stores
#   only the survivors, which shrinks the file but not the work of dense NumPy kernels;
# - **structured pruning** (remove whole filters), which gives a physically smaller *dense*
#   network, so every layer really computes less;
# - **knowledge distillation**, which trains a small network from scratch to imitate a big one.
#
# The masks you compute are the ones `torch.nn.utils.prune` computes (a test compares them),
# and `benchmarks/compression.py` measures all of it on the trained milestone-4 CNN.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far                          you build now                     this unlocks
#   ------------                          -------------                     ------------
#   01 Tensor, 03 Linear/Sequential -->   magnitude_prune: per layer,  -->  20 capstone: the
#   07 training loops, checkpoints  -->     global; GradualPruner           compression track
#   14 load_pretrained, the trained -->   structured_prune: smaller         (pruned + INT8 +
#      CNN, count_flops                     dense Sequential                sparse bundles)
#                                         save_sparse / load_sparse
#                                         distillation_loss (T, T^2)
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp optimization.compression
#| export
import json
import os
from pathlib import Path

import numpy as np

from tinytorch.core import activations
from tinytorch.core.autograd import log_softmax
from tinytorch.core.layers import Dropout, Linear, Module, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.spatial import AvgPool2d, BatchNorm2d, Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor


def weight_layers(model: Module) -> list:
    """``(state-dict name of the weight, layer)`` for every Linear and Conv2d of ``model``, in order.

    These are the tensors pruning acts on: biases and BatchNorm parameters are a few hundred
    numbers and stay dense (as in ``torch.nn.utils.prune`` usage and in every paper).
    """
    found = []

    def walk(module, prefix):
        if isinstance(module, (Linear, Conv2d)):
            found.append((prefix + "weight", module))
            return
        for name, child in module.named_children():
            walk(child, f"{prefix}{name}.")
    walk(model, "")
    return found


def _check_amount(amount, who):
    if isinstance(amount, bool) or not isinstance(amount, (float, int)) or not 0.0 <= float(amount) <= 1.0:
        raise ValueError(f"{who}: amount must be a fraction in [0, 1], got {amount!r}")
    return float(amount)

# %% [markdown]
# ## 1. Magnitude pruning: which weights go
#
# The simplest rule, and still the baseline every paper beats by a little: a weight that is
# close to zero contributes little, so zero the `k` weights of smallest |w|. For a fraction
# `amount` of a tensor of `n` numbers, PyTorch prunes `k = round(amount * n)` of them (Python's
# `round`: 2.5 rounds to 2) and keeps a boolean **mask**, 1 = kept:
#
# ```
#   w    = [ 0.9  -0.1   0.4  -0.7   0.05  0.3 ]      amount = 0.5 -> k = round(3.0) = 3
#   |w|  = [ 0.9   0.1   0.4   0.7   0.05  0.3 ]      three smallest: 0.05, 0.1, 0.3
#   mask = [  1     0     1     1     0     0  ]      w * mask = [0.9, 0, 0.4, -0.7, 0, 0]
# ```
#
# **Per layer** (`torch.nn.utils.prune.l1_unstructured`) every layer loses the same fraction.
# **Global** (`prune.global_unstructured`) ranks all the weights of all layers together, so
# a layer of big, important weights keeps more and a redundant layer loses more. Worked numbers
# for the CIFAR CNN at 90%: per layer, the first conv keeps 86 of its 864 weights (10 per
# filter, barely one per 3x3x3 patch); globally it can keep far more, because the 73,728
# weights of the last conv have smaller magnitudes (the initial scale is 1/sqrt(fan-in)).
#
# Pruning is in place: `weight.data *= mask`. The masks are returned, because training moves
# the zeros away again and they must be re-applied after every optimizer step.

# %% nbgrader={"grade": false, "grade_id": "unstructured", "locked": false, "schema_version": 3, "solution": true}
#| export
def l1_unstructured_mask(weight: np.ndarray, amount: float) -> np.ndarray:
    """Boolean mask (True = keep) of ``weight``'s shape that zeroes the ``round(amount * n)``
    entries of smallest absolute value (``torch.nn.utils.prune.l1_unstructured``'s choice).

    EXAMPLE: l1_unstructured_mask(np.array([0.9, -0.1, 0.4, -0.7, 0.05, 0.3]), 0.5)
             -> [True, False, True, True, False, False]
    HINT: k = round(amount * w.size); np.argsort(np.abs(w).ravel(), kind="stable")[:k] are the
          pruned positions.
    """
    amount = _check_amount(amount, "l1_unstructured_mask")
    w = np.asarray(weight)
    ### BEGIN SOLUTION
    k = round(amount * w.size)
    mask = np.ones(w.size, dtype=bool)
    mask[np.argsort(np.abs(w).ravel(), kind="stable")[:k]] = False
    return mask.reshape(w.shape)
    ### END SOLUTION


def global_unstructured_masks(weights: dict, amount: float) -> dict:
    """Masks for ``weights`` (name -> array) that zero the ``round(amount * total)`` smallest
    |w| over all of them together (``prune.global_unstructured`` with ``L1Unstructured``).

    HINT: concatenate the flattened |w| in the dict's order, take one l1_unstructured_mask of
          the concatenation, and cut it back into pieces of each array's size.
    """
    amount = _check_amount(amount, "global_unstructured_masks")
    if not weights:
        raise ValueError("global_unstructured_masks: no weights to prune")
    arrays = {name: np.asarray(w) for name, w in weights.items()}
    ### BEGIN SOLUTION
    flat = np.concatenate([np.abs(w).ravel() for w in arrays.values()])
    keep = l1_unstructured_mask(flat, amount)
    masks, start = {}, 0
    for name, w in arrays.items():
        masks[name] = keep[start:start + w.size].reshape(w.shape)
        start += w.size
    return masks
    ### END SOLUTION


def apply_masks(model: Module, masks: dict) -> None:
    """Zero the pruned weights again (``weight.data *= mask``): call after every optimizer step."""
    layers = dict(weight_layers(model))
    for name, mask in masks.items():
        if name not in layers:
            raise KeyError(f"apply_masks: {name!r} is not a Linear/Conv2d weight of the model; "
                           f"known: {sorted(layers)}")
        w = layers[name].weight
        if mask.shape != w.shape:
            raise ValueError(f"apply_masks: mask of {name!r} has shape {mask.shape}, weight {w.shape}")
        w.data *= mask


def magnitude_prune(model: Module, amount: float, scope: str = "layer") -> dict:
    """Zero the smallest-magnitude ``amount`` of the Linear/Conv2d weights of ``model``, in place.

    ``scope="layer"``: that fraction of every layer; ``scope="global"``: of all of them ranked
    together. Returns the masks, state-dict name -> bool array (True = kept). Weights that are
    already zero are the smallest, so pruning a pruned model to a higher amount keeps its zeros.
    """
    if scope not in ("layer", "global"):
        raise ValueError(f"magnitude_prune: scope must be 'layer' or 'global', got {scope!r}")
    amount = _check_amount(amount, "magnitude_prune")
    layers = weight_layers(model)
    if not layers:
        raise ValueError(f"magnitude_prune: {type(model).__name__} has no Linear or Conv2d weights")
    ### BEGIN SOLUTION
    if scope == "layer":
        masks = {name: l1_unstructured_mask(layer.weight.data, amount) for name, layer in layers}
    else:
        masks = global_unstructured_masks({name: layer.weight.data for name, layer in layers}, amount)
    apply_masks(model, masks)
    return masks
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-unstructured", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def _toy_mlp(seed=0):
    return Sequential(Linear(6, 8, seed=seed), activations.ReLU(), Linear(8, 3, seed=seed + 1))


def test_unit_unstructured():
    """Masks prune exactly round(amount * n) smallest |w|, per layer or globally, in place."""
    m = l1_unstructured_mask(np.array([0.9, -0.1, 0.4, -0.7, 0.05, 0.3]), 0.5)
    assert m.dtype == bool and m.shape == (6,), (m.dtype, m.shape)
    np.testing.assert_array_equal(m, [True, False, True, True, False, False])
    assert l1_unstructured_mask(np.arange(5.0), 0.5).sum() == 3, "round(2.5) is 2 (Python and PyTorch)"
    model = _toy_mlp()
    w0, w1 = model.layers[0].weight.data.copy(), model.layers[2].weight.data.copy()
    masks = magnitude_prune(model, 0.5, scope="layer")
    assert sorted(masks) == ["layers.0.weight", "layers.2.weight"], sorted(masks)
    assert (model.layers[0].weight.data == 0).sum() == 24 and (model.layers[2].weight.data == 0).sum() == 12
    np.testing.assert_array_equal(model.layers[0].weight.data, w0 * masks["layers.0.weight"])
    model = _toy_mlp()
    masks = magnitude_prune(model, 0.75, scope="global")
    assert sum(int((~m).sum()) for m in masks.values()) == round(0.75 * 72)
    threshold = np.sort(np.abs(np.concatenate([w0.ravel(), w1.ravel()])))[54]
    for name, layer in weight_layers(model):
        kept = np.abs(layer.weight.data[masks[name]])
        assert (kept >= threshold).all(), f"{name}: a global mask keeps a weight below the global threshold"
    try:
        magnitude_prune(model, 1.5)
    except ValueError as e:
        assert "amount" in str(e)
    else:
        raise AssertionError("amount 1.5 must raise ValueError")
    ### BEGIN HIDDEN TESTS
    model = _toy_mlp()
    masks = magnitude_prune(model, 0.5, scope="global")
    again = magnitude_prune(model, 0.8, scope="global")
    for name in masks:
        assert not (again[name] & ~masks[name]).any(), "pruning further must keep the earlier zeros"
    ### END HIDDEN TESTS


test_unit_unstructured()

# %% [markdown]
# ## 2. Pruning gradually, while training
#
# Pruning 90% in one shot throws away a lot at once; the network then has to relearn with the
# survivors. Zhu and Gupta (2017, "To prune, or not to prune") raise the sparsity step by step
# while training continues, fast at first, when there are many redundant weights, and slowly
# at the end, with a cubic schedule from step t0 to t0 + n:
#
# ```
#   s(t) = s_f + (s_0 - s_f) * (1 - (t - t0) / n) ** 3        for t0 <= t <= t0 + n
#
#   sparsity
#   s_f  |                      ____________________      t0 = 0, n = 100, s_f = 0.9:
#        |               _.--'''                          s(25)  = 0.9 (1 - 0.75^3) = 0.52
#        |         _.-''                                  s(50)  = 0.9 (1 - 0.50^3) = 0.79
#        |     _.-'                                       s(75)  = 0.9 (1 - 0.25^3) = 0.89
#        |  .-'                                           then fine-tuning at s_f
#   s_0  |.'
#        +--------------------------------------------- step
#        t0                     t0 + n
# ```
#
# Between pruning events the optimizer updates every weight, the pruned ones too (their
# gradients are not zero), so the masks are re-applied after each step: `GradualPruner.step()`
# right after `optimizer.step()`.

# %% nbgrader={"grade": false, "grade_id": "schedule", "locked": false, "schema_version": 3, "solution": true}
#| export
def polynomial_sparsity(step: int, final_sparsity: float, begin_step: int, end_step: int,
                        initial_sparsity: float = 0.0, power: int = 3) -> float:
    """Zhu & Gupta's schedule: ``initial_sparsity`` before ``begin_step``, ``final_sparsity`` from
    ``end_step`` on, and s_f + (s_0 - s_f) (1 - (step - begin) / (end - begin)) ** power between.

    EXAMPLE: polynomial_sparsity(50, 0.9, 0, 100) -> 0.7875
    """
    if end_step <= begin_step:
        raise ValueError(f"polynomial_sparsity: end_step {end_step} must be after begin_step {begin_step}")
    ### BEGIN SOLUTION
    progress = min(max((step - begin_step) / (end_step - begin_step), 0.0), 1.0)
    return float(final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - progress) ** power)
    ### END SOLUTION


class GradualPruner:
    """Prune ``model`` to ``final_sparsity`` along ``polynomial_sparsity`` during training.

    Call ``step()`` after every optimizer step: every ``frequency`` steps between ``begin_step``
    and ``end_step`` it prunes to the scheduled sparsity (``magnitude_prune`` with ``scope``), and
    at every step it re-applies the current masks. ``sparsity`` is the scheduled value reached.
    """

    def __init__(self, model, final_sparsity, begin_step, end_step, frequency=10, scope="global",
                 initial_sparsity=0.0):
        _check_amount(final_sparsity, "GradualPruner")
        if frequency < 1:
            raise ValueError(f"GradualPruner: frequency must be >= 1, got {frequency}")
        polynomial_sparsity(begin_step, final_sparsity, begin_step, end_step, initial_sparsity)
        self.model, self.scope, self.frequency = model, scope, int(frequency)
        self.final_sparsity, self.initial_sparsity = float(final_sparsity), float(initial_sparsity)
        self.begin_step, self.end_step = int(begin_step), int(end_step)
        self.t, self.sparsity, self.masks = 0, 0.0, {}

    def step(self) -> float:
        self.t += 1
        t = self.t
        due = self.begin_step <= t <= self.end_step and ((t - self.begin_step) % self.frequency == 0
                                                        or t == self.end_step)
        ### BEGIN SOLUTION
        if due:
            self.sparsity = polynomial_sparsity(t, self.final_sparsity, self.begin_step, self.end_step,
                                                self.initial_sparsity)
            self.masks = magnitude_prune(self.model, self.sparsity, self.scope)
        elif self.masks:
            apply_masks(self.model, self.masks)
        ### END SOLUTION
        return self.sparsity


# %% nbgrader={"grade": true, "grade_id": "test-schedule", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_schedule():
    """The cubic schedule's worked numbers; the pruner keeps its zeros through optimizer steps."""
    np.testing.assert_allclose([polynomial_sparsity(t, 0.9, 0, 100) for t in (0, 25, 50, 75, 100, 150)],
                               [0.0, 0.5203125, 0.7875, 0.8859375, 0.9, 0.9], rtol=1e-12)
    np.testing.assert_allclose(polynomial_sparsity(60, 0.8, 20, 120, initial_sparsity=0.2), 0.8 - 0.6 * 0.6 ** 3)
    model = _toy_mlp()
    pruner = GradualPruner(model, 0.75, begin_step=1, end_step=4, frequency=1, scope="global")
    for _ in range(6):
        for _, layer in weight_layers(model):          # a stand-in for optimizer.step(): moves every weight
            layer.weight.data += np.float32(0.01)
        pruner.step()
    zeros = sum(int((layer.weight.data == 0).sum()) for _, layer in weight_layers(model))
    assert zeros == 54, f"after the schedule ends, 75% of 72 weights must stay zero, got {zeros}"
    ### BEGIN HIDDEN TESTS
    assert pruner.sparsity == 0.75
    ### END HIDDEN TESTS


test_unit_schedule()

# %% [markdown]
# ## 3. Counting what was pruned
#
# One accounting function serves every experiment below: per layer, how many weights, how many
# are zero, and the total. Read it after pruning to see where a global threshold cut.

# %% nbgrader={"grade": false, "grade_id": "sparsity-report", "locked": true, "schema_version": 3, "solution": false}
#| export
def sparsity_report(model: Module) -> list:
    """One row per Linear/Conv2d weight: ``{"name", "shape", "params", "zeros", "sparsity"}``,
    then a row named ``"total"`` over all of them."""
    rows = []
    for name, layer in weight_layers(model):
        w = layer.weight.data
        rows.append({"name": name, "shape": tuple(w.shape), "params": int(w.size),
                     "zeros": int(w.size - np.count_nonzero(w)), "sparsity": float(1 - np.count_nonzero(w) / w.size)})
    n = sum(r["params"] for r in rows)
    z = sum(r["zeros"] for r in rows)
    rows.append({"name": "total", "shape": (), "params": n, "zeros": z, "sparsity": z / n if n else 0.0})
    return rows


def format_report(rows: list) -> str:
    lines = [f"{'weight':<18}{'shape':<18}{'params':>9}{'zeros':>9}{'sparsity':>10}"]
    for r in rows:
        lines.append(f"{r['name']:<18}{str(r['shape']) if r['shape'] else '':<18}{r['params']:>9,}"
                     f"{r['zeros']:>9,}{r['sparsity'] * 100:>9.1f}%")
    return "\n".join(lines)

# %% [markdown]
# On the trained CIFAR CNN (module 14's checkpoint): 90% per layer against 90% global.

# %%
from tinytorch.models.pretrained import load_pretrained

for scope in ("layer", "global"):
    cnn = load_pretrained("cifar10_cnn")
    magnitude_prune(cnn, 0.9, scope=scope)
    print(f"scope={scope!r}\n{format_report(sparsity_report(cnn))}\n")

# %% [markdown]
# ## 4. Zeros are not free: storing a sparse tensor
#
# A pruned float32 tensor saved as it is costs 4 bytes per weight, zeros included. To shrink
# the file we store only the survivors and *where* they are. Two ways to say where:
#
# ```
#   w (2 x 4) = [[0  3  0  0]        CSR (compressed sparse row), int32 indices:
#                [5  0  0  7]]         values  [3, 5, 7]        nnz x value bytes
#                                      col_idx [1, 0, 3]        nnz x 4 bytes
#   bitmask (one bit per weight):      row_ptr [0, 1, 3]        (rows + 1) x 4 bytes
#     mask    0100 1001 -> 1 byte
#     values  [3, 5, 7]                bytes per weight at density d = 1 - sparsity:
#                                        dense        b
#                                        CSR          d (b + 4)     (+ row pointers)
#                                        bitmask      1/8 + d b
# ```
#
# Worked numbers, b = 1 byte (INT8 values), the break-even density against dense INT8:
# CSR needs d (1 + 4) < 1, **d < 20%**: at 50% sparsity CSR costs 2.5 bytes per weight, 2.5x
# *more* than the dense INT8 tensor, and even at 80% it saves nothing. A bitmask needs
# 1/8 + d < 1, d < 87.5%: it saves from 12.5% sparsity on, and at 90% sparsity costs 0.225
# bytes per weight against CSR's 0.5. With float32 values (b = 4) CSR breaks even at 50%.
# (With 16-bit or 8-bit *relative* indices CSR becomes competitive again; that is what real
# sparse formats do. The bitmask is the simplest honest format.)
#
# `save_sparse` writes one `.npz` (uncompressed, so the size is the format's, not zip's) in the
# layout of the Olympics bundle's `sparse` encoding: `NAME@mask` = `np.packbits(flat != 0)`,
# `NAME@values` = the non-zeros in C order, float32, float16, or int8 with a scalar float32
# `NAME@scale` from module 15's `quantize_tensor` (symmetric, one scale per tensor). A weight for
# which the mask would cost more than it saves is stored `dense` (or `int8`: `NAME@q`,
# `NAME@scale`); biases and BatchNorm tensors stay float32. The architecture travels inside
# the file as JSON bytes (`__model__`), so `load_sparse` rebuilds the model with module 14's
# `build_model`, which builds only known layer types: the file is data, never code.

# %% nbgrader={"grade": false, "grade_id": "csr", "locked": false, "schema_version": 3, "solution": true}
#| export
def to_csr(w: np.ndarray, index_dtype=np.int32):
    """``(values, col_idx, row_ptr)`` of a 2-D array (a tensor of more dimensions is viewed as
    (shape[0], -1)): the non-zeros row by row, their column, and where each row starts."""
    w = np.asarray(w)
    w = w.reshape(w.shape[0], -1)                                                  # (rows, cols)
    ### BEGIN SOLUTION
    rows, cols = np.nonzero(w)
    row_ptr = np.zeros(w.shape[0] + 1, dtype=index_dtype)
    np.cumsum(np.bincount(rows, minlength=w.shape[0]), out=row_ptr[1:])
    return w[rows, cols], cols.astype(index_dtype), row_ptr
    ### END SOLUTION


def to_bitmask(w: np.ndarray):
    """``(mask, values)``: np.packbits of the flat non-zero pattern (uint8), and the non-zeros
    in C order."""
    flat = np.asarray(w).ravel()
    ### BEGIN SOLUTION
    nz = flat != 0
    return np.packbits(nz), flat[nz]
    ### END SOLUTION


def from_bitmask(mask: np.ndarray, values: np.ndarray, shape, dtype=np.float32) -> np.ndarray:
    """The dense array of ``shape`` whose non-zeros ``values`` sit where ``mask``'s bits are 1."""
    n = int(np.prod(shape))
    bits = np.unpackbits(np.asarray(mask, dtype=np.uint8), count=n).astype(bool)
    if int(bits.sum()) != len(values):
        raise ValueError(f"sparse tensor: the mask has {int(bits.sum())} set bits but {len(values)} values")
    out = np.zeros(n, dtype=dtype)
    out[bits] = values
    return out.reshape(shape)


# %% nbgrader={"grade": true, "grade_id": "test-csr", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_csr_bitmask():
    """CSR and bitmask of the worked example; both decode back to the array."""
    w = np.array([[0, 3, 0, 0], [5, 0, 0, 7]], dtype=np.float32)
    values, col, ptr = to_csr(w)
    np.testing.assert_array_equal(values, [3, 5, 7])
    np.testing.assert_array_equal(col, [1, 0, 3])
    np.testing.assert_array_equal(ptr, [0, 1, 3])
    assert col.dtype == np.int32 and ptr.dtype == np.int32, (col.dtype, ptr.dtype)
    mask, vals = to_bitmask(w)
    assert mask.dtype == np.uint8 and mask.shape == (1,), (mask.dtype, mask.shape)
    assert mask[0] == 0b01001001, bin(mask[0])
    np.testing.assert_array_equal(from_bitmask(mask, vals, w.shape), w)
    ### BEGIN HIDDEN TESTS
    r = np.random.default_rng(1).standard_normal((7, 5)) * (np.random.default_rng(2).random((7, 5)) > 0.6)
    v, c, p = to_csr(r)
    dense = np.zeros_like(r)
    for i in range(7):
        dense[i, c[p[i]:p[i + 1]]] = v[p[i]:p[i + 1]]
    np.testing.assert_array_equal(dense, r)
    ### END HIDDEN TESTS


test_unit_csr_bitmask()

# %% [markdown]
# The formulas, measured on the real arrays of the trained CNN's biggest weight (the last conv,
# 73,728 weights), with INT8 values (1 byte each):

# %%
w_big = load_pretrained("cifar10_cnn").layers[14].weight.data                       # (128, 64, 3, 3)
print(f"{'sparsity':>9}{'dense int8':>12}{'CSR int32':>12}{'bitmask':>10}   bytes; CSR/dense, bitmask/dense")
for s in (0.0, 0.5, 0.8, 0.9, 0.95):
    w_s = w_big * l1_unstructured_mask(w_big, s)
    v, c, p = to_csr(w_s)
    csr = v.size * 1 + c.nbytes + p.nbytes
    m, v = to_bitmask(w_s)
    bm = m.nbytes + v.size * 1
    print(f"{s * 100:>8.0f}%{w_s.size:>12,}{csr:>12,}{bm:>10,}   {csr / w_s.size:5.2f}x, {bm / w_s.size:5.2f}x")

# %% nbgrader={"grade": false, "grade_id": "sparse-io", "locked": false, "schema_version": 3, "solution": true}
#| export
SPARSE_FORMAT = "tinytorch-sparse"
VALUE_DTYPES = ("float32", "float16", "int8")
_MAX_META = 1 << 20


class SparseFormatError(ValueError):
    """A sparse file that cannot be loaded; the message says why."""


def _encode(name, w, values, prunable):
    """The arrays and the entry of one tensor: dense float32, or the cheapest of the encodings."""
    if not prunable:
        return {name: w.astype(np.float32)}, "dense"
    nnz = int(np.count_nonzero(w))
    itemsize = np.dtype(values).itemsize
    if (w.size + 7) // 8 + nnz * itemsize >= w.size * itemsize:            # the mask would not pay
        if values == "int8":
            from tinytorch.optimization.quantization import quantize_tensor
            q, scale, zero = quantize_tensor(w, bits=8, symmetric=True)
            return {f"{name}@q": np.asarray(q, np.int8), f"{name}@scale": np.asarray(scale, np.float32)}, "int8"
        return {name: w.astype(values)}, "dense"
    ### BEGIN SOLUTION
    mask, nonzero = to_bitmask(w)
    arrays = {f"{name}@mask": mask}
    if values == "int8" and nonzero.size == 0:            # a layer pruned away entirely
        arrays[f"{name}@values"] = np.zeros(0, np.int8)
        arrays[f"{name}@scale"] = np.array(1.0, np.float32)
    elif values == "int8":
        from tinytorch.optimization.quantization import quantize_tensor
        q, scale, zero = quantize_tensor(nonzero, bits=8, symmetric=True)
        if np.any(np.asarray(zero) != 0):
            raise ValueError("symmetric quantization must give zero_point 0")
        arrays[f"{name}@values"] = np.asarray(q, np.int8)
        arrays[f"{name}@scale"] = np.asarray(scale, np.float32).reshape(())
    else:
        arrays[f"{name}@values"] = nonzero.astype(values)
    return arrays, "sparse"
    ### END SOLUTION


def save_sparse(model: Module, path, values: str = "float32", preprocess: dict | None = None) -> str:
    """Write ``model`` to ``path`` (.npz, uncompressed, no pickle): Linear/Conv2d weights as
    bitmask + non-zeros (``values`` = "float32", "float16" or "int8": module 15's quantize_tensor),
    everything else dense.
    ``preprocess`` (module 14's description) is stored too. Returns the path written."""
    from tinytorch.models.pretrained import describe_model, make_preprocess
    if values not in VALUE_DTYPES:
        raise ValueError(f"save_sparse: values must be one of {VALUE_DTYPES}, got {values!r}")
    if preprocess is not None:
        make_preprocess(preprocess)                                    # refuse what cannot be loaded
    prunable = {name for name, _ in weight_layers(model)}
    arrays, tensors = {}, {}
    for name, w in model.state_dict().items():
        encoded, kind = _encode(name, np.asarray(w), values, name in prunable)
        arrays.update(encoded)
        tensors[name] = {"encoding": kind, "shape": list(w.shape)}
    meta = {"format": SPARSE_FORMAT, "version": 1, "architecture": describe_model(model),
            "tensors": tensors, "preprocess": preprocess}
    arrays["__model__"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    path = Path(os.fspath(path))
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)
    return str(path)


def _decode(name, entry, z, expected_shape):
    shape = entry.get("shape") if isinstance(entry, dict) else None
    if shape != list(expected_shape):                  # checked before anything is allocated
        raise SparseFormatError(f"{name}: shape {shape!r}, the architecture needs {list(expected_shape)}")
    kind = entry.get("encoding")

    def get(key, dtypes):
        if key not in z.files:
            raise SparseFormatError(f"{name}: array {key!r} is missing for encoding {kind!r}")
        a = z[key]
        if a.dtype.name not in dtypes:
            raise SparseFormatError(f"{key}: dtype {a.dtype} not allowed, expected one of {dtypes}")
        return a
    if kind == "dense":
        a = get(name, VALUE_DTYPES[:2])
        if list(a.shape) != shape:
            raise SparseFormatError(f"{name}: shape {a.shape}, the description says {shape}")
        return a.astype(np.float32)
    if kind == "int8":
        q, scale = get(f"{name}@q", ("int8",)), get(f"{name}@scale", ("float32",))
        if list(q.shape) != shape or scale.size != 1:
            raise SparseFormatError(f"{name}: int8 shape {q.shape} / scale {scale.shape} do not fit {shape}")
        return q.astype(np.float32) * scale.reshape(())
    if kind == "sparse":
        n = int(np.prod(shape))
        mask, vals = get(f"{name}@mask", ("uint8",)), get(f"{name}@values", VALUE_DTYPES)
        if mask.shape != ((n + 7) // 8,) or vals.ndim != 1:
            raise SparseFormatError(f"{name}: mask of {mask.shape} bytes / values {vals.shape} do not fit {shape}")
        if vals.dtype == np.int8 and f"{name}@scale" not in z.files:
            raise SparseFormatError(f"{name}: int8 values need a scalar float32 {name}@scale")
        vals = vals.astype(np.float32)
        if f"{name}@scale" in z.files:
            vals = vals * get(f"{name}@scale", ("float32",)).reshape(())
        try:
            return from_bitmask(mask, vals, shape)
        except ValueError as e:
            raise SparseFormatError(f"{name}: {e}") from None
    raise SparseFormatError(f"{name}: unknown encoding {kind!r}; expected dense, int8 or sparse")


def _read_sparse(path, z):
    from tinytorch.models.pretrained import PretrainedError, build_model
    if "__model__" not in z.files:
        raise SparseFormatError(f"{path}: no __model__ description: not written by save_sparse")
    raw = z["__model__"]
    if raw.dtype != np.uint8 or raw.size > _MAX_META:
        raise SparseFormatError(f"{path}: __model__ must be uint8 JSON of at most {_MAX_META} bytes")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SparseFormatError(f"{path}: __model__ is not JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != SPARSE_FORMAT or meta.get("version") != 1:
        raise SparseFormatError(f"{path}: expected format {SPARSE_FORMAT!r} version 1")
    try:
        model = build_model(meta.get("architecture"))
    except PretrainedError as e:
        raise SparseFormatError(f"{path}: {e}") from None
    tensors = meta.get("tensors")
    expected = model.state_dict()
    if not isinstance(tensors, dict) or set(tensors) != set(expected):
        raise SparseFormatError(f"{path}: tensors {sorted(tensors or {})} do not match the architecture's "
                                f"{sorted(expected)}")
    state = {name: _decode(name, entry, z, expected[name].shape) for name, entry in tensors.items()}
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError) as e:
        raise SparseFormatError(f"{path}: {e}") from None
    return model, meta


def load_sparse(path) -> Module:
    """The model ``save_sparse`` wrote (eval mode; ``.preprocess`` when one was stored).
    Anything else (a pickle, a damaged zip, arrays that do not fit) raises SparseFormatError."""
    import zipfile
    import zlib

    from tinytorch.models.pretrained import make_preprocess
    path = Path(os.fspath(path))
    try:
        with np.load(path, allow_pickle=False) as z:
            model, meta = _read_sparse(path, z)
    except SparseFormatError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise SparseFormatError(f"{path}: not a sparse model file ({type(e).__name__}: {e})") from None
    model.eval()
    if meta.get("preprocess") is not None:
        try:
            model.preprocess = make_preprocess(meta["preprocess"])
        except (ValueError, KeyError, TypeError) as e:
            raise SparseFormatError(f"{path}: bad preprocess description ({e})") from None
    return model


# %% nbgrader={"grade": true, "grade_id": "test-sparse-io", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_sparse_io(tmp="sparse_test_model.npz"):
    """A 90%-pruned model round-trips exactly (float32 values) and its file really shrinks."""
    from tinytorch.core.training import save_state_dict
    model = Sequential(Linear(64, 128, seed=0), activations.ReLU(), Linear(128, 10, seed=1))
    magnitude_prune(model, 0.9, scope="layer")
    try:
        path = save_sparse(model, tmp)
        back = load_sparse(path)
        for (name, a), b in zip(model.state_dict().items(), back.state_dict().values()):
            np.testing.assert_array_equal(a, b, err_msg=name)
        x = Tensor(np.random.default_rng(0).standard_normal((3, 64)).astype(np.float32))
        np.testing.assert_array_equal(back(x).data, model(x).data)
        sparse_size = os.path.getsize(path)
        dense_size = os.path.getsize(save_state_dict(model.state_dict(), "dense_" + tmp))
        assert sparse_size < 0.35 * dense_size, f"90% sparse file {sparse_size} B vs dense {dense_size} B"
        with np.load(path) as z:
            assert "layers.0.weight@mask" in z.files and z["layers.0.weight@mask"].dtype == np.uint8
            assert z["layers.0.weight@values"].shape == (round(0.1 * 64 * 128),)
        ### BEGIN HIDDEN TESTS
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["layers.0.weight@values"] = arrays["layers.0.weight@values"][:-1]
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        try:
            load_sparse(tmp)
        except SparseFormatError as e:
            assert "values" in str(e)
        else:
            raise AssertionError("a values array one short of the mask must be refused")
        ### END HIDDEN TESTS
    finally:
        for p in (tmp, "dense_" + tmp):
            if os.path.exists(p):
                os.remove(p)


test_unit_sparse_io()

# %% [markdown]
# ## 5. Structured pruning: a smaller dense network
#
# A sparse tensor shrinks the file, but NumPy's dense kernels multiply the zeros anyway: a 90%
# unstructured model is exactly as slow as the dense one. Removing a whole **filter** (an output
# channel of a conv) removes real work: its output map is never computed, the BatchNorm of that
# channel goes, and the next conv loses the matching **input** channel too:
#
# ```
#   conv_i  (32 -> 64) -- BN(64) -- ReLU -- conv_j (64 -> 64)       keep 32 of conv_i's 64 filters
#        weight (64, 32, 3, 3)                 weight (64, 64, 3, 3)
#               ^ keep rows k                          ^ keep columns k
#   conv_i' (32 -> 32) -- BN(32) -- ReLU -- conv_j' (32 -> 64)      both convs have half the MACs
#
#   last conv (128 channels of 4 x 4) -- Flatten -- Linear(2048, 10)
#   Linear input j = channel * 16 + position:  keeping channels k keeps rows k*16 .. k*16+15
# ```
#
# Which filters? Those with the smallest L1 (or L2) norm over their weights: torch's
# `prune.ln_structured(module, "weight", amount, n, dim=0)`, which keeps the
# `C - round(amount * C)` channels of largest norm. Worked numbers: halving every conv of the
# CIFAR CNN divides the MACs of the four inner convs by 4 (both their input and output channels
# halve) and of the first by 2: from 29.2 M to 7.5 M multiply-adds per image (measured below).
#
# The network's output layer keeps its outputs (the 10 classes); every other Conv2d or Linear
# whose outputs feed another one through BatchNorm, activations, pooling, Dropout or Flatten
# loses the same fraction.

# %% nbgrader={"grade": false, "grade_id": "structured", "locked": false, "schema_version": 3, "solution": true}
#| export
_PASS_THROUGH = (activations.ReLU, activations.Sigmoid, activations.Tanh, activations.GELU,
                 MaxPool2d, AvgPool2d, Dropout, Flatten, BatchNorm2d)


def _out_axis(layer) -> int:
    return 0 if isinstance(layer, Conv2d) else 1          # Conv2d (O, I, kh, kw); Linear (in, out)


def ln_structured_mask(weight: np.ndarray, amount: float, n=1, dim: int = 0) -> np.ndarray:
    """Boolean mask of ``weight``'s shape keeping the ``size - round(amount * size)`` slices along
    ``dim`` of largest L``n`` norm (``torch.nn.utils.prune.ln_structured``'s choice).

    EXAMPLE: weight (4, 2) with row L1 norms [3, 1, 4, 2], amount 0.5, dim 0 -> rows 0 and 2 kept.
    HINT: norms = np.linalg.norm of weight moved to (size, -1), ord=n along axis 1;
          keep = np.argsort(-norms, kind="stable")[:n_keep].
    """
    amount = _check_amount(amount, "ln_structured_mask")
    w = np.asarray(weight, dtype=np.float64)
    ### BEGIN SOLUTION
    size = w.shape[dim]
    slices = np.moveaxis(w, dim, 0).reshape(size, -1)                   # (size, rest)
    norms = np.linalg.norm(slices, ord=n, axis=1)                       # (size,)
    n_keep = size - round(amount * size)
    keep = np.zeros(size, dtype=bool)
    keep[np.argsort(-norms, kind="stable")[:n_keep]] = True
    shape = [1] * w.ndim
    shape[dim] = size
    return np.broadcast_to(keep.reshape(shape), w.shape).copy()
    ### END SOLUTION


def _kept_units(layer, amount, norm):
    axis = _out_axis(layer)
    keep = ln_structured_mask(layer.weight.data, amount, n=norm, dim=axis)
    keep = np.moveaxis(keep, axis, 0).reshape(keep.shape[axis], -1)[:, 0]
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        raise ValueError(f"structured_prune: amount {amount} would remove every unit of {layer!r}")
    return idx


def _slice_layer(layer, keep_out=None, keep_in=None, in_group=1):
    """A new Conv2d / Linear / BatchNorm2d holding only the kept output and input units."""
    if isinstance(layer, BatchNorm2d):
        new = BatchNorm2d(len(keep_out), eps=layer.eps, momentum=layer.momentum)
        for t in ("weight", "bias", "running_mean", "running_var"):
            getattr(new, t).data[...] = getattr(layer, t).data[keep_out]
        return new
    w = layer.weight.data
    b = None if layer.bias is None else layer.bias.data
    if isinstance(layer, Conv2d):
        if keep_out is not None:
            w, b = w[keep_out], (None if b is None else b[keep_out])
        if keep_in is not None:
            w = w[:, keep_in]
        new = Conv2d(w.shape[1], w.shape[0], layer.kernel_size, stride=layer.stride, padding=layer.padding,
                     bias=b is not None)
    else:
        if keep_out is not None:
            w, b = w[:, keep_out], (None if b is None else b[keep_out])
        if keep_in is not None:                     # in_group inputs per kept unit (Flatten after a conv)
            rows = (np.asarray(keep_in)[:, None] * in_group + np.arange(in_group)).ravel()
            w = w[rows]
        new = Linear(w.shape[0], w.shape[1], bias=b is not None)
    new.weight.data = np.ascontiguousarray(w, dtype=np.float32)
    if b is not None:
        new.bias.data = np.ascontiguousarray(b, dtype=np.float32)
    return new


def structured_prune(model: Sequential, amount: float, norm=1) -> Sequential:
    """A new, physically smaller Sequential: every Conv2d/Linear that feeds another one loses the
    ``amount`` of its output units (filters or neurons) of smallest L``norm`` norm; the BatchNorm2d
    between and the next layer's inputs shrink with it. ``model`` is left unchanged."""
    if not isinstance(model, Sequential):
        raise TypeError(f"structured_prune works on a Sequential, got {type(model).__name__}")
    amount = _check_amount(amount, "structured_prune")
    if amount >= 1.0:
        raise ValueError("structured_prune: amount 1.0 would remove every unit")
    layers = list(model.layers)
    weighted = [i for i, l in enumerate(layers) if isinstance(l, (Conv2d, Linear))]
    for i, j in zip(weighted, weighted[1:]):
        for l in layers[i + 1:j]:
            if not isinstance(l, _PASS_THROUGH):
                raise ValueError(f"structured_prune: cannot prune through {type(l).__name__} between "
                                 f"layers {i} and {j}; known: {[c.__name__ for c in _PASS_THROUGH]}")
    new = list(layers)
    ### BEGIN SOLUTION
    keep_in = {}                                                 # layer index -> kept input units, group
    for i, j in zip(weighted, weighted[1:]):
        keep = _kept_units(layers[i], amount, norm)
        group = 1
        if isinstance(layers[j], Linear) and isinstance(layers[i], Conv2d):
            C = layers[i].out_channels
            if layers[j].in_features % C:
                raise ValueError(f"structured_prune: Linear in_features {layers[j].in_features} is not a "
                                 f"multiple of the {C} channels before it")
            group = layers[j].in_features // C                   # spatial positions per channel
        keep_in[j] = (keep, group)
        in_i = keep_in.get(i, (None, 1))
        new[i] = _slice_layer(layers[i], keep_out=keep, keep_in=in_i[0], in_group=in_i[1])
        for k in range(i + 1, j):
            if isinstance(layers[k], BatchNorm2d):
                new[k] = _slice_layer(layers[k], keep_out=keep)
    last = weighted[-1]
    if last in keep_in:
        new[last] = _slice_layer(layers[last], keep_in=keep_in[last][0], in_group=keep_in[last][1])
    ### END SOLUTION
    out = Sequential(*new)
    out.train(model.training)
    for attr in ("preprocess", "card"):
        if hasattr(model, attr):
            setattr(out, attr, getattr(model, attr))
    return out


# %% nbgrader={"grade": true, "grade_id": "test-structured", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def _toy_cnn(seed=0):
    return Sequential(Conv2d(2, 4, 3, padding=1, bias=False, seed=seed), BatchNorm2d(4), activations.ReLU(),
                      MaxPool2d(2), Conv2d(4, 6, 3, padding=1, seed=seed + 1), activations.ReLU(),
                      Flatten(), Linear(6 * 2 * 2, 3, seed=seed + 2))


def test_unit_structured():
    """The kept filters are the largest-norm ones, and the small model computes exactly what the
    big one computes with those filters zeroed."""
    w = np.array([[1, -2], [0.5, 0.5], [4, 0], [-1, -1]], dtype=np.float32)     # L1 3, 1, 4, 2
    m = ln_structured_mask(w, 0.5, n=1, dim=0)
    np.testing.assert_array_equal(m[:, 0], [True, False, True, False])
    np.testing.assert_array_equal(ln_structured_mask(w, 0.5, n=2, dim=1)[0], [True, False])
    model = _toy_cnn()
    r = np.random.default_rng(0)
    bn = model.layers[1]
    bn.running_mean.data[...] = r.standard_normal(4)
    bn.running_var.data[...] = r.uniform(0.5, 2, 4)
    bn.weight.data[...] = r.uniform(0.5, 2, 4)
    model.eval()
    small = structured_prune(model, 0.5, norm=1)
    assert small.layers[0].weight.shape == (2, 2, 3, 3), small.layers[0].weight.shape
    assert small.layers[1].num_features == 2 and small.layers[1].running_var.shape == (2,)
    assert small.layers[4].weight.shape == (3, 2, 3, 3), small.layers[4].weight.shape
    assert small.layers[7].weight.shape == (12, 3), small.layers[7].weight.shape
    assert model.layers[0].weight.shape == (4, 2, 3, 3), "the input model must stay unchanged"
    zeroed = _toy_cnn()
    zeroed.load_state_dict(model.state_dict())
    zeroed.eval()
    for idx in (0, 4):                                  # zero the pruned filters of the big model
        conv = zeroed.layers[idx]
        keep = ln_structured_mask(conv.weight.data, 0.5, n=1, dim=0)
        conv.weight.data *= keep
        if conv.bias is not None:
            conv.bias.data *= keep[:, 0, 0, 0]
    kept0 = ln_structured_mask(model.layers[0].weight.data, 0.5, 1, 0)[:, 0, 0, 0]
    zeroed.layers[1].weight.data *= kept0               # a zero BatchNorm scale and shift: output 0
    zeroed.layers[1].bias.data *= kept0
    x = Tensor(r.standard_normal((5, 2, 4, 4)).astype(np.float32))
    np.testing.assert_allclose(small(x).data, zeroed(x).data, rtol=1e-5, atol=1e-5)
    ### BEGIN HIDDEN TESTS
    mlp = _toy_mlp()
    small = structured_prune(mlp, 0.25, norm=2)
    assert small.layers[0].weight.shape == (6, 6) and small.layers[2].weight.shape == (6, 3)
    ### END HIDDEN TESTS


test_unit_structured()

# %% [markdown]
# On the trained CNN, 50% of the filters of every conv: parameters and multiply-adds, counted by
# module 14's `count_flops`:

# %%
from tinytorch.profiling.profiler import count_flops

cnn = load_pretrained("cifar10_cnn")
half = structured_prune(cnn, 0.5, norm=1)
x1 = Tensor(np.zeros((1, 3, 32, 32), dtype=np.float32))
for label, m in (("dense", cnn), ("50% of filters", half)):
    print(f"{label:<15} {m.num_parameters():>8,} parameters, {count_flops(m, x1).flops / 2e6:6.2f} M "
          f"multiply-adds per image")

# %% [markdown]
# ## 6. Knowledge distillation: a small network taught by a big one
#
# Instead of cutting a big network down, train a small one from scratch, but let the big one
# (the **teacher**) teach it. A label says "this is a cat"; the teacher's probabilities say
# "cat, but a bit like a dog, and nothing like a truck": far more information per image
# (Hinton, Vinyals and Dean, 2015). A **temperature** T softens both distributions so the small
# probabilities become visible:
#
# ```
#   teacher logits [6, 3, 0]   T = 1: p = [0.950, 0.047, 0.002]     (almost a label)
#                              T = 4: p = [0.590, 0.279, 0.132]     (the similarities show)
#
#   loss = alpha * T^2 * KL(p_teacher(T) || p_student(T))  +  (1 - alpha) * CE(student, label)
# ```
#
# Why T^2? The gradient of the soft term with respect to a student logit is
# (q_i(T) - p_i(T)) / T, and for large T that difference itself shrinks like 1/T: the soft
# gradients are about 1/T^2 as big as the hard ones. Multiplying by T^2 keeps the two terms on
# the same scale whatever T you pick, so alpha means what it says. KL is averaged over the batch
# (PyTorch's `reduction="batchmean"`), and only the student gets gradients: the teacher's
# logits are plain numbers.

# %% nbgrader={"grade": false, "grade_id": "distillation", "locked": false, "schema_version": 3, "solution": true}
#| export
def softmax_np(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def distillation_loss(student_logits: Tensor, teacher_logits, labels, temperature: float = 4.0,
                      alpha: float = 0.9) -> Tensor:
    """alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) (mean over the batch)
    + (1 - alpha) * cross_entropy(student, labels). Differentiable in ``student_logits`` only.

    HINT: p = softmax_np(teacher, T) (constants); log_q = log_softmax(student * (1 / T));
          KL per example = sum(p * log p) - sum(p * log_q); .mean() over the batch.
    """
    if not temperature > 0:
        raise ValueError(f"distillation_loss: temperature must be > 0, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"distillation_loss: alpha must be in [0, 1], got {alpha}")
    if not isinstance(student_logits, Tensor):
        student_logits = Tensor(student_logits)
    teacher = np.asarray(teacher_logits.data if isinstance(teacher_logits, Tensor) else teacher_logits)
    if teacher.shape != student_logits.shape or student_logits.ndim != 2:
        raise ValueError(f"distillation_loss: student {student_logits.shape} and teacher {teacher.shape} "
                         "logits must both be (N, classes)")
    T = float(temperature)
    ### BEGIN SOLUTION
    p = softmax_np(teacher, T)                                                      # (N, C) float64
    entropy_part = float((p * np.log(np.maximum(p, 1e-300))).sum(axis=-1).mean())   # sum p log p
    log_q = log_softmax(student_logits * (1.0 / T), dim=-1)                         # (N, C)
    cross = (log_q * p.astype(np.float32)).sum(axis=-1).mean()                      # mean sum p log q
    soft = (cross * -1.0) + entropy_part                                            # KL, batchmean
    hard = CrossEntropyLoss()(student_logits, labels)
    return soft * (alpha * T * T) + hard * (1.0 - alpha)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-distillation", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_distillation():
    """The worked numbers; alpha 0 is the hard loss; the soft gradient is (q - p) * T / N."""
    np.testing.assert_allclose(softmax_np([[6, 3, 0]], 4.0), [[0.590, 0.279, 0.132]], atol=1e-3)
    r = np.random.default_rng(0)
    s = r.standard_normal((4, 5)).astype(np.float32) * 2
    t = r.standard_normal((4, 5)).astype(np.float32) * 3
    y = np.array([0, 3, 1, 4])
    hard = CrossEntropyLoss()(Tensor(s), y).data
    out = distillation_loss(Tensor(s), t, y, temperature=2.0, alpha=0.0)
    assert out.shape == () and out.dtype == np.float32, (out.shape, out.dtype)
    np.testing.assert_allclose(out.data, hard, rtol=1e-5)
    same = distillation_loss(Tensor(t), t, y, temperature=3.0, alpha=1.0)
    np.testing.assert_allclose(same.data, 0.0, atol=1e-5)             # KL of a distribution with itself
    st = Tensor(s, requires_grad=True)
    distillation_loss(st, t, y, temperature=4.0, alpha=1.0).backward()
    p, q = softmax_np(t, 4.0), softmax_np(s, 4.0)
    np.testing.assert_allclose(st.grad, (q - p) * 4.0 / 4, rtol=1e-4, atol=1e-6)
    ### BEGIN HIDDEN TESTS
    kl = (p * (np.log(p) - np.log(q))).sum(axis=1).mean()
    both = distillation_loss(Tensor(s), t, y, temperature=4.0, alpha=0.7)
    np.testing.assert_allclose(both.data, 0.7 * 16 * kl + 0.3 * hard, rtol=1e-4)
    ### END HIDDEN TESTS


test_unit_distillation()

# %% [markdown]
# ## 7. Everything together, on a model trained in seconds
#
# TinyDigits (the 4,000 small digit images bundled with tinytorch): train an MLP for a few
# epochs, prune it in one shot at rising sparsity and measure the test accuracy, then prune
# gradually *with* training and compare. The full-size experiments on the CIFAR CNN, with
# fine-tuning, INT8, timing and distillation, are `benchmarks/compression.py`
# (`benchmarks/results/compression.md`).

# %%
from tinytorch.core.optimizers import Adam
from tinytorch.core.training import batches, train_epoch
from tinytorch.data.datasets import load_tinydigits

(xtr, ytr), (xte, yte) = load_tinydigits()
xtr = xtr.reshape(len(xtr), -1).astype(np.float32) / 255                   # (4000, 784)
xte = xte.reshape(len(xte), -1).astype(np.float32) / 255                   # (1000, 784)
ytr, yte = np.asarray(ytr, np.int64), np.asarray(yte, np.int64)


def digits_mlp(hidden=128, seed=0):
    return Sequential(Linear(784, hidden, seed=seed), activations.ReLU(), Linear(hidden, 10, seed=seed + 1))


def test_acc(model):
    model.eval()
    return float((model(Tensor(xte)).data.argmax(axis=1) == yte).mean())


def train(model, epochs, pruner=None, seed=0):
    opt = Adam(model.parameters(), lr=2e-3)
    for ep in range(epochs):
        data = batches(xtr, ytr, batch_size=64, shuffle=True, seed=seed + ep)
        train_epoch(model, opt, CrossEntropyLoss(), data, metric=None,
                    on_batch=None if pruner is None else (lambda i, loss: pruner.step()))
    return model


dense = train(digits_mlp(), 4)
dense_state = dense.state_dict()
print(f"dense MLP: {test_acc(dense) * 100:.1f}% on the 1,000 test digits")
for s in (0.5, 0.8, 0.9, 0.95, 0.98):
    m = digits_mlp()
    m.load_state_dict(dense_state)
    magnitude_prune(m, s, scope="global")
    print(f"  one-shot global {s * 100:4.0f}%: {test_acc(m) * 100:5.1f}%")
m = digits_mlp()
m.load_state_dict(dense_state)
steps = 2 * (len(xtr) // 64 + 1)
pruner = GradualPruner(m, 0.98, begin_step=0, end_step=steps // 2, frequency=5)
train(m, 2, pruner=pruner, seed=10)
print(f"  gradual to 98% over {steps // 2} steps + {steps - steps // 2} fine-tuning steps: "
      f"{test_acc(m) * 100:5.1f}% (sparsity {sparsity_report(m)[-1]['sparsity'] * 100:.1f}%)")

# %% [markdown]
# Distillation, same small student (16 hidden units, 12.7k parameters against the teacher's
# 101.8k), same epochs, seed and batches, trained alone and taught by the dense MLP above.
# Read the result with the teacher's accuracy next to it: distillation passes on what the
# teacher knows *beyond* the labels. This teacher is barely better than the student, and its
# outputs on its own training images are nearly one-hot (it has fitted them), so it has
# little to add, and the soft term (90% of the loss) then mainly slows the student's fit to
# the labels. A teacher far ahead of its student, as on CIFAR-10 in the benchmark, is the case
# distillation is for; what it buys there is measured, not assumed.

# %%
teacher_logits = dense(Tensor(xtr)).data                                  # (4000, 10), computed once


def train_student(distill, epochs=3, seed=0, T=4.0, alpha=0.9):
    student = digits_mlp(hidden=16, seed=seed)
    opt = Adam(student.parameters(), lr=2e-3)
    student.train()
    for ep in range(epochs):
        order = np.random.default_rng(seed + ep).permutation(len(xtr))
        for i in range(0, len(xtr), 64):
            idx = order[i:i + 64]
            logits = student(Tensor(xtr[idx]))
            loss = (distillation_loss(logits, teacher_logits[idx], ytr[idx], T, alpha) if distill
                    else CrossEntropyLoss()(logits, ytr[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return test_acc(student)


print(f"student alone: {train_student(False) * 100:.1f}%   distilled (T=4, alpha=0.9): "
      f"{train_student(True) * 100:.1f}%   teacher: {test_acc(dense) * 100:.1f}%")

# %% nbgrader={"grade": true, "grade_id": "test-module", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_module():
    """Prune, fine-tune with the pruner, save sparse, load: the same predictions, a smaller file."""
    model = digits_mlp(hidden=32, seed=3)
    pruner = GradualPruner(model, 0.8, begin_step=0, end_step=20, frequency=4)
    train(model, 1, pruner=pruner)
    rows = sparsity_report(model)
    assert rows[-1]["name"] == "total" and abs(rows[-1]["sparsity"] - 0.8) < 1e-3, rows[-1]
    path = save_sparse(model, "module_test_sparse.npz")
    try:
        back = load_sparse(path)
        np.testing.assert_array_equal(back(Tensor(xte[:50])).data, model(Tensor(xte[:50])).data)
        assert os.path.getsize(path) < 0.5 * 4 * model.num_parameters()
    finally:
        os.remove(path)
    small = structured_prune(model, 0.5)
    assert small.layers[0].weight.shape == (784, 16) and small.layers[2].weight.shape == (16, 10)


test_module()

# %% [markdown]
# ## Reflect
#
# 1. Your 90%-sparse CNN runs no faster than the dense one in NumPy. Why? What would a kernel
#    need to skip the zeros profitably, and why does structured pruning not need one?
# 2. At which sparsity does a CSR tensor with int32 indices and float32 values get smaller than
#    the dense float32 tensor? With INT8 values? And the bitmask? Give the three break-even
#    densities and what each format costs at 95% sparsity, in bytes per weight.
# 3. Global pruning at 90% left the first conv of the CIFAR CNN much denser than the last one
#    (your report above). Give two reasons why the first layer's weights rank as "important".
# 4. In distillation with T = 4, the soft term's gradient per logit is (q - p) / T before the
#    T^2 factor. Why do the soft targets carry more information per image than the label, and
#    why would a teacher that is 100% confident teach no more than the label?
# 5. Pruning then INT8 then sparse storage: in which order do the savings multiply, and why is
#    the result less than 4 x 10 = 40x for a 90%-sparse model? Name every byte that remains.
