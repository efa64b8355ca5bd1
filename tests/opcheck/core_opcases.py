"""Op cases for modules 01-05: every differentiable Tensor operation, activation and loss.

Checked by tests/opcheck/test_ops.py (with every other cases file); golden fixtures from
scripts/make_golden.py. A case without ``torch_fn`` runs the same expression in PyTorch.
Inputs are small and seeded; points where an op is not differentiable (ties of max, 0 for
ReLU, clipping in BCE) are avoided on purpose so that finite differences are meaningful.
All inputs come from one seeded stream in list order: append new cases at the end (or the
fixtures of the later ones go stale; `scripts/make_golden.py --check` says so).
"""
from __future__ import annotations

import numpy as np

from opcheck import OpCase, distinct

_rng = np.random.default_rng(1234)


def _r(*shape, low=None, high=None):
    if low is not None:
        return _rng.uniform(low, high, shape)
    return _rng.standard_normal(shape)


def _distinct(*shape):
    return distinct(_rng, *shape)


def _tf():
    import torch

    return torch


def _F():
    import torch.nn.functional as F

    return F


def _act(name, **kw):
    """An activation class of module 02, instantiated, as a callable."""
    def call(x):
        from tinytorch.core import activations

        return getattr(activations, name)(**kw)(x)
    return call


def _loss(name, **kw):
    def call(*args):
        from tinytorch.core import losses

        return getattr(losses, name)(**kw)(*args)
    return call


def _log_softmax(dim):
    def call(x):
        from tinytorch.core.losses import log_softmax

        return log_softmax(x, dim=dim)
    return call


idx_repeat = np.array([0, 2, 2, 1])
mask = np.array([[True, False, True], [False, True, True]])
labels = np.array([1, 0, 3])

