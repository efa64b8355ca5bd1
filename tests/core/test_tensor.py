"""Contract tests of module 01's Tensor (docs/framework.md), run on the exported package."""
from __future__ import annotations

import numpy as np
import pytest

from tinytorch.core.tensor import Tensor, matmul_loops


@pytest.mark.parametrize("data, dtype", [
    (3.0, np.float32), (3, np.float32), ([1, 2], np.float32), ([[0.5], [1.5]], np.float32),
    (np.ones(3, dtype=np.float64), np.float32), (np.float64(2.0), np.float32),
    (np.arange(3), np.arange(3).dtype), (np.array([True]), np.bool_),
    (np.ones(2, dtype=np.float32), np.float32), (np.ones(2, dtype=np.float16), np.float16),
])
def test_constructor_dtype_rules(data, dtype):
    assert Tensor(data).dtype == dtype


def test_explicit_dtype_wins_and_no_copy():
    assert Tensor([1.0], dtype=np.float64).dtype == np.float64
    assert Tensor(np.arange(3), dtype=np.float32).dtype == np.float32
    a = np.zeros((2, 2), dtype=np.float32)
    assert Tensor(a).data is a
    t = Tensor([1.0, 2.0])
    assert Tensor(t).data is t.data


def test_attributes_and_small_methods():
    t = Tensor([[1, 2, 3], [4, 5, 6]], requires_grad=True)
    assert (t.shape, t.ndim, t.size, len(t)) == ((2, 3), 2, 6, 2)
    assert t.requires_grad is True and t.grad is None and t._ctx is None
    assert t.numpy() is t.data
    assert t.memory_footprint() == 24
    assert Tensor(np.zeros((1000, 1000))).memory_footprint() == 4_000_000
    assert Tensor([[7.0]]).item() == 7.0 and isinstance(Tensor([[7.0]]).item(), float)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        t.item()
    with pytest.raises(TypeError):
        len(Tensor(1.0))
    r = repr(t)
    assert "shape=(2, 3)" in r and "float32" in r and "requires_grad=True" in r
    np.testing.assert_array_equal(np.asarray(t), t.data)
    assert len({t, Tensor([1.0])}) == 2, "tensors hash by identity"
    assert bool(Tensor(0.0)) is False and bool(Tensor([2.0])) is True
    with pytest.raises(ValueError):
        bool(Tensor([1.0, 2.0]) > 0)


def test_result_dtypes_follow_numpy():
    f32 = Tensor([1.0, 2.0])
    f64 = Tensor([1.0, 2.0], dtype=np.float64)
    assert (f32 * 0.5).dtype == np.float32
    assert (f32 + np.ones(2)).dtype == np.float32, "a float64 NumPy operand must not promote"
    assert (f32 * np.float64(3.0)).dtype == np.float32
    assert (f64 * 0.5).dtype == np.float64 and (f64 + np.ones(2)).dtype == np.float64
    assert (f64 @ Tensor(np.ones((2, 2)), )).dtype == np.float64
    assert Tensor(np.array([1, 2])).mean().dtype == np.float32
    assert (Tensor(np.array([1, 2])) + 1).dtype == np.array([1]).dtype


@pytest.mark.parametrize("op", ["add", "sub", "mul", "truediv", "pow"])
def test_arithmetic_matches_numpy_both_sides(op):
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 2, (2, 3)).astype(np.float32)
    b = rng.uniform(0.5, 2, (3,)).astype(np.float32)
    ref = getattr(np.ndarray, f"__{op}__")
    np.testing.assert_allclose(getattr(Tensor(a), f"__{op}__")(Tensor(b)).data, ref(a, b), rtol=1e-6)
    np.testing.assert_allclose(getattr(Tensor(a), f"__{op}__")(2.0).data, ref(a, 2.0), rtol=1e-6)
    refl = getattr(Tensor(a), f"__r{op}__")(2.0).data  # 2.0 <op> a
    np.testing.assert_allclose(refl, ref(np.full_like(a, 2.0), a), rtol=1e-6)
    np.testing.assert_allclose(getattr(Tensor(a), f"__r{op}__")(b).data, ref(b, a), rtol=1e-6)


def test_numpy_on_the_left_defers_to_tensor():
    out = np.ones(3, dtype=np.float32) * Tensor([1.0, 2.0, 3.0])
    assert isinstance(out, Tensor) and out.data.tolist() == [1, 2, 3]
    assert isinstance(np.ones((2, 3)) @ Tensor(np.ones((3, 1))), Tensor)


