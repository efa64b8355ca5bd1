# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 12: Attention
#
# An embedding gives every token a vector, but each vector knows nothing about its neighbours.
# Attention is the operation that lets every position *look at* the other positions and pull in
# what it needs: "it" looks back at "the cat", a closing bracket looks back at its opening one.
# In this module you build scaled dot-product attention (first from Tensor operations, then as a
# fused autograd `Function` with a hand-written backward pass), the causal mask that stops a
# language model from reading the future, and multi-head attention. Then you measure the price:
# attention stores an N x N matrix per head, so doubling the sequence length quadruples its memory.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far                    you build now                     this unlocks
#   ------------                    -------------                     ------------
#   01 Tensor (matmul, reshape) -->  causal_mask                 -->  13 Transformers (GPT block)
#   02 Activations (softmax)    -->  attention from Tensor ops   -->  17 KV cache (memoization)
#   03 Layers (Module, Linear)  -->  ScaledDotProductAttention   -->  milestone 5: text generation
#   05 Autograd (Function)      -->    (fused forward + backward)
#   11 Embeddings (B, T, C)     -->  MultiHeadAttention
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp core.attention
#| export
#| namespace tinytorch.nn MultiHeadAttention MultiheadAttention=MultiHeadAttention Attention=MultiHeadAttention
#| namespace tinytorch.nn.functional scaled_dot_product_attention
import math

import numpy as np

from tinytorch.core.autograd import Function
from tinytorch.core.layers import Linear, Module
from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## 1. Queries, keys and values
#
# Every position produces three vectors from its embedding:
#
# ```
#   query q  "what am I looking for?"
#   key   k  "what do I contain?"
#   value v  "what do I hand over if you pick me?"
# ```
#
# Position i scores every position j with a dot product, turns the scores into weights with a
# softmax, and takes the weighted average of the values:
#
# ```
#   scores[i, j] = q_i . k_j / sqrt(d)          (T, T)
#   weights      = softmax(scores, over j)      (T, T), each row sums to 1
#   out[i]       = sum_j weights[i, j] * v_j    (T, d)
#
#   in matrix form:   out = softmax(Q K^T / sqrt(d)) V
#                     (T,d) (T,d)(d,T)               (T,d)
# ```
#
# Worked numbers, d = 2, one query and two keys:
#
# ```
#   q  = [1, 0]          k_0 = [1, 0]   v_0 = [10, 0]
#                        k_1 = [0, 1]   v_1 = [0, 10]
#   scores  = [1*1 + 0*0, 1*0 + 0*1] / sqrt(2) = [0.707, 0.000]
#   weights = [e^0.707, e^0] / (e^0.707 + e^0) = [2.028, 1.000] / 3.028 = [0.670, 0.330]
#   out     = 0.670 * [10, 0] + 0.330 * [0, 10] = [6.70, 3.30]
# ```
#
# Why divide by sqrt(d)? If q and k have d independent entries of variance 1, their dot product
# has variance d. With d = 64 the scores would spread over +-8 and more, the softmax would put
# almost all weight on one key and its gradient would vanish. Dividing by sqrt(d) = 8 brings
# the variance back to 1.

# %% [markdown]
# ## 2. The causal mask
#
# A language model predicts token t+1 from tokens 0..t. During training all T positions are
# computed at once, so position t must be *forbidden* from attending to positions after t.
# A boolean mask says which (query, key) pairs may interact (True = allowed, as in PyTorch):
#
# ```
#             key j ->   0  1  2  3
#   query i = 0        [ T  F  F  F ]      row i may see keys 0..i
#             1        [ T  T  F  F ]
#             2        [ T  T  T  F ]
#             3        [ T  T  T  T ]
# ```
#
# Forbidden scores are replaced by a huge negative number before the softmax, so that
# e^(score) = 0 and they get exactly zero weight. (We use -1e30 rather than -inf: a row whose
# keys are *all* masked then gives a uniform average instead of 0/0 = NaN.)

