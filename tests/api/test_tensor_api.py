"""PyTorch's spellings on the reference Tensor, and the clear errors that replace silent results."""
from __future__ import annotations

import numpy as np
import pytest

import tinytorch
import tinytorch.nn as nn
import tinytorch.nn.functional as F
from tinytorch import Tensor


def test_none_and_strings_are_refused():
    with pytest.raises(TypeError, match="None"):
        Tensor(None)
    with pytest.raises(TypeError, match="str"):
        Tensor("1.0")


def test_linear_refuses_integer_input_instead_of_computing_in_float64():
    layer = nn.Linear(3, 2)
    with pytest.raises(TypeError, match=r"int64.*x\.float\(\)"):
        layer(Tensor(np.array([[1, 2, 3]])))
    assert layer(Tensor(np.array([[1, 2, 3]])).float()).dtype == np.float32


def test_conv2d_padding_same_and_valid():
    x = tinytorch.randn(2, 3, 7, 9)
    assert nn.Conv2d(3, 4, 5, padding="same")(x).shape == (2, 4, 7, 9)
    assert nn.Conv2d(3, 4, 3, padding="valid")(x).shape == (2, 4, 5, 7)
    assert F.conv2d(x, tinytorch.randn(4, 3, 3, 3), padding="same").shape == (2, 4, 7, 9)
    for bad in (dict(kernel_size=2, padding="same"), dict(kernel_size=3, stride=2, padding="same"),
                dict(kernel_size=3, padding="full"), dict(kernel_size=3, padding=-1)):
        with pytest.raises(ValueError, match="padding"):
            nn.Conv2d(3, 4, **bad)


def test_reductions_take_both_spellings_and_refuse_both_at_once():
    x = Tensor([[1.0, 9.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.sum(dim=1, keepdim=True).shape == (2, 1) == x.sum(axis=1, keepdims=True).shape
    assert x.mean(dim=0).tolist() == x.mean(0).tolist() == [2.5, 7.0, 4.5]
    assert x.max(1).tolist() == [9.0, 6.0], "positional max keeps NumPy's meaning (values)"
    values, indices = x.max(dim=1)
    assert values.tolist() == [9.0, 6.0] and indices.tolist() == [1, 2] and indices.dtype == np.int64
    assert x.max(dim=1).indices.tolist() == [1, 2] and x.min(dim=1).values.tolist() == [1.0, 4.0]
    assert x.argmin(dim=1).tolist() == [0, 0] and x.min().item() == 1.0
    with pytest.raises(TypeError, match="not both"):
        x.sum(axis=0, dim=0)


def test_size_is_numpys_count_and_pytorchs_shape():
    x = tinytorch.zeros(2, 3)
    assert x.size == 6 and x.size * 4 == 24 and x.numel() == 6
    assert x.size() == (2, 3) and x.size(-1) == 3 and x.dim() == 2


def test_view_refuses_to_copy_and_the_other_shape_habits():
    x = Tensor(np.arange(6, dtype=np.float32))
    v = x.view(2, 3)
    assert np.shares_memory(v.data, x.data)
    with pytest.raises(ValueError, match="view"):
        v.transpose().view(6)
    assert v.transpose().reshape(6).tolist() == [0, 3, 1, 4, 2, 5]
    assert v.flatten().shape == (6,) and v.unsqueeze(0).flatten(1).shape == (1, 6)
    c = v.clone()
    c.data[0, 0] = 99
    assert v.data[0, 0] == 0, "clone copies"
    assert Tensor(np.array([1.5, -2.5])).long().tolist() == [1, -2]
    assert Tensor(np.array([1, 2])).float().dtype == np.float32
    assert Tensor([-2.0, 3.0]).abs().tolist() == [2.0, 3.0]


def test_factories_and_manual_seed_make_layers_repeatable():
    tinytorch.manual_seed(7)
    a, la = tinytorch.randn(3, 2), nn.Linear(4, 2)
    tinytorch.manual_seed(7)
    b, lb = tinytorch.randn(3, 2), nn.Linear(4, 2)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(la.weight.data, lb.weight.data)
    assert a.dtype == np.float32 and tinytorch.ones((2, 2), requires_grad=True).requires_grad
    assert tinytorch.tensor([1, 2]).dtype == np.float32, "Python numbers become float32, as for Tensor()"
    assert tinytorch.tensor(np.array([1, 2])).dtype == np.int64


def test_a_second_backward_raises_as_pytorch_does():
    w = tinytorch.ones(2, requires_grad=True)
    hidden = w * 3
    loss = (hidden * hidden).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()
    with pytest.raises(RuntimeError, match="second time"):   # a new graph on top of a freed node
        (hidden * 2).sum().backward()
    np.testing.assert_allclose(w.grad.data, [18, 18])