def test_comparisons_are_bool_and_never_require_grad():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    for out in (x < 2, x <= 2, x > 2, x >= 2, x == 2, x != 2):
        assert out.dtype == np.bool_ and not out.requires_grad and out._ctx is None
    assert (x == Tensor([1.0, 0.0, 3.0])).data.tolist() == [True, False, True]


def test_broadcast_error_is_loud():
    with pytest.raises(ValueError):
        Tensor(np.zeros((2, 3))) + Tensor(np.zeros(2))


def test_matmul_shapes_and_errors():
    rng = np.random.default_rng(1)
    for sa, sb in [((3, 4), (4, 2)), ((5, 3, 4), (4, 2)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (4, 2)),
                   ((3, 4), (4,)), ((4,), (4,))]:
        a = rng.standard_normal(sa).astype(np.float32)
        b = rng.standard_normal(sb).astype(np.float32)
        np.testing.assert_allclose((Tensor(a) @ Tensor(b)).data, a @ b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(Tensor(a).matmul(b).data, a @ b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"Shape mismatch: \(3, 4\) @ \(5, 2\): inner dimensions 4 and 5 differ"):
        Tensor(np.zeros((3, 4))) @ Tensor(np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"\(2, 3, 4\).*\(3, 4, 2\)"):
        Tensor(np.zeros((2, 3, 4))) @ Tensor(np.zeros((3, 4, 2)))


def test_matmul_loops_agrees_and_checks():
    rng = np.random.default_rng(2)
    a = Tensor(rng.standard_normal((5, 7)).astype(np.float32))
    b = Tensor(rng.standard_normal((7, 3)).astype(np.float32))
    out = matmul_loops(a, b)
    assert out.shape == (5, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out.data, a.data @ b.data, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(5, 7\) @ \(5, 7\)"):
        matmul_loops(a, a)
    with pytest.raises(ValueError):
        matmul_loops(Tensor(np.zeros((2, 2, 2))), b)


def test_shape_ops():
    x = Tensor(np.arange(24, dtype=np.float32))
    assert x.reshape(2, 3, 4).shape == (2, 3, 4) and x.reshape((4, -1)).shape == (4, 6)
    y = x.reshape(2, 3, 4)
    np.testing.assert_array_equal(y.transpose().data, np.swapaxes(y.data, -2, -1))
    np.testing.assert_array_equal(y.transpose(0, 2).data, np.swapaxes(y.data, 0, 2))
    np.testing.assert_array_equal(y.permute(1, 2, 0).data, y.data.transpose(1, 2, 0))
    np.testing.assert_array_equal(y.permute((2, 0, 1)).data, y.data.transpose(2, 0, 1))
    np.testing.assert_array_equal(y[0].T.data, y.data[0].T)
    with pytest.raises(ValueError, match=r"\(24,\)"):
        x.reshape(5, 5)
    with pytest.raises(ValueError):
        y.permute(0, 1)


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
@pytest.mark.parametrize("axis, keepdims", [(None, False), (0, False), (1, True), ((0, 2), False), (-1, True)])
def test_reductions_match_numpy(name, axis, keepdims):
    a = np.random.default_rng(3).standard_normal((2, 3, 4)).astype(np.float32)
    out = getattr(Tensor(a), name)(axis=axis, keepdims=keepdims)
    ref = getattr(a, name)(axis=axis, keepdims=keepdims)
    assert isinstance(out, Tensor) and out.shape == np.shape(ref) and out.dtype == np.float32
    np.testing.assert_allclose(out.data, ref, rtol=1e-5)


def test_elementwise_math():
    a = np.array([0.5, 1.0, 4.0], dtype=np.float32)
    for name, ref in (("exp", np.exp), ("log", np.log), ("sqrt", np.sqrt)):
        out = getattr(Tensor(a), name)()
        assert out.dtype == np.float32
        np.testing.assert_allclose(out.data, ref(a), rtol=1e-6)


def test_indexing():
    x = Tensor(np.arange(12, dtype=np.float32).reshape(3, 4))
    assert x[1].shape == (4,) and x[1, 2].item() == 6 and x[:, -1].data.tolist() == [3, 7, 11]
    assert x[[0, 0, 2]].shape == (3, 4)
    assert x[np.arange(3), Tensor(np.array([0, 1, 2]))].data.tolist() == [0, 5, 10]
    assert x[x > 8].data.tolist() == [9, 10, 11]
    assert x[..., None].shape == (3, 4, 1)


def test_grad_attributes_and_zero_grad():
    w = Tensor([1.0, 2.0], requires_grad=True)
    w.grad = Tensor([0.1, 0.2])
    w.zero_grad()
    assert w.grad is None
    d = w.detach()
    assert d.data is w.data and not d.requires_grad