# %% nbgrader={"grade": false, "grade_id": "causal-mask", "locked": false, "schema_version": 3, "solution": true}
#| export
def causal_mask(T: int) -> np.ndarray:
    """Boolean (T, T) mask, True where query i may attend to key j (j <= i).

    EXAMPLE: causal_mask(3) ->
        [[ True, False, False],
         [ True,  True, False],
         [ True,  True,  True]]
    HINT: np.tril of a (T, T) array of ones, converted with .astype(bool)
    """
    if T < 1:
        raise ValueError(f"causal_mask needs T >= 1, got T={T}")
    ### BEGIN SOLUTION
    return np.tril(np.ones((T, T), dtype=bool))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-causal-mask", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_causal_mask():
    """causal_mask(T) is lower-triangular boolean."""
    m = causal_mask(4)
    assert m.shape == (4, 4), f"expected shape (4, 4), got {m.shape}"
    assert m.dtype == np.bool_, f"expected a bool mask, got {m.dtype}"
    assert m[2, 1] and m[2, 2] and not m[2, 3], f"row 2 should see keys 0..2 only, got {m[2]}"
    assert m.sum() == 10, f"a 4x4 causal mask has 10 allowed pairs, got {m.sum()}"
    ### BEGIN HIDDEN TESTS
    assert causal_mask(1).tolist() == [[True]]
    assert (causal_mask(5) == np.tril(np.ones((5, 5))).astype(bool)).all()
    ### END HIDDEN TESTS


test_unit_causal_mask()


# %% [markdown]
# ## 3. Attention from Tensor operations
#
# First build attention from the Tensor operations you already have. Autograd then gives the
# backward pass for free, which makes this version the *reference* for the fast one below.
#
# ```
#   q (B, H, T, d)   k (B, H, T, d)   v (B, H, T, d)
#        |                |
#        +--- q @ k^T ----+            k.transpose(-2, -1) is (B, H, d, T)
#               |
#        scores (B, H, T, T)  * 1/sqrt(d)
#               |
#        + additive mask (0 where allowed, -1e30 where forbidden)
#               |
#        softmax over the last axis: subtract the row max, exp, divide by the row sum
#               |
#        weights (B, H, T, T)  @ v  -->  out (B, H, T, d)
# ```
#
# The row max you subtract for stability is a *constant* (it changes nothing mathematically,
# softmax(x - c) = softmax(x)), so take it from the raw data: `Tensor(scores.data.max(...))`.

# %% nbgrader={"grade": false, "grade_id": "attention-naive", "locked": false, "schema_version": 3, "solution": true}
#| export
def attention_from_ops(q: Tensor, k: Tensor, v: Tensor, mask=None):
    """softmax(q @ k^T / sqrt(d) + mask) @ v built from Tensor operations.

    q: (..., Tq, d), k: (..., Tk, d), v: (..., Tk, dv); mask: bool array broadcastable to
    (..., Tq, Tk), True = allowed, or None.
    Returns (out, weights): out (..., Tq, dv), weights (..., Tq, Tk), both Tensors.

    HINT: scores = (q @ k.transpose(-2, -1)) * scale
          additive = np.where(mask, 0, -1e30).astype(np.float32); scores = scores + additive
          e = (scores - Tensor(scores.data.max(axis=-1, keepdims=True))).exp()
          weights = e / e.sum(axis=-1, keepdims=True)
    """
    d = q.shape[-1]
    scale = 1.0 / np.sqrt(d)
    ### BEGIN SOLUTION
    scores = (q @ k.transpose(-2, -1)) * np.asarray(scale, dtype=q.dtype)   # (..., Tq, Tk)
    if mask is not None:
        additive = np.where(np.asarray(mask, dtype=bool), 0.0, -1e30).astype(q.dtype)
        scores = scores + additive                                            # (..., Tq, Tk)
    shifted = scores - Tensor(scores.data.max(axis=-1, keepdims=True))
    e = shifted.exp()                                                         # (..., Tq, Tk)
    weights = e / e.sum(axis=-1, keepdims=True)                               # (..., Tq, Tk)
    out = weights @ v                                                         # (..., Tq, dv)
    return out, weights
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-attention-naive", "locked": true, "points": 3, "schema_version": 3, "solution": false}
from tinytorch.testing import assert_tensor


