"""Activations (module 02): known values, float64 references, stability, properties.

Every function is checked against an independent float64 implementation written with the
``math`` module, element by element; the PyTorch comparisons (golden fixtures) are the cases of
foundation_opcases.py, run by tests/opcheck/test_ops.py; a live check on fresh inputs is at the end.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.tensor import Tensor

ALL = [ReLU, Sigmoid, Tanh, GELU, Softmax]

# float32 arrays of 1-3 dims, values up to +-1e4 (the contract's stability range)
arrays = hnp.arrays(
    dtype=np.float32,
    shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6),
    elements=st.floats(-1e4, 1e4, width=32, allow_nan=False, allow_infinity=False),
)


def ref_sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


def ref_gelu_tanh(v: float) -> float:
    return 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))


def ref_softmax_rows(x: np.ndarray) -> np.ndarray:
    out = np.empty(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape[:-1]):
        row = [float(v) for v in x[idx]]
        m = max(row)
        e = [math.exp(v - m) for v in row]
        s = math.fsum(e)
        out[idx] = [v / s for v in e]
    return out


ELEMENTWISE = [
    (ReLU, lambda v: max(0.0, v)),
    (Sigmoid, ref_sigmoid),
    (Tanh, math.tanh),
    (GELU, ref_gelu_tanh),
]


@pytest.mark.parametrize("cls,ref", ELEMENTWISE, ids=lambda c: getattr(c, "__name__", ""))
@given(x=arrays)
@settings(max_examples=25, deadline=None)
def test_elementwise_matches_float64_reference(cls, ref, x):
    out = cls()(Tensor(x))
    assert isinstance(out, Tensor)
    assert out.shape == x.shape and out.dtype == np.float32
    expected = np.vectorize(lambda v: ref(float(v)), otypes=[np.float64])(x)
    np.testing.assert_allclose(out.data, expected, rtol=2e-6, atol=2e-6)


@given(x=arrays)
@settings(max_examples=25, deadline=None)
def test_softmax_matches_float64_reference_and_sums_to_one(x):
    out = Softmax()(Tensor(x)).data
    assert out.dtype == np.float32 and np.all(np.isfinite(out))
    np.testing.assert_allclose(out, ref_softmax_rows(x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-5)


@given(x=arrays, shift=st.floats(-1e3, 1e3, width=32))
@settings(max_examples=30, deadline=None)
def test_softmax_shift_invariance(x, shift):
    x = x / np.float32(100)                       # keep x + shift exactly representable enough
    a = Softmax()(Tensor(x)).data
    b = Softmax()(Tensor(x + np.float32(shift))).data
    np.testing.assert_allclose(a, b, atol=2e-4)


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -2, -3])
def test_softmax_every_dim(dim):
    x = np.random.default_rng(dim + 10).normal(size=(2, 3, 4)).astype(np.float32) * 5
    out = Softmax(dim=dim)(Tensor(x)).data
    np.testing.assert_allclose(out.sum(axis=dim), np.ones(np.delete(x.shape, dim % 3)), rtol=1e-5)
    expected = np.moveaxis(ref_softmax_rows(np.moveaxis(x, dim, -1)), -1, dim)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_no_floating_point_warnings_at_extremes(cls):
    x = Tensor(np.array([[-1e4, -200.0, -88.8, 0.0, 88.8, 200.0, 1e4]], dtype=np.float32))
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        try:
            out = cls()(x).data
        except FloatingPointError as e:        # pragma: no cover - the failure message
            pytest.fail(f"{cls.__name__} triggered a floating-point error at +-1e4: {e}")
    assert np.all(np.isfinite(out)), f"{cls.__name__} produced {out}"


def test_softmax_all_equal_and_all_very_negative_rows():
    out = Softmax()(Tensor(np.array([[-1e4] * 4, [7.0] * 4], dtype=np.float32))).data
    np.testing.assert_allclose(out, np.full((2, 4), 0.25), rtol=1e-6)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_interface(cls):
    act = cls()
    assert act.parameters() == []
    x = Tensor(np.array([[1.0, -2.0]], dtype=np.float32))
    before = x.data.copy()
    out = act(x)
    np.testing.assert_array_equal(x.data, before, err_msg=f"{cls.__name__} modified its input")
    assert out is not x


def test_call_goes_through_forward():
    """Module 05 replaces ``forward`` on the class: ``__call__`` must look it up each time."""
    class Probe(ReLU):
        def forward(self, x):
            return Tensor(np.array([42.0], dtype=np.float32))
    assert Probe()(Tensor([1.0])).data[0] == 42.0


def test_float64_tensor_stays_float64():
    """gradcheck runs in float64 on purpose; the forward must not downcast it."""
    x = Tensor(np.array([-1.0, 0.5, 2.0]), dtype=np.float64)
    for cls in ALL:
        assert cls()(x).dtype == np.float64, f"{cls.__name__} changed float64 to {cls()(x).dtype}"


def test_integer_input_becomes_float32():
    x = Tensor(np.array([-1, 0, 2], dtype=np.int64))
    for cls in ALL:
        assert cls()(x).dtype == np.float32


def test_softmax_bad_dim_is_a_clear_error():
    with pytest.raises(ValueError, match="dim=3"):
        Softmax(dim=3)(Tensor(np.zeros((2, 3), dtype=np.float32)))


def test_gelu_known_values_and_shape_of_dip():
    x = np.linspace(-4, 4, 801).astype(np.float32)
    y = GELU()(Tensor(x)).data
    i = int(y.argmin())
    assert -0.80 < x[i] < -0.70 and -0.171 < y[i] < -0.169   # minimum ~ -0.17 near x = -0.75
    np.testing.assert_allclose(GELU()(Tensor([1.0])).data, [0.8411920], rtol=1e-6)


# ----------------------------------------------------------------------------- torch, live
@pytest.mark.torch
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_torch_direct_activations_and_cross_entropy(seed):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((7, 9)) * 10 ** rng.uniform(0, 4)).astype(np.float32)
    tx = torch.tensor(x)
    pairs = [(ReLU(), F.relu(tx)), (Sigmoid(), torch.sigmoid(tx)), (Tanh(), torch.tanh(tx)),
             (GELU(), F.gelu(tx, approximate="tanh")), (Softmax(), F.softmax(tx, dim=-1))]
    for act, ref in pairs:
        np.testing.assert_allclose(act(Tensor(x)).data, ref.numpy(), rtol=1e-5, atol=1e-6, err_msg=repr(act))
    t = rng.integers(0, 9, size=7)
    np.testing.assert_allclose(CrossEntropyLoss()(Tensor(x), t).item(),
                               F.cross_entropy(tx, torch.tensor(t)).item(), rtol=1e-5, atol=1e-5)