CASES = [
    # --- arithmetic with broadcasting (module 01 ops, module 05 gradients)
    OpCase("add_broadcast", lambda a, b: a + b, [_r(2, 3), _r(3)]),
    OpCase("add_scalar_reflected", lambda a: 2.5 + a, [_r(2, 3)]),
    OpCase("sub_broadcast", lambda a, b: a - b, [_r(4, 1, 3), _r(2, 1)]),
    OpCase("rsub_scalar", lambda a: 1.0 - a, [_r(3)]),
    OpCase("mul_broadcast", lambda a, b: a * b, [_r(2, 3, 4), _r(1, 4)]),
    OpCase("div_broadcast", lambda a, b: a / b, [_r(3, 4), _r(4, low=0.5, high=2.0)]),
    OpCase("rdiv_scalar", lambda a: 2.0 / a, [_r(5, low=0.5, high=2.0)]),
    OpCase("pow_scalar", lambda a: a ** 3, [_r(2, 3)]),
    OpCase("pow_fractional", lambda a: a ** 0.5, [_r(4, low=0.5, high=3.0)]),
    OpCase("pow_tensor", lambda a, b: a ** b, [_r(2, 3, low=0.5, high=2.0), _r(3)]),
    OpCase("neg", lambda a: -a, [_r(2, 2)]),
    # --- matmul
    OpCase("matmul_2d", lambda a, b: a @ b, [_r(3, 4), _r(4, 2)]),
    OpCase("matmul_batched", lambda a, b: a @ b, [_r(2, 3, 4), _r(2, 4, 5)]),
    OpCase("matmul_broadcast_weight", lambda a, b: a @ b, [_r(2, 3, 4), _r(4, 2)]),
    OpCase("matmul_broadcast_batch", lambda a, b: a @ b, [_r(2, 1, 3, 4), _r(3, 4, 2)]),
    OpCase("matmul_vec_right", lambda a, b: a @ b, [_r(3, 4), _r(4)]),
    OpCase("matmul_vec_left", lambda a, b: a @ b, [_r(4), _r(2, 4, 3)]),
    OpCase("matmul_method", lambda a, b: a.matmul(b), [_r(2, 3), _r(3, 3)]),
    # --- shape ops
    OpCase("reshape", lambda a: a.reshape(3, -1) * 2, [_r(2, 3, 2)]),
    OpCase("reshape_tuple", lambda a: a.reshape((6,)), [_r(2, 3)]),
    OpCase("transpose_default", lambda a: a.transpose(), [_r(2, 3, 4)], lambda a: a.transpose(-2, -1)),
    OpCase("transpose_dims", lambda a: a.transpose(0, 2), [_r(2, 3, 4)]),
    OpCase("T", lambda a: a.T, [_r(3, 4)]),
    OpCase("permute", lambda a: a.permute(2, 0, 1), [_r(2, 3, 4)]),
    # --- indexing
    OpCase("getitem_int", lambda a: a[1], [_r(3, 4)]),
    OpCase("getitem_slice", lambda a: a[:, 1:3], [_r(3, 4)]),
    OpCase("getitem_step_neg", lambda a: a[::-2], [_r(5, 2)], lambda a: a.flip(0)[::2]),
    OpCase("getitem_repeat_index", lambda a, i: a[i], [_r(3, 2), idx_repeat[:3] % 3]),
    OpCase("getitem_pairs", lambda a, i: a[np.arange(3), i], [_r(3, 4), labels],
           lambda a, i: a[_tf().arange(3), i]),
    OpCase("getitem_mask", lambda a, m: a[m], [_r(2, 3), mask]),
    OpCase("getitem_mask_tensor", lambda a: a[a > 0], [_r(3, 3)]),
    # --- reductions
    OpCase("sum_all", lambda a: a.sum(), [_r(2, 3)]),
    OpCase("sum_axis", lambda a: a.sum(axis=1), [_r(2, 3, 4)], lambda a: a.sum(dim=1)),
    OpCase("sum_axes_keepdims", lambda a: a.sum(axis=(0, 2), keepdims=True), [_r(2, 3, 4)],
           lambda a: a.sum(dim=(0, 2), keepdim=True)),
    OpCase("sum_negative_axis", lambda a: a.sum(axis=-1), [_r(2, 3)], lambda a: a.sum(dim=-1)),
    OpCase("mean_all", lambda a: a.mean(), [_r(3, 4)]),
    OpCase("mean_axis_keepdims", lambda a: a.mean(axis=0, keepdims=True), [_r(3, 4)],
           lambda a: a.mean(dim=0, keepdim=True)),
    OpCase("max_all", lambda a: a.max(), [_distinct(3, 4)], lambda a: a.amax()),
    OpCase("max_axis", lambda a: a.max(axis=1), [_distinct(3, 4)], lambda a: a.amax(dim=1)),
    OpCase("max_axis_keepdims", lambda a: a.max(axis=0, keepdims=True), [_distinct(3, 4)],
           lambda a: a.amax(dim=0, keepdim=True)),
    OpCase("max_ties", lambda a: a.max(axis=1), [np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])],
           lambda a: a.amax(dim=1), gradcheck=False),
    # --- element-wise math
    OpCase("exp", lambda a: a.exp(), [_r(2, 3)]),
    OpCase("log", lambda a: a.log(), [_r(2, 3, low=0.2, high=3.0)]),
    OpCase("sqrt", lambda a: a.sqrt(), [_r(2, 3, low=0.2, high=3.0)]),
    # --- a composite: the linear layer and a softmax written by hand
    OpCase("linear_composite", lambda x, w, b: (x @ w + b).exp().sum(axis=1).log(),
           [_r(4, 3), _r(3, 2) * 0.5, _r(2)],
           lambda x, w, b: (x @ w + b).exp().sum(dim=1).log()),
    # --- activations (module 02 classes, fused by module 05)
    OpCase("relu", _act("ReLU"), [_r(3, 4)], lambda a: _tf().relu(a)),
    OpCase("sigmoid", _act("Sigmoid"), [_r(3, 4) * 3], lambda a: _tf().sigmoid(a)),
    OpCase("tanh", _act("Tanh"), [_r(3, 4)], lambda a: _tf().tanh(a)),
    OpCase("gelu_tanh", _act("GELU"), [_r(3, 4) * 2], lambda a: _F().gelu(a, approximate="tanh")),
    OpCase("softmax_last", _act("Softmax"), [_r(3, 4)], lambda a: _tf().softmax(a, dim=-1)),
    OpCase("softmax_dim0", _act("Softmax", dim=0), [_r(3, 4)], lambda a: _tf().softmax(a, dim=0)),
    OpCase("log_softmax", _log_softmax(-1), [_r(3, 5)], lambda a: _tf().log_softmax(a, dim=-1)),
    OpCase("log_softmax_dim0", _log_softmax(0), [_r(3, 5)], lambda a: _tf().log_softmax(a, dim=0)),
    # --- losses (module 04 classes, fused by module 05)
    OpCase("mse_loss", _loss("MSELoss"), [_r(4, 3), _r(4, 3)], lambda p, t: _F().mse_loss(p, t)),
    OpCase("bce_loss", _loss("BinaryCrossEntropyLoss"),
           [_r(5, 2, low=0.05, high=0.95), (_r(5, 2) > 0).astype(np.float64)],
           lambda p, t: _F().binary_cross_entropy(p, t), const=(1,)),
    OpCase("bce_soft_targets", _loss("BinaryCrossEntropyLoss"),
           [_r(6, low=0.05, high=0.95), _r(6, low=0.0, high=1.0)],
           lambda p, t: _F().binary_cross_entropy(p, t), const=(1,)),
    OpCase("cross_entropy", _loss("CrossEntropyLoss"), [_r(3, 4), labels],
           lambda x, t: _F().cross_entropy(x, t)),
    OpCase("cross_entropy_3d", _loss("CrossEntropyLoss"), [_r(2, 3, 5), np.array([[0, 4, 2], [1, 1, 3]])],
           lambda x, t: _F().cross_entropy(x.reshape(-1, 5), t.reshape(-1))),
    OpCase("cross_entropy_large_logits", _loss("CrossEntropyLoss"),
           [np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]]), np.array([1, 1])],
           lambda x, t: _F().cross_entropy(x, t), gradcheck=False),
    # --- PyTorch spellings of module 01 (differentiable through module 05)
    OpCase("abs", lambda a: a.abs(), [_r(2, 3, low=0.1, high=1.0) * np.array([1, -1, 1])]),
    OpCase("clamp_both", lambda a: a.clamp(-0.5, 0.5), [np.array([[-1.3, -0.2, 0.1], [0.4, 0.9, -0.7]])]),
    OpCase("clamp_min", lambda a: a.clamp(min=0.0), [np.array([-0.8, 0.3, 1.2, -0.1])]),
    OpCase("clone", lambda a: a.clone() * 2, [_r(3, 2)]),
    OpCase("sum_dim_keepdim", lambda a: a.sum(dim=1, keepdim=True), [_r(2, 3, 4)]),
    OpCase("mean_dim", lambda a: a.mean(dim=-1), [_r(3, 4)]),
    OpCase("max_dim_values", lambda a: a.max(dim=1).values, [_distinct(3, 4)]),
    OpCase("min_dim_keepdim", lambda a: a.min(dim=0, keepdim=True).values, [_distinct(3, 4)]),
    OpCase("min_all", lambda a: a.min(), [_distinct(2, 3)]),
    OpCase("view", lambda a: a.view(3, -1), [_r(2, 3, 2)]),
    OpCase("unsqueeze_squeeze", lambda a: a.unsqueeze(1).squeeze(0) * 1.5, [_r(1, 4)]),
    OpCase("flatten_from1", lambda a: a.flatten(1), [_r(2, 3, 2)]),
    # --- matmul with a shared 2-D weight (module 05 folds the batch into one product)
    OpCase("matmul_shared_weight_4d", lambda a, b: a @ b, [_r(2, 2, 3, 4), _r(4, 3)]),
    OpCase("matmul_shared_weight_vec", lambda a, b: a @ b, [_r(2, 3, 4), _r(4)]),
    OpCase("matmul_shared_left", lambda a, b: a @ b, [_r(3, 4), _r(2, 4, 5)]),
]

NAMES = [c.name for c in CASES]
assert len(NAMES) == len(set(NAMES)), "duplicate case names"