def test_unit_attention_from_ops():
    """The worked example, row sums, and the causal mask."""
    q = Tensor([[1.0, 0.0]])                       # (1, 2)
    k = Tensor([[1.0, 0.0], [0.0, 1.0]])           # (2, 2)
    v = Tensor([[10.0, 0.0], [0.0, 10.0]])         # (2, 2)
    out, w = attention_from_ops(q, k, v)
    assert_tensor(out, (1, 2), np.float32, name="the attention output")
    assert_tensor(w, (1, 2), np.float32, name="the attention weights")
    np.testing.assert_allclose(w.data, [[0.670, 0.330]], atol=1e-3,
                               err_msg="weights of the worked example")
    np.testing.assert_allclose(out.data, [[6.70, 3.30]], atol=1e-2,
                               err_msg="output of the worked example")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 4)).astype(np.float32)   # (B, H, T, d)
    out, w = attention_from_ops(Tensor(x), Tensor(x), Tensor(x), mask=causal_mask(5))
    assert_tensor(out, (2, 3, 5, 4), np.float32, name="batched attention output")
    assert_tensor(w, (2, 3, 5, 5), np.float32, name="batched attention weights")
    np.testing.assert_allclose(w.data.sum(-1), 1.0, atol=1e-5, err_msg="rows must sum to 1")
    assert np.all(w.data[..., 0, 1:] == 0), "position 0 must not see the future"
    # first position can only see itself: its output is its own value
    np.testing.assert_allclose(out.data[..., 0, :], x[..., 0, :], atol=1e-6)
    big = Tensor(np.full((1, 3, 2), 1e4, dtype=np.float32))
    o, w = attention_from_ops(big, big, big)
    assert np.isfinite(o.data).all() and np.isfinite(w.data).all(), "huge scores must stay finite"
    ### BEGIN HIDDEN TESTS
    np.testing.assert_allclose(w.data, np.full((1, 3, 3), 1 / 3), rtol=1e-5)
    ### END HIDDEN TESTS


test_unit_attention_from_ops()


# %% [markdown]
# ## 4. Fused attention: one Function, a hand-written backward
#
# The version above creates about eight graph nodes and keeps every intermediate (scores,
# shifted, e, sums, weights) alive for backward. A *fused* Function computes the whole thing in
# one `forward` on NumPy arrays and keeps only what backward needs: q, k, v and the weights P.
#
# Backward, with G = dL/dout (..., Tq, dv) and S the scaled scores:
#
# ```
#   out = P @ V                     dV = P^T @ G                      (..., Tk, dv)
#                                   dP = G @ V^T                      (..., Tq, Tk)
#   P = softmax(S) row by row       dS = P * (dP - rowsum(dP * P))    (..., Tq, Tk)
#   S = scale * Q @ K^T             dQ = scale * dS @ K               (..., Tq, d)
#                                   dK = scale * dS^T @ Q             (..., Tk, d)
# ```
#
# The softmax line is the Jacobian of softmax applied without building it: for one row,
# dS_j = sum_i dP_i * P_i * (delta_ij - P_j) = P_j * (dP_j - sum_i dP_i P_i).
# Masked positions have P = 0, so they get dS = 0 automatically.
#
# Work in the dtype of the inputs (float32 in training, float64 when gradcheck calls you).
#
# The score arrays are the largest of the layer ((B, H, T, T): 786 KB each for milestone 5's
# GPT), so the reference writes them without extra copies, and so can you:
#
# ```
#   mask      np.where(mask, s, -1e30)           a new (B, H, T, T) array
#             np.copyto(s, -1e30, where=~mask)   the same numbers, written into s
#   rowsum    (dP * P).sum(-1, keepdims=True)    a (B, H, T, T) product, then a sum
#             np.einsum("...ij,...ij->...i", dP, P)   the row dot products, no product array
#   dS        dP - rowsum                        a new array
#             ds = dp;  ds -= rowsum[..., None]  dP is not needed again: reuse its buffer
# ```
#
# Measured on milestone 5's shapes (q, k, v of (12, 4, 64, 32), one thread), the forward went
# from 0.93 to 0.79 ms and the backward from 0.75 to 0.66 ms; what remains is the four batched
# products and the row max of the softmax (about 0.22 ms of the forward by itself).
# benchmarks/gpt_speedups.py measures the effect on the whole training step.

