"""Unit and property tests for module 09 (tinytorch.core.spatial).

The seven-loop convolution is the oracle for the vectorized one over random shapes,
strides and paddings (Hypothesis); im2col/col2im are checked to be adjoint; pooling and
batch norm against direct NumPy formulas; errors name what was expected and got.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.spatial import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Conv2dFunction,
    MaxPool2d,
    col2im,
    conv2d_loops,
    conv_output_size,
    im2col,
)
from tinytorch.core.tensor import Tensor

conv_cfg = st.tuples(
    st.integers(1, 2),            # N
    st.integers(1, 3),            # C
    st.integers(1, 3),            # O
    st.integers(1, 3),            # KH
    st.integers(1, 3),            # KW
    st.integers(1, 3),            # stride
    st.integers(0, 2),            # padding
    st.integers(0, 4),            # extra H
    st.integers(0, 4),            # extra W
    st.integers(0, 2**31 - 1),    # seed
)


@settings(max_examples=40, deadline=None)
@given(conv_cfg)
def test_vectorized_conv_matches_seven_loops(cfg):
    N, C, O, KH, KW, S, P, eh, ew, seed = cfg
    H, W = max(KH - 2 * P, 1) + eh, max(KW - 2 * P, 1) + ew
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((O, C, KH, KW)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    fast = Conv2dFunction().forward(x, w, b, stride=S, padding=P)
    ref = conv2d_loops(x, w, b, stride=S, padding=P)
    assert fast.shape == ref.shape == (N, O, conv_output_size(H, KH, S, P), conv_output_size(W, KW, S, P))
    assert fast.dtype == np.float32
    np.testing.assert_allclose(fast, ref, rtol=1e-4, atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(conv_cfg)
def test_im2col_and_col2im_are_adjoint(cfg):
    N, C, _, KH, KW, S, P, eh, ew, seed = cfg
    H, W = max(KH - 2 * P, 1) + eh, max(KW - 2 * P, 1) + ew
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    cols, (ho, wo) = im2col(x, (KH, KW), S, P)
    assert cols.shape == (N, C * KH * KW, ho * wo)
    c = rng.standard_normal(cols.shape)
    back = col2im(c, x.shape, (KH, KW), S, P)
    np.testing.assert_allclose((cols * c).sum(), (x * back).sum(), rtol=1e-9, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(2, 9), st.integers(2, 9), st.integers(1, 3),
       st.integers(0, 2**31 - 1))
def test_pooling_matches_numpy_windows(k, s, H, W, C, seed):
    if H < k or W < k:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, C, H, W)).astype(np.float32)
    ho, wo = (H - k) // s + 1, (W - k) // s + 1
    mx = MaxPool2d(k, s)(Tensor(x)).data
    av = AvgPool2d(k, s)(Tensor(x)).data
    assert mx.shape == av.shape == (2, C, ho, wo)
    for i in range(ho):
        for j in range(wo):
            win = x[:, :, i * s:i * s + k, j * s:j * s + k]
            np.testing.assert_allclose(mx[:, :, i, j], win.max(axis=(2, 3)))
            np.testing.assert_allclose(av[:, :, i, j], win.mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)


def test_conv_weight_gradient_accumulates_over_two_backwards():
    layer = Conv2d(2, 3, 3, padding=1, seed=0)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 2, 5, 5)).astype(np.float32))
    layer(x).sum().backward()
    g1 = layer.weight.grad.data.copy()
    layer(x).sum().backward()
    np.testing.assert_allclose(layer.weight.grad.data, 2 * g1, rtol=1e-5)


def test_first_layer_input_without_grad_gets_none():
    layer = Conv2d(3, 4, 3, seed=0)
    x = Tensor(np.ones((1, 3, 5, 5), np.float32))          # an image batch: requires_grad False
    layer(x).sum().backward()
    assert x.grad is None
    assert layer.weight.grad is not None


def test_batchnorm_eval_uses_running_stats_and_train_updates_them():
    rng = np.random.default_rng(0)
    bn = BatchNorm2d(2, momentum=0.5)
    x = (rng.standard_normal((4, 2, 3, 3)) * 3 + 2).astype(np.float32)
    bn(Tensor(x))
    np.testing.assert_allclose(bn.running_mean.data, 0.5 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.data, 0.5 + 0.5 * x.var(axis=(0, 2, 3), ddof=1), rtol=1e-5)
    bn.eval()
    before = bn.running_mean.data.copy()
    bn(Tensor(x))
    np.testing.assert_array_equal(bn.running_mean.data, before)   # eval never updates


@pytest.mark.parametrize("call, words", [
    (lambda: Conv2d(3, 4, 3)(Tensor(np.zeros((1, 2, 5, 5), np.float32))), ["3", "2"]),
    (lambda: Conv2d(1, 1, 3)(Tensor(np.zeros((5, 5), np.float32))), ["(N, C, H, W)", "(5, 5)"]),
    (lambda: Conv2d(1, 1, 5)(Tensor(np.zeros((1, 1, 3, 3), np.float32))), ["kernel 5", "3"]),
    (lambda: MaxPool2d(2)(Tensor(np.zeros((4, 4), np.float32))), ["(N, C, H, W)"]),
    (lambda: BatchNorm2d(3)(Tensor(np.zeros((2, 4, 2, 2), np.float32))), ["3", "4"]),
])
def test_errors_name_expected_and_got(call, words):
    with pytest.raises(ValueError) as err:
        call()
    for w in words:
        assert w in str(err.value), f"{w!r} missing from: {err.value}"
