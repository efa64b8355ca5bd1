"""Losses (module 04): float64 references, stability at log(0) and +-1e4, targets, errors.

These run against the package as it is: after module 05 exists, ``enable_autograd()`` has
replaced the forwards with differentiable ones, and the same contract must still hold.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.losses import BCELoss, BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss, log_softmax
from tinytorch.core.tensor import Tensor


def ref_log_softmax_row(row) -> list:
    m = max(row)
    lse = m + math.log(math.fsum(math.exp(v - m) for v in row))
    return [v - lse for v in row]


logits_2d = hnp.arrays(
    dtype=np.float32,
    shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8),
    elements=st.floats(-1e4, 1e4, width=32, allow_nan=False, allow_infinity=False),
)


def _scalar(loss) -> float:
    assert isinstance(loss, Tensor), f"a loss must return a Tensor, got {type(loss).__name__}"
    assert loss.shape == (), f"a loss must be a scalar of shape (), got {loss.shape}"
    assert loss.dtype == np.float32, f"a loss on float32 inputs must be float32, got {loss.dtype}"
    return loss.item()


# ----------------------------------------------------------------------------- log_softmax
@given(x=logits_2d)
@settings(max_examples=30, deadline=None)
def test_log_softmax_matches_float64_reference(x):
    out = log_softmax(Tensor(x)).data
    assert out.dtype == np.float32 and np.all(np.isfinite(out))
    expected = np.array([ref_log_softmax_row([float(v) for v in row]) for row in x])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)


def test_log_softmax_exact_for_huge_gaps_and_dims():
    np.testing.assert_array_equal(log_softmax(Tensor([0.0, 1000.0])).data, [-1000.0, 0.0])
    x = np.random.default_rng(0).normal(size=(3, 4, 5)).astype(np.float32)
    for dim in (0, 1, 2, -1):
        np.testing.assert_allclose(np.exp(log_softmax(Tensor(x), dim=dim).data).sum(axis=dim), 1.0, rtol=1e-5)


# ----------------------------------------------------------------------------- MSE
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=5), seed=st.integers(0, 10_000))
@settings(max_examples=25, deadline=None)
def test_mse_matches_float64_reference(shape, seed):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=shape).astype(np.float32)
    t = rng.normal(size=shape).astype(np.float32)
    expected = float(np.mean((p.astype(np.float64) - t.astype(np.float64)) ** 2))
    np.testing.assert_allclose(_scalar(MSELoss()(Tensor(p), Tensor(t))), expected, rtol=1e-5)


def test_mse_refuses_silent_broadcasting():
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(4,\)"):
        MSELoss()(Tensor(np.zeros((4, 1), dtype=np.float32)), Tensor(np.zeros(4, dtype=np.float32)))


def test_mse_accepts_numpy_targets():
    assert _scalar(MSELoss()(Tensor([1.0, 3.0]), np.array([1.0, 1.0]))) == pytest.approx(2.0)


# ----------------------------------------------------------------------------- BCE
@given(seed=st.integers(0, 10_000), n=st.integers(1, 50))
@settings(max_examples=25, deadline=None)
def test_bce_matches_float64_reference(seed, n):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.001, 0.999, size=n).astype(np.float32)
    t = rng.integers(0, 2, size=n).astype(np.float32)
    pd = p.astype(np.float64)
    expected = float(-np.mean(t * np.log(pd) + (1 - t) * np.log(1 - pd)))
    np.testing.assert_allclose(_scalar(BCELoss()(Tensor(p), Tensor(t))), expected, rtol=1e-4)


def test_bce_exact_zero_and_one_are_finite_without_warnings():
    with np.errstate(divide="raise", invalid="raise", over="raise"):
        right = _scalar(BinaryCrossEntropyLoss()(Tensor([0.0, 1.0]), Tensor([0.0, 1.0])))
        wrong_low = _scalar(BinaryCrossEntropyLoss()(Tensor([0.0]), Tensor([1.0])))
        wrong_high = _scalar(BinaryCrossEntropyLoss()(Tensor([1.0]), Tensor([0.0])))
    assert 0 <= right < 1e-5
    assert wrong_low == pytest.approx(-math.log(1e-7), rel=1e-3)      # p clipped up to eps = 1e-7
    # 1 - 1e-7 rounds to 1 - 2**-23 in float32, so the top end costs -log(2**-23) = 15.9
    assert 15.0 < wrong_high < 16.2


def test_bce_alias_and_eps():
    assert BCELoss is BinaryCrossEntropyLoss
    loose = BinaryCrossEntropyLoss(eps=1e-3)
    assert _scalar(loose(Tensor([0.0]), Tensor([1.0]))) == pytest.approx(-math.log(1e-3), rel=1e-4)


def test_bce_soft_targets_and_shape_check():
    got = _scalar(BCELoss()(Tensor([0.5, 0.2]), Tensor([0.5, 0.0])))
    assert got == pytest.approx((math.log(2) - math.log(0.8)) / 2, rel=1e-5)
    with pytest.raises(ValueError):
        BCELoss()(Tensor(np.full((3, 1), 0.5, dtype=np.float32)), Tensor(np.ones(3, dtype=np.float32)))


# ----------------------------------------------------------------------------- cross-entropy
@given(x=logits_2d, seed=st.integers(0, 10_000))
@settings(max_examples=30, deadline=None)
def test_cross_entropy_matches_float64_reference_even_at_1e4(x, seed):
    t = np.random.default_rng(seed).integers(0, x.shape[1], size=x.shape[0])
    expected = -np.mean([ref_log_softmax_row([float(v) for v in row])[c] for row, c in zip(x, t)])
    got = _scalar(CrossEntropyLoss()(Tensor(x), t))
    assert math.isfinite(got)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("make", [np.array, list, lambda v: Tensor(v),
                                  lambda v: Tensor(np.array(v, dtype=np.int64)),
                                  lambda v: np.array(v, dtype=np.int32)],
                         ids=["int-array", "list", "float-tensor", "int-tensor", "int32"])
def test_cross_entropy_target_forms(make):
    logits = Tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
    assert _scalar(CrossEntropyLoss()(logits, make([0, 1]))) == pytest.approx(0.3185398, rel=1e-5)


def test_cross_entropy_uniform_logits_give_log_c():
    assert _scalar(CrossEntropyLoss()(Tensor(np.zeros((5, 10), dtype=np.float32)), np.arange(5))) == \
        pytest.approx(math.log(10), rel=1e-6)


def test_cross_entropy_wrong_number_of_targets():
    with pytest.raises(ValueError):
        CrossEntropyLoss()(Tensor(np.zeros((3, 4), dtype=np.float32)), np.array([0, 1]))


@pytest.mark.parametrize("bad", [[0, 4], [0, -1]], ids=["too-large", "negative"])
def test_cross_entropy_out_of_range_class_is_a_clear_error(bad):
    """A negative index must not silently pick the last class (NumPy wrap-around)."""
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        CrossEntropyLoss()(Tensor(np.zeros((2, 4), dtype=np.float32)), np.array(bad))


def test_cross_entropy_float_input_stays_float64_when_asked():
    x = Tensor(np.zeros((2, 3)), dtype=np.float64)
    assert CrossEntropyLoss()(x, np.array([0, 2])).dtype == np.float64