# %% nbgrader={"grade": false, "grade_id": "sdpa-function", "locked": false, "schema_version": 3, "solution": true}
#| export
class ScaledDotProductAttention(Function):
    """Fused softmax(Q K^T / sqrt(d) + mask) V with a hand-written backward."""

    def forward(self, q, k, v, mask=None):
        """q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv) NumPy arrays -> (..., Tq, dv).

        Save what backward needs with self.save_for_backward(q, k, v, p) and keep the scale.
        HINT: scores = (q @ np.swapaxes(k, -1, -2)) * scale
              np.copyto(s, -1e30, where=~mask) for the mask (in place), then a stable softmax.
        """
        scale = q.dtype.type(1.0 / math.sqrt(q.shape[-1]))   # math: a Python float, no NumPy scalar
        ### BEGIN SOLUTION
        s = q @ k.swapaxes(-1, -2)                     # (..., Tq, Tk); the method: no Python wrapper
        s *= scale
        if mask is not None:
            np.copyto(s, s.dtype.type(-1e30), where=~mask)   # in place, no second score array
        s -= np.maximum.reduce(s, axis=-1, keepdims=True)   # the row max (s.max, without its Python wrapper)
        p = np.exp(s, out=s)                           # (..., Tq, Tk), reuse the buffer
        p /= np.add.reduce(p, axis=-1, keepdims=True)  # the row sums
        self.save_for_backward(q, k, v, p)
        self.scale = scale
        return p @ v                                   # (..., Tq, dv)
        ### END SOLUTION

    def backward(self, grad_out):
        """grad_out (..., Tq, dv) -> (dq, dk, dv), each the shape of its input."""
        ### BEGIN SOLUTION
        q, k, v, p = self.saved
        g = grad_out
        dv = np.swapaxes(p, -1, -2) @ g                # (..., Tk, dv)
        dp = g @ np.swapaxes(v, -1, -2)                # (..., Tq, Tk)
        ds = dp                                        # dS reuses dP's buffer
        ds -= np.einsum("...ij,...ij->...i", dp, p)[..., None]   # row sums of dP * P
        ds *= p
        ds *= self.scale                               # (..., Tq, Tk)
        dq = ds @ k                                    # (..., Tq, d)
        dk = np.swapaxes(ds, -1, -2) @ q               # (..., Tk, d)
        return dq, dk, dv
        ### END SOLUTION


# %% [markdown]
# The public function checks shapes and names what it expected, then calls the Function.

# %% nbgrader={"grade": false, "grade_id": "sdpa-wrapper", "locked": true, "schema_version": 3, "solution": false}
#| export
def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask=None) -> Tensor:
    """softmax(q @ k^T / sqrt(d) + mask) @ v, fused (one graph node).

    q: (..., Tq, d), k: (..., Tk, d), v: (..., Tk, dv), same leading dims.
    mask: bool array (True = allowed) broadcastable to (..., Tq, Tk), or None.
    Returns out (..., Tq, dv).
    """
    q, k, v = (x if isinstance(x, Tensor) else Tensor(x) for x in (q, k, v))
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(f"attention needs at least 2-D q, k, v; got {q.shape}, {k.shape}, {v.shape}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"Shape mismatch: q {q.shape} and k {k.shape}: feature dims "
                         f"{q.shape[-1]} and {k.shape[-1]} differ")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"Shape mismatch: k {k.shape} and v {v.shape}: key count "
                         f"{k.shape[-2]} and {v.shape[-2]} differ")
    if not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):
        raise ValueError(f"Shape mismatch: leading dims of q {q.shape}, k {k.shape}, v {v.shape} differ")
    if mask is not None:
        mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask, dtype=bool)
        target = q.shape[:-1] + (k.shape[-2],)
        try:
            np.broadcast_shapes(mask.shape, target)
        except ValueError:
            raise ValueError(f"mask of shape {mask.shape} does not broadcast to scores {target}") from None
    return ScaledDotProductAttention.apply(q, k, v, mask=mask)


# %% nbgrader={"grade": true, "grade_id": "test-sdpa-fused", "locked": true, "points": 4, "schema_version": 3, "solution": false}
from tinytorch.core.autograd import gradcheck


