"""Op cases for module 09 (spatial): Conv2d, MaxPool2d, AvgPool2d, Flatten, BatchNorm2d.

Checked by tests/opcheck/test_ops.py with the opcheck kit (finite differences, PyTorch when
installed, golden fixtures in tests/golden/ otherwise, float32 re-run). Fixtures:
    .venv/bin/python scripts/make_golden.py tests/spatial/spatial_opcases.py
Inputs are small and seeded; max-pool inputs have no ties so its gradient is defined.
"""
from __future__ import annotations

import numpy as np

from opcheck import OpCase, distinct

_rng = np.random.default_rng(909)


def _r(*shape):
    return _rng.standard_normal(shape)


def _distinct(*shape):
    return distinct(_rng, *shape)


def _conv(stride=1, padding=0):
    def call(x, w, b=None):
        from tinytorch.core.spatial import Conv2dFunction

        if b is None:
            return Conv2dFunction.apply(x, w, stride=stride, padding=padding)
        return Conv2dFunction.apply(x, w, b, stride=stride, padding=padding)
    return call


def _tconv(stride=1, padding=0):
    def call(x, w, b=None):
        import torch.nn.functional as F

        return F.conv2d(x, w, b, stride=stride, padding=padding)
    return call


def _pool(kind, k, s=None):
    def call(x):
        from tinytorch.core import spatial

        return getattr(spatial, kind)(k, s)(x)
    return call


def _tpool(kind, k, s=None):
    def call(x):
        import torch.nn.functional as F

        return (F.max_pool2d if kind == "MaxPool2d" else F.avg_pool2d)(x, k, s)
    return call


def _bn(x, g, b):
    from tinytorch.core.spatial import BatchNorm2d

    layer = BatchNorm2d(x.shape[1])
    layer.weight, layer.bias = g, b           # differentiate through gamma and beta too
    return layer(x)


def _tbn(x, g, b):
    import torch.nn.functional as F

    return F.batch_norm(x, None, None, g, b, training=True, eps=1e-5)


def _flatten(x):
    from tinytorch.core.spatial import Flatten

    return Flatten()(x)


def _tflatten(x):
    return x.flatten(1)


CASES = [
    OpCase("conv2d_basic", _conv(), [_r(2, 3, 5, 5), _r(4, 3, 3, 3), _r(4)], _tconv()),
    OpCase("conv2d_pad1", _conv(padding=1), [_r(2, 2, 4, 4), _r(3, 2, 3, 3), _r(3)], _tconv(padding=1)),
    OpCase("conv2d_stride2_pad1", _conv(stride=2, padding=1), [_r(1, 2, 7, 6), _r(3, 2, 3, 3), _r(3)],
           _tconv(stride=2, padding=1)),
    OpCase("conv2d_rect_kernel_nobias", _conv(), [_r(2, 2, 5, 6), _r(2, 2, 2, 3)], _tconv()),
    OpCase("conv2d_5x5_stride3", _conv(stride=3), [_r(1, 1, 11, 11), _r(2, 1, 5, 5), _r(2)], _tconv(stride=3)),
    OpCase("maxpool2d_2", _pool("MaxPool2d", 2), [_distinct(2, 2, 4, 6)], _tpool("MaxPool2d", 2)),
    OpCase("maxpool2d_3_stride2_overlap", _pool("MaxPool2d", 3, 2), [_distinct(1, 2, 7, 7)],
           _tpool("MaxPool2d", 3, 2)),
    OpCase("maxpool2d_odd_size", _pool("MaxPool2d", 2), [_distinct(1, 3, 5, 5)], _tpool("MaxPool2d", 2)),
    OpCase("avgpool2d_2", _pool("AvgPool2d", 2), [_r(2, 2, 4, 4)], _tpool("AvgPool2d", 2)),
    OpCase("avgpool2d_3_stride1", _pool("AvgPool2d", 3, 1), [_r(1, 2, 5, 4)], _tpool("AvgPool2d", 3, 1)),
    OpCase("flatten_nchw", _flatten, [_r(3, 2, 2, 3)], _tflatten),
    OpCase("batchnorm2d_train", _bn, [_r(4, 3, 3, 3) * 2 + 1, _r(3), _r(3)], _tbn, gc_rtol=1e-3, gc_atol=1e-5),
]
