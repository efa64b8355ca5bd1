"""Module 11: Embedding, PositionalEncoding, SinusoidalPositionalEncoding
(tinytorch.text.embeddings).

Forward and backward are checked three independent ways: an explicit Python-loop oracle
(Hypothesis over shapes and repeated ids), central finite differences in float64 (gradcheck), and
PyTorch through the opcheck kit (live when installed, else the golden fixtures
tests/golden/embedding_*.npz and positional_*.npz from scripts/make_golden.py).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.autograd import gradcheck
from tinytorch.core.tensor import Tensor
from tinytorch.text.embeddings import (
    Embedding,
    EmbeddingLookup,
    PositionalEncoding,
    SinusoidalPositionalEncoding,
    sinusoidal_table,
)


def loop_forward_backward(W, ids, G, padding_idx=None):
    """The oracle: one row at a time, accumulate one gradient at a time."""
    flat = ids.reshape(-1)
    out = np.stack([W[i] for i in flat]).reshape(ids.shape + (W.shape[1],)) if flat.size else \
        np.zeros(ids.shape + (W.shape[1],), W.dtype)
    gW = np.zeros_like(W)
    for i, g in zip(flat, G.reshape(-1, W.shape[1])):
        if i != padding_idx:
            gW[i] += g
    return out, gW


# ------------------------------------------------------------------ Embedding vs the loop oracle
@st.composite
def embedding_case(draw):
    V = draw(st.integers(1, 12))
    d = draw(st.integers(1, 6))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=3)))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, size=shape)
    if ids.size > 1:
        ids.reshape(-1)[-1] = ids.reshape(-1)[0]       # at least one repeat
    G = rng.standard_normal(shape + (d,)).astype(np.float32)
    pad = draw(st.one_of(st.none(), st.integers(0, V - 1)))
    return V, d, ids, G, pad, seed


@settings(max_examples=80, deadline=None)
@given(embedding_case())
def test_embedding_matches_loop_oracle(case):
    V, d, ids, G, pad, seed = case
    emb = Embedding(V, d, seed=seed, padding_idx=pad)
    W = emb.weight.data.copy()
    out = emb(ids)
    ref_out, ref_gW = loop_forward_backward(W, ids, G, pad)
    assert out.shape == ids.shape + (d,) and out.dtype == np.float32
    np.testing.assert_array_equal(out.data, ref_out)
    if ids.size:
        out.backward(G)
        np.testing.assert_allclose(emb.weight.grad.data, ref_gW, rtol=1e-5, atol=1e-6)
        assert emb.weight.grad.dtype == np.float32


def test_repeated_index_gradient_is_summed_not_overwritten():
    emb = Embedding(4, 2, seed=0)
    ids = np.array([3] * 1000)
    out = emb(ids)
    out.backward(np.ones((1000, 2), dtype=np.float32))
    np.testing.assert_allclose(emb.weight.grad.data[3], [1000.0, 1000.0])
    np.testing.assert_allclose(emb.weight.grad.data[:3], 0.0)


def test_gradient_accumulates_across_backward_calls():
    emb = Embedding(5, 3, seed=1)
    for _ in range(2):
        emb(np.array([1, 1])).sum().backward()
    np.testing.assert_allclose(emb.weight.grad.data[1], 4.0)


# ------------------------------------------------------------------ finite differences (float64)
@pytest.mark.parametrize("ids", [np.array([[1, 4, 1], [1, 0, 5]]), np.array([2, 2, 2, 2]), np.array(3)])
def test_lookup_finite_differences(ids):
    rng = np.random.default_rng(7)
    W = Tensor(rng.standard_normal((6, 3)), requires_grad=True, dtype=np.float64)
    out = EmbeddingLookup.apply(W, ids)
    assert out.dtype == np.float64, "the lookup keeps the weight's dtype (gradcheck runs in float64)"

    def squared(w):
        y = EmbeddingLookup.apply(w, ids)
        return y * y

    assert gradcheck(squared, W, atol=1e-7, rtol=1e-6)


def test_tinytorch_gradcheck_accepts_the_lookup():
    W = Tensor(np.random.default_rng(0).standard_normal((5, 4)), requires_grad=True, dtype=np.float64)
    ids = np.array([[0, 3, 3], [4, 0, 3]])
    gradcheck(lambda w: (EmbeddingLookup.apply(w, ids) ** 2).sum(), W)


def test_positional_finite_differences():
    rng = np.random.default_rng(3)
    pe = PositionalEncoding(6, 3, seed=0)
    x = Tensor(rng.standard_normal((2, 4, 3)), requires_grad=True, dtype=np.float64)

    def squared(x, w):
        pe.weight = w                   # gradcheck passes its own float64 copies
        y = pe(x)
        return y * y

    assert gradcheck(squared, x, Tensor(pe.weight.data.astype(np.float64), dtype=np.float64), atol=1e-7, rtol=1e-6)
    np.testing.assert_allclose(pe.weight.grad.data[4:], 0.0)   # rows past the sequence get nothing


# the PyTorch comparison of the lookup and both encodings (embedding_opcases.py) is in tests/opcheck/test_ops.py
@pytest.mark.torch
def test_against_pytorch_live_float32():
    """float32, as the model runs: identical forward, gradients within float32 rounding."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    for V, d, shape, pad in [(9, 4, (3, 7), None), (20, 5, (2, 2, 6), 1), (2, 3, (50,), None)]:
        W = rng.standard_normal((V, d)).astype(np.float32)
        ids = rng.integers(0, V, size=shape)
        G = rng.standard_normal(shape + (d,)).astype(np.float32)
        tw = torch.tensor(W, requires_grad=True)
        tout = torch.nn.functional.embedding(torch.tensor(ids), tw, padding_idx=pad)
        tout.backward(torch.tensor(G))
        emb = Embedding(V, d, padding_idx=pad)
        emb.weight = Tensor(W.copy(), requires_grad=True)
        out = emb(ids)
        out.backward(G)
        np.testing.assert_array_equal(out.data, tout.detach().numpy())
        np.testing.assert_allclose(emb.weight.grad.data, tw.grad.numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ errors and API
def test_errors_name_expected_and_got():
    emb = Embedding(65, 4, seed=0)
    with pytest.raises(IndexError, match=r"expected 0 <= index < 65, got 70"):
        emb(np.array([1, 70]))
    with pytest.raises(IndexError, match=r"got -1"):
        emb(np.array([[-1, 2]]))
    with pytest.raises(TypeError, match="integers, got float32"):
        emb(Tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"got \(0, 4\)"):
        Embedding(0, 4)
    with pytest.raises(ValueError, match="padding_idx"):
        Embedding(5, 4, padding_idx=5)
    pe = PositionalEncoding(8, 4)
    with pytest.raises(ValueError, match="sequence length 9 exceeds max_len 8"):
        pe(Tensor(np.zeros((1, 9, 4), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"expects \(\.\.\., T, 4\), got \(2, 3, 5\)"):
        pe(Tensor(np.zeros((2, 3, 5), dtype=np.float32)))
    with pytest.raises(ValueError, match="exceeds max_len"):
        SinusoidalPositionalEncoding(8, 4)(Tensor(np.zeros((20, 4), dtype=np.float32)))


def test_embedding_module_contract():
    emb = Embedding(10, 4, seed=3)
    assert [n for n, _ in emb.named_parameters()] == ["weight"]
    assert emb.num_parameters() == 40 and emb.memory_footprint() == 160
    np.testing.assert_array_equal(Embedding(10, 4, seed=3).weight.data, emb.weight.data)
    assert not np.array_equal(Embedding(10, 4, seed=4).weight.data, emb.weight.data)
    w = emb.weight.data
    assert abs(float(w.mean())) < 0.5 and 0.5 < float(Embedding(1000, 16, seed=0).weight.data.std()) < 1.5, \
        "N(0, 1) initialisation like torch.nn.Embedding"
    other = Embedding(10, 4, seed=9)
    other.load_state_dict(emb.state_dict())
    np.testing.assert_array_equal(other(np.arange(10)).data, emb(np.arange(10)).data)
    assert emb(np.zeros((2, 0), dtype=np.int64)).shape == (2, 0, 4)
    assert emb([]).shape == (0, 4)
    assert "10, 4" in repr(emb)


def test_positional_shapes_and_batch_broadcast():
    pe = PositionalEncoding(10, 4, seed=0)
    x2 = Tensor(np.zeros((7, 4), dtype=np.float32))            # (T, d) without batch
    np.testing.assert_allclose(pe(x2).data, pe.weight.data[:7])
    x4 = Tensor(np.zeros((2, 3, 5, 4), dtype=np.float32))      # (B, H, T, d)
    y = pe(x4)
    assert y.shape == (2, 3, 5, 4) and y.dtype == np.float32
    np.testing.assert_allclose(y.data[1, 2], pe.weight.data[:5])
    assert len(pe.parameters()) == 1
    assert float(np.std(PositionalEncoding(512, 64, seed=0).weight.data)) == pytest.approx(0.02, rel=0.05)


# ------------------------------------------------------------------ sinusoidal
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(1, 17))
def test_sinusoidal_matches_formula(max_len, dim):
    t = sinusoidal_table(max_len, dim)
    assert t.shape == (max_len, dim) and t.dtype == np.float32
    for pos in range(0, max_len, max(1, max_len // 5)):
        for j in range(dim):
            i = j // 2
            angle = pos / 10000 ** (2 * i / dim)
            expected = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert abs(t[pos, j] - expected) < 1e-6, f"PE[{pos}, {j}] = {t[pos, j]}, expected {expected}"


def test_sinusoidal_offset_is_a_rotation():
    """PE[p + k] is a fixed linear map (a rotation per frequency pair) of PE[p]."""
    d, k = 16, 5
    t = sinusoidal_table(100, d).astype(np.float64)
    w = 10000.0 ** (-2 * np.arange(d // 2) / d)
    for p in (0, 17, 60):
        for i in range(d // 2):
            s, c = t[p, 2 * i], t[p, 2 * i + 1]
            rot = np.array([s * math.cos(k * w[i]) + c * math.sin(k * w[i]),
                            c * math.cos(k * w[i]) - s * math.sin(k * w[i])])
            np.testing.assert_allclose(t[p + k, 2 * i:2 * i + 2], rot, atol=1e-6)


def test_sinusoidal_layer_is_a_buffer():
    layer = SinusoidalPositionalEncoding(32, 6)
    assert layer.parameters() == [] and list(layer.state_dict()) == ["pe"]
    x = Tensor(np.ones((2, 10, 6), dtype=np.float32), requires_grad=True)
    y = layer(x)
    np.testing.assert_allclose(y.data[0], 1.0 + sinusoidal_table(32, 6)[:10], rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 1.0)
    assert layer.pe.grad is None