def test_unit_sdpa_fused():
    """Fused forward == Tensor-ops forward; fused backward == finite differences."""
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((2, 2, 4, 3)).astype(np.float32) for _ in range(3))
    m = causal_mask(4)
    ref, _ = attention_from_ops(Tensor(q), Tensor(k), Tensor(v), mask=m)
    out = assert_tensor(scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), mask=m), (2, 2, 4, 3),
                        np.float32, name="scaled_dot_product_attention")
    np.testing.assert_allclose(out.data, ref.data, rtol=1e-5, atol=1e-6)

    # backward against central differences, in float64
    q64, k64, v64 = (rng.standard_normal((1, 2, 3, 2)) for _ in range(3))
    m3 = causal_mask(3)
    # module 05's gradcheck: your backward against central differences
    gradcheck(lambda q, k, v: ScaledDotProductAttention.apply(q, k, v, mask=m3),
              *(Tensor(a, dtype=np.float64) for a in (q64, k64, v64)))
    # autograd wiring: gradients reach the leaves
    qt, kt, vt = (Tensor(a, requires_grad=True) for a in (q, k, v))
    scaled_dot_product_attention(qt, kt, vt, mask=m).sum().backward()
    assert qt.grad is not None and qt.grad.shape == q.shape, "q.grad missing or misshaped"
    ### BEGIN HIDDEN TESTS
    try:
        scaled_dot_product_attention(Tensor(np.ones((2, 3))), Tensor(np.ones((2, 4))), Tensor(np.ones((2, 4))))
    except ValueError as e:
        assert "3" in str(e) and "4" in str(e)
    else:
        raise AssertionError("mismatched feature dims must raise")
    ### END HIDDEN TESTS


test_unit_sdpa_fused()


# %% [markdown]
# ## 5. Multi-head attention
#
# One attention computes one weighted average per position: one "question" per token.
# Multi-head attention splits the C channels into H heads of D = C / H channels each, so every
# position can ask H different questions at once (one head tracks the previous token, another the
# subject of the sentence, ...), for the same cost as one head of size C.
#
# ```
#   x (B, T, C)
#     |-- q_proj --> (B, T, C) --reshape--> (B, T, H, D) --transpose(1, 2)--> q (B, H, T, D)
#     |-- k_proj --> ...                                                      k (B, H, T, D)
#     |-- v_proj --> ...                                                      v (B, H, T, D)
#   scaled_dot_product_attention(q, k, v, mask)                           --> (B, H, T, D)
#     --transpose(1, 2)--> (B, T, H, D) --reshape--> (B, T, C) --out_proj--> (B, T, C)
# ```
#
# Worked numbers for the milestone's model, C = 128, H = 4, D = 32: four projections of
# 128 x 128 weights + 128 biases = 4 * 16,512 = 66,048 parameters, whatever the number of heads.

# %% nbgrader={"grade": false, "grade_id": "mha", "locked": false, "schema_version": 3, "solution": true}
#| export
def child_seeds(seed, n: int) -> list:
    """n reproducible integer seeds derived from one seed, one per sub-layer (None stays None:
    then every sub-layer draws from the ``manual_seed`` generator). Module 13 uses it too."""
    if seed is None:
        return [None] * n
    return [int(s) for s in np.random.default_rng(seed).integers(0, 2**31 - 1, n)]


