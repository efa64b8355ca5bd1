"""Hypothesis property tests: shapes, broadcasting and axes drawn at random; every forward must
match NumPy and every gradient must pass the finite-difference check (float64)."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import tinytorch  # noqa: F401  (enables autograd)
from tinytorch.core.autograd import gradcheck
from tinytorch.core.tensor import Tensor

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)
OPS = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / b, np.divide),
}


def _arr(shape, seed, low=None):
    rng = np.random.default_rng(seed)
    if low is not None:
        return rng.uniform(low, 2.0, shape)
    return rng.standard_normal(shape)


@SETTINGS
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
       op=st.sampled_from(sorted(OPS)), seed=st.integers(0, 2**16))
def test_broadcasting_binary_ops(shapes, op, seed):
    sa, sb = shapes.input_shapes
    fn, ref = OPS[op]
    a = _arr(sa, seed)
    b = _arr(sb, seed + 1, low=0.5 if op == "div" else None)
    out = fn(Tensor(a.astype(np.float32)), Tensor(b.astype(np.float32)))
    assert out.shape == shapes.result_shape and out.dtype == np.float32
    np.testing.assert_allclose(out.data, ref(a, b).astype(np.float32), rtol=1e-5, atol=1e-6)
    assert gradcheck(lambda x, y: fn(x, y), Tensor(a, dtype=np.float64), Tensor(b, dtype=np.float64))


@SETTINGS
@given(batch=mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3),
       m=st.integers(1, 3), k=st.integers(1, 3), n=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_batched_broadcast_matmul(batch, m, k, n, seed):
    sa = batch.input_shapes[0] + (m, k)
    sb = batch.input_shapes[1] + (k, n)
    a, b = _arr(sa, seed), _arr(sb, seed + 1)
    out = Tensor(a.astype(np.float32)) @ Tensor(b.astype(np.float32))
    assert out.shape == np.matmul(a, b).shape and out.dtype == np.float32
    np.testing.assert_allclose(out.data, np.matmul(a, b), rtol=1e-4, atol=1e-5)
    assert gradcheck(lambda x, y: x @ y, Tensor(a, dtype=np.float64), Tensor(b, dtype=np.float64))


@st.composite
def _reduction(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim)))
    axis = draw(st.one_of(st.none(), st.integers(-ndim, ndim - 1),
                          st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple)))
    return shape, axis, draw(st.booleans()), draw(st.sampled_from(["sum", "mean", "max"]))


@SETTINGS
@given(spec=_reduction(), seed=st.integers(0, 2**16))
def test_reductions(spec, seed):
    shape, axis, keepdims, name = spec
    a = np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) * 0.5 + 0.25  # no ties
    out = getattr(Tensor(a.astype(np.float32)), name)(axis=axis, keepdims=keepdims)
    ref = getattr(a, name)(axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(ref) and out.dtype == np.float32
    np.testing.assert_allclose(out.data, ref, rtol=1e-5)
    assert gradcheck(lambda x: getattr(x, name)(axis=axis, keepdims=keepdims), Tensor(a, dtype=np.float64))


@SETTINGS
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=4).map(tuple), data=st.data())
def test_permute_reshape_roundtrip(shape, data):
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    a = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    w = np.random.default_rng(len(shape)).standard_normal(int(np.prod(shape)))

    def fn(x):
        return x.permute(*perm).reshape(-1) * Tensor(w, dtype=np.float64)

    np.testing.assert_array_equal(Tensor(a).permute(*perm).data, a.transpose(perm))
    assert gradcheck(fn, Tensor(a, dtype=np.float64))


@SETTINGS
@given(n=st.integers(1, 6), idx=st.lists(st.integers(0, 5), min_size=1, max_size=10))
def test_getitem_scatter_adds_repeats(n, idx):
    idx = np.array([i % n for i in idx])
    x = Tensor(np.arange(n, dtype=np.float32), requires_grad=True)
    x[idx].sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.bincount(idx, minlength=n).astype(np.float32))
