"""Module 12 (tinytorch.core.attention): properties beyond the op checks in test_ops.py."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.attention import (
    MultiHeadAttention,
    ScaledDotProductAttention,
    attention_from_ops,
    causal_mask,
    scaled_dot_product_attention,
)
from tinytorch.core.tensor import Tensor


def _loop_attention(q, k, v, mask):
    """Oracle: one query row at a time, plain Python softmax."""
    out = np.zeros(q.shape[:-1] + (v.shape[-1],))
    for idx in np.ndindex(q.shape[:-1]):
        *lead, i = idx
        lead = tuple(lead)
        s = np.array([q[idx] @ k[lead + (j,)] for j in range(k.shape[-2])]) / np.sqrt(q.shape[-1])
        allowed = np.broadcast_to(mask, q.shape[:-1] + (k.shape[-2],))[idx] if mask is not None else None
        if allowed is not None:
            s = np.where(allowed, s, -np.inf)
        w = np.exp(s - s.max())
        w /= w.sum()
        out[idx] = w @ v[lead]
    return out


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 2), H=st.integers(1, 3), Tq=st.integers(1, 5), Tk=st.integers(1, 5),
       d=st.integers(1, 4), causal=st.booleans(), seed=st.integers(0, 2**16))
def test_fused_matches_loop_oracle_and_ops(B, H, Tq, Tk, d, causal, seed):
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in ((B, H, Tq, d), (B, H, Tk, d), (B, H, Tk, d)))
    mask = np.tril(np.ones((Tq, Tk), dtype=bool)) if causal else None
    if causal and Tq > Tk:
        mask = None       # a causal mask only makes sense for Tq <= Tk here
    out = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), mask=mask)
    assert out.data.dtype == np.float32
    np.testing.assert_allclose(out.data, _loop_attention(q, k, v, mask), rtol=1e-4, atol=1e-5)
    ref, w = attention_from_ops(Tensor(q), Tensor(k), Tensor(v), mask=mask)
    np.testing.assert_allclose(out.data, ref.data, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w.data.sum(-1), 1.0, atol=1e-5)


def test_fused_backward_matches_ops_backward():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((2, 2, 5, 3)).astype(np.float32) for _ in range(3)]
    G = rng.standard_normal((2, 2, 5, 3)).astype(np.float32)
    grads = []
    for f in (lambda q, k, v: scaled_dot_product_attention(q, k, v, mask=causal_mask(5)),
              lambda q, k, v: attention_from_ops(q, k, v, mask=causal_mask(5))[0]):
        ts = [Tensor(a, requires_grad=True) for a in arrays]
        f(*ts).backward(G)
        grads.append([t.grad.data for t in ts])
    for a, b, name in zip(*grads, "qkv"):
        assert a.dtype == np.float32, f"d{name} is {a.dtype}"
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=f"d{name}")


def test_fully_masked_row_is_finite_and_uniform():
    q = k = v = Tensor(np.arange(6, dtype=np.float32).reshape(1, 3, 2))
    mask = np.array([[False, False, False], [True, True, False], [True, True, True]])
    out = scaled_dot_product_attention(q, k, v, mask=mask)
    assert np.isfinite(out.data).all()
    np.testing.assert_allclose(out.data[0, 0], v.data[0].mean(0), rtol=1e-6)


def test_fused_graph_keeps_less_than_ops_graph():
    """The fused Function saves q, k, v, P; the op-by-op version keeps several T x T arrays."""
    rng = np.random.default_rng(1)
    ts = [Tensor(rng.standard_normal((1, 2, 64, 8)).astype(np.float32), requires_grad=True) for _ in range(3)]
    fused = scaled_dot_product_attention(*ts, mask=causal_mask(64))
    saved = sum(a.nbytes for a in fused._ctx.saved if isinstance(a, np.ndarray))
    assert saved == 3 * ts[0].data.nbytes + 2 * 64 * 64 * 4, f"fused attention saved {saved} bytes"


def test_attention_memory_quadruples_with_doubled_length():
    fn = ScaledDotProductAttention()
    sizes = []
    for n in (32, 64, 128):
        x = np.zeros((1, 1, n, 4), dtype=np.float32)
        fn.forward(x, x, x)
        sizes.append(fn.saved[3].nbytes)
    assert sizes[1] == 4 * sizes[0] and sizes[2] == 4 * sizes[1], sizes


@pytest.mark.parametrize("shapes, msg", [
    (((2, 3), (2, 4), (2, 4)), "feature dims 3 and 4"),
    (((2, 3), (4, 3), (5, 3)), "key count 4 and 5"),
    (((2, 2, 3), (3, 2, 3), (3, 2, 3)), "leading dims"),
])
def test_shape_errors_name_expected_and_got(shapes, msg):
    q, k, v = (Tensor(np.ones(s, dtype=np.float32)) for s in shapes)
    with pytest.raises(ValueError, match=msg):
        scaled_dot_product_attention(q, k, v)


def test_bad_mask_shape_raises():
    x = Tensor(np.ones((1, 4, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="mask"):
        scaled_dot_product_attention(x, x, x, mask=np.ones((3, 3), dtype=bool))


def test_mha_errors_and_seed():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 4)
    with pytest.raises(ValueError, match=r"\(B, T, 8\)"):
        MultiHeadAttention(8, 2, seed=0)(Tensor(np.ones((2, 3, 6), dtype=np.float32)))
    a, b, c = MultiHeadAttention(8, 2, seed=1), MultiHeadAttention(8, 2, seed=1), MultiHeadAttention(8, 2, seed=2)
    assert all(np.array_equal(p.data, r.data) for p, r in zip(a.parameters(), b.parameters()))
    assert not np.array_equal(a.q_proj.weight.data, c.q_proj.weight.data)
    assert not np.array_equal(a.q_proj.weight.data, a.k_proj.weight.data), "projections share init"


def test_causal_mask_rejects_nonpositive():
    with pytest.raises(ValueError, match="T >= 1"):
        causal_mask(0)