class MultiHeadAttention(Module):
    """Multi-head self-attention: MultiHeadAttention(embed_dim, num_heads, bias=True, seed=None).

    forward(x, mask=None): x (B, T, C) with C == embed_dim -> (B, T, C).
    """

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True, seed=None):
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        seeds = child_seeds(seed, 4)  # four seeds from one: the whole layer is reproducible
        self.q_proj = Linear(embed_dim, embed_dim, bias=bias, seed=seeds[0])
        self.k_proj = Linear(embed_dim, embed_dim, bias=bias, seed=seeds[1])
        self.v_proj = Linear(embed_dim, embed_dim, bias=bias, seed=seeds[2])
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, seed=seeds[3])

    def forward(self, x: Tensor, mask=None) -> Tensor:
        """HINT: project x (B, T, C) with each Linear, split heads with
        .reshape(B, T, H, D).transpose(1, 2); merge them back with
        .transpose(1, 2).reshape(B, T, C) before out_proj; attention is
        scaled_dot_product_attention."""
        if x.ndim != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(f"MultiHeadAttention expected input (B, T, {self.embed_dim}), got {x.shape}")
        B, T, C = x.shape
        H, D = self.num_heads, self.head_dim
        ### BEGIN SOLUTION
        q = self.q_proj(x).reshape(B, T, H, D).transpose(1, 2)   # (B, H, T, D)
        k = self.k_proj(x).reshape(B, T, H, D).transpose(1, 2)   # (B, H, T, D)
        v = self.v_proj(x).reshape(B, T, H, D).transpose(1, 2)   # (B, H, T, D)
        y = scaled_dot_product_attention(q, k, v, mask=mask)     # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, C)                   # (B, T, C)
        return self.out_proj(y)                                  # (B, T, C)
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-mha", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def test_unit_mha():
    """Shapes, parameter count, causality and a per-head reference."""
    mha = MultiHeadAttention(8, 2, seed=0)
    n = sum(p.size for p in mha.parameters())
    assert n == 4 * (8 * 8 + 8), f"expected {4 * (8 * 8 + 8)} parameters, got {n}"
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)     # (B, T, C)
    y = assert_tensor(mha(Tensor(x), mask=causal_mask(5)), (2, 5, 8), np.float32, name="MultiHeadAttention(8, 2)(x)")
    # causality: changing the last token must not change earlier outputs
    x2 = x.copy()
    x2[:, -1] += 5.0
    y2 = mha(Tensor(x2), mask=causal_mask(5))
    np.testing.assert_allclose(y.data[:, :-1], y2.data[:, :-1], atol=1e-5,
                               err_msg="outputs before the changed token moved: the mask leaks")
    # reference: loop over heads with plain NumPy
    W = {name: getattr(mha, name) for name in ("q_proj", "k_proj", "v_proj", "out_proj")}
    lin = lambda name, a: a @ W[name].weight.data + W[name].bias.data
    q, k, v = lin("q_proj", x), lin("k_proj", x), lin("v_proj", x)
    heads = []
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        s = q[..., sl] @ np.swapaxes(k[..., sl], -1, -2) / 2.0
        s = np.where(causal_mask(5), s, -np.inf)
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        heads.append(p @ v[..., sl])
    ref = lin("out_proj", np.concatenate(heads, axis=-1))
    np.testing.assert_allclose(y.data, ref, rtol=1e-4, atol=1e-5)
    ### BEGIN HIDDEN TESTS
    try:
        MultiHeadAttention(10, 3)
    except ValueError:
        pass
    else:
        raise AssertionError("embed_dim not divisible by num_heads must raise")
    a, b = MultiHeadAttention(8, 2, seed=5), MultiHeadAttention(8, 2, seed=5)
    assert np.array_equal(a.q_proj.weight.data, b.q_proj.weight.data), "same seed, same weights"
    ### END HIDDEN TESTS


test_unit_mha()

# %% [markdown]
# ## 6. Systems measurement: the O(N^2) memory of attention
#
# The weights P have shape (B, H, N, N): for one head and N = 1,024 tokens that is
# 1,024 * 1,024 * 4 bytes = 4 MiB, and the fused Function *keeps* P for backward. Below,
# `tracemalloc` (NumPy reports its allocations to it) measures the peak memory of your fused
# forward at doubling sequence lengths, and we read the bytes P actually occupies from the
# Function's saved arrays. Watch the ratio column: doubling N should roughly quadruple memory
# once the N x N term dominates the N x D terms.

# %%
import time
import tracemalloc


