"""Op cases of modules 02-04 for the opcheck kit: the activations on ordinary, extreme (|x| up
to 1e4, where naive formulas overflow) and 3-D inputs, the losses on ordinary and extreme
inputs, and the Linear layer. Inputs are float32 values (what the models feed); the kit
runs them in float64 against PyTorch and again in float32 (here with the float32 tolerance
of the old float32-against-PyTorch check). Fixtures: scripts/make_golden.py."""
from __future__ import annotations

import numpy as np

from opcheck import OpCase

_rng = np.random.default_rng(1958)
_F32 = dict(f32_rtol=1e-5, f32_atol=1e-6)


def _act(name, **kw):
    def call(x):
        from tinytorch.core import activations
        return getattr(activations, name)(**kw)(x)
    return call


def _log_softmax(x):
    from tinytorch.core.losses import log_softmax  # looked up at call time: module 05 replaces it
    return log_softmax(x, dim=-1)


def _loss(name):
    def call(p, t):
        from tinytorch.core import losses
        return getattr(losses, name)()(p, t)
    return call


def _linear(x, W, b):
    from tinytorch.core.layers import Linear
    layer = Linear(3, 2, seed=0)
    layer.weight, layer.bias = W, b
    return layer(x)


def _torch(name, **kw):
    def call(*args):
        import torch
        import torch.nn.functional as F
        return {"relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "gelu": F.gelu,
                "softmax": F.softmax, "log_softmax": F.log_softmax, "mse": F.mse_loss,
                "bce": F.binary_cross_entropy, "ce": F.cross_entropy}[name](*args, **kw)
    return call


def _t_bce_clipped(p, t):
    """BCE on p clipped to [1e-7, 1 - 1e-7] whose gradient is the slope at the clipped point
    (straight through), as tinytorch defines it: finite at p = 0 and p = 1."""
    import torch.nn.functional as F
    return F.binary_cross_entropy(p + (p.clamp(1e-7, 1 - 1e-7) - p).detach(), t)


_inputs = {
    "plain": _rng.standard_normal((4, 6)).astype(np.float32) * 3,
    "extreme": np.array([[-1e4, -100.0, -1.0, 0.0, 1.0, 100.0], [1e4, 1e4, -1e4, 3.0, 3.0, -3.0]],
                        dtype=np.float32),
    "cube": _rng.standard_normal((2, 3, 5)).astype(np.float32),
}
_activations = {
    "relu": (_act("ReLU"), _torch("relu")),
    "sigmoid": (_act("Sigmoid"), _torch("sigmoid")),
    "tanh": (_act("Tanh"), _torch("tanh")),
    "gelu": (_act("GELU"), _torch("gelu", approximate="tanh")),
    "softmax_last": (_act("Softmax", dim=-1), _torch("softmax", dim=-1)),
    "softmax_first": (_act("Softmax", dim=0), _torch("softmax", dim=0)),
    "log_softmax_last": (_log_softmax, _torch("log_softmax", dim=-1)),
}

CASES = [
    # finite differences need smooth points: the extreme input holds 0 (ReLU's kink) and 1e4
    OpCase(f"foundation_{act}_{kind}", fn, [x], torch_fn, gradcheck=kind != "extreme", **_F32)
    for kind, x in _inputs.items() for act, (fn, torch_fn) in _activations.items()
] + [
    OpCase("foundation_mse", _loss("MSELoss"), [_rng.standard_normal((5, 3)).astype(np.float32),
                                                _rng.standard_normal((5, 3)).astype(np.float32)],
           _torch("mse"), const=(1,), **_F32),
    OpCase("foundation_bce", _loss("BCELoss"), [_rng.uniform(0.01, 0.99, size=(6, 1)).astype(np.float32),
                                                _rng.integers(0, 2, size=(6, 1)).astype(np.float32)],
           _torch("bce"), const=(1,), **_F32),
    OpCase("foundation_bce_edge", _loss("BCELoss"), [np.array([0.0, 1.0, 0.5, 1e-9], dtype=np.float32),
                                                     np.array([0.0, 1.0, 1.0, 0.0], dtype=np.float32)],
           _t_bce_clipped, const=(1,), gradcheck=False),   # the clip is a kink at the edge points
    OpCase("foundation_ce", _loss("CrossEntropyLoss"), [_rng.standard_normal((8, 5)).astype(np.float32) * 4,
                                                        _rng.integers(0, 5, size=8).astype(np.int64)],
           _torch("ce"), **_F32),
    OpCase("foundation_ce_big", _loss("CrossEntropyLoss"),
           [np.array([[1e4, -1e4, 0.0], [0.0, 0.0, 1e4], [5.0, 5.0, 5.0]], dtype=np.float32),
            np.array([1, 2, 0], dtype=np.int64)], _torch("ce"), gradcheck=False, **_F32),
    # TinyTorch stores W as (in, out): y = x @ W + b
    OpCase("foundation_linear", _linear, [_rng.standard_normal((4, 3)).astype(np.float32),
                                          _rng.uniform(-0.5, 0.5, size=(3, 2)).astype(np.float32),
                                          _rng.uniform(-0.5, 0.5, size=(2,)).astype(np.float32)],
           lambda x, W, b: x @ W + b, **_F32),
]