def measure_attention_memory(seq_lens, batch=1, heads=4, head_dim=32, seed=0):
    """Peak bytes of one fused attention forward and bytes of the saved weights, per N."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in seq_lens:
        q, k, v = (Tensor(rng.standard_normal((batch, heads, n, head_dim)).astype(np.float32),
                          requires_grad=True) for _ in range(3))
        mask = causal_mask(n)
        tracemalloc.start()
        t0 = time.perf_counter()
        out = scaled_dot_product_attention(q, k, v, mask=mask)
        dt = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        saved_p = out._ctx.saved[3].nbytes if out._ctx is not None else 0
        rows.append((n, peak, saved_p, dt))
        del out
    return rows


rows = measure_attention_memory([64, 128, 256, 512, 1024])
print(f"{'N':>6} {'peak forward MiB':>17} {'saved P MiB':>12} {'ratio':>6} {'forward ms':>11}")
prev = None
for n, peak, saved_p, dt in rows:
    ratio = f"{peak / prev:5.2f}x" if prev else "     -"
    print(f"{n:>6} {peak / 2**20:>17.2f} {saved_p / 2**20:>12.2f} {ratio:>6} {dt * 1e3:>11.2f}")
    prev = peak

# %% [markdown]
# The same model with the Tensor-operations version keeps several (B, H, N, N) arrays alive
# for backward (scores, shifted, exp, weights...). Measure how much more it holds, walking the
# graph with module 05's `topological_order` (`every_input=True`: the inputs that need no
# gradient, like the mask, are held all the same):

# %%
from tinytorch.core.autograd import topological_order


def graph_bytes(t):
    """Bytes of every tensor held by the autograd graph below t (results and all inputs)."""
    return sum(node.data.nbytes for node in topological_order(t, every_input=True))


rng = np.random.default_rng(0)
q, k, v = (Tensor(rng.standard_normal((1, 4, 512, 32)).astype(np.float32), requires_grad=True)
           for _ in range(3))
naive_out, _ = attention_from_ops(q, k, v, mask=causal_mask(512))
fused_out = scaled_dot_product_attention(q, k, v, mask=causal_mask(512))
print(f"N=512, 4 heads: tensors held by the graph, ops version   {graph_bytes(naive_out) / 2**20:6.1f} MiB")
print(f"N=512, 4 heads: tensors held by the graph, fused version "
      f"{(graph_bytes(fused_out) + fused_out._ctx.saved[3].nbytes) / 2**20:6.1f} MiB (incl. saved P)")


# %% nbgrader={"grade": true, "grade_id": "test-module", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_module():
    """Everything together: a causal MHA layer learns gradients end to end."""
    mha = MultiHeadAttention(16, 4, seed=3)
    x = Tensor(np.random.default_rng(4).standard_normal((3, 6, 16)).astype(np.float32), requires_grad=True)
    y = mha(x, mask=causal_mask(6))
    (y * y).sum().backward()
    for name, p in mha.named_parameters():
        assert p.grad is not None, f"parameter {name} got no gradient"
        assert p.grad.shape == p.shape, f"{name}: grad shape {p.grad.shape} != {p.shape}"
        assert p.grad.data.dtype == np.float32, f"{name}: grad dtype {p.grad.data.dtype}"
    assert x.grad is not None and np.isfinite(x.grad.data).all(), "input gradient missing or not finite"
    # the gradient of the first position's output does not depend on later inputs
    x1 = Tensor(x.data, requires_grad=True)
    mha(x1, mask=causal_mask(6))[:, 0].sum().backward()
    assert np.all(x1.grad.data[:, 1:] == 0), "output 0 must not depend on inputs 1..5"


test_module()

# %% [markdown]
# ## Reflect
#
# 1. Your measurement shows peak memory roughly quadrupling per doubling of N. For GPT-2's
#    context of 1,024 tokens, 12 heads, 12 layers and batch 8, how many bytes do the saved
#    attention weights alone take in float32? (8 * 12 * 12 * 1024^2 * 4 bytes = 4.8 GB.)
#    What does that say about training long contexts without a trick like FlashAttention,
#    which recomputes P in backward instead of storing it?
# 2. The fused Function keeps q, k, v and P; the Tensor-ops version keeps about four N x N
#    arrays per head. Using your graph_bytes numbers, what is the ratio, and where do the extra
#    bytes come from?
# 3. Multi-head attention with H heads of size C/H has the same parameter count as one head of
#    size C. Count the FLOPs of Q K^T for both: are they the same too? What *does* change?
# 4. Generation produces one token at a time. At step t the new query attends to t keys, but
#    the keys and values of the earlier t - 1 positions have not changed. What could you store
#    to avoid recomputing them (module 17), and how much memory would that cost per token?
