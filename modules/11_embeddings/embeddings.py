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
# # Module 11: Embeddings
#
# Module 10 turned text into integer ids. A network cannot do arithmetic on an id (token
# 812 is not "bigger" than token 17), so every id selects a row of a learned table: its
# embedding, a vector of `d` floats that training moves around until similar tokens sit
# close together. That table is often the largest single tensor of a language model
# (GPT-2 small: 50,257 x 768 = 38.6 M of its 124 M parameters). In this module you build
# `Embedding` as an autograd `Function` whose backward is correct when the same token
# appears many times in a batch (it always does: think of "the"), and the two ways to tell
# a model *where* a token is: learned positional embeddings (GPT-2) and the fixed
# sinusoidal encoding of "Attention Is All You Need". Then you measure what the tables and
# their gradients cost.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far                  you build now                     this unlocks
#   ------------                  -------------                     ------------
#   01 Tensor                     11 Embeddings                     12 Attention: compares
#   03 Module (parameters)  --->  Embedding: ids -> vectors   --->     the vectors of tokens
#   05 Function (autograd)        gradient with np.add.at           13 GPT: token + position
#   10 Tokenizer: text -> ids     PositionalEncoding (learned)         embeddings at the input
#                                 SinusoidalPositionalEncoding      milestone 5: language models
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp text.embeddings
#| export
#| namespace tinytorch.nn Embedding
import math

import numpy as np

from tinytorch.core.autograd import Function
from tinytorch.core.layers import Module
from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## 1. A lookup table that learns
#
# An embedding table `W` has one row per token id. The forward pass is plain indexing:
#
# ```
#   W  (V=5, d=3)                  ids = [[2, 0, 2]]          out = W[ids]  (B=1, T=3, d=3)
#   row 0  [ 0.1  0.2  0.3]        the batch: one sequence    [[[ 0.7  0.8  0.9]    <- row 2
#   row 1  [ 0.4  0.5  0.6]        of three tokens              [ 0.1  0.2  0.3]    <- row 0
#   row 2  [ 0.7  0.8  0.9]                                     [ 0.7  0.8  0.9]]]  <- row 2
#   row 3  [ 1.0  1.1  1.2]
#   row 4  [ 1.3  1.4  1.5]        ids (B, T) of ints  ->  out (B, T, d) of floats
# ```
#
# This is the same as multiplying a one-hot matrix by `W` (`onehot(ids) @ W`), without ever
# building the one-hot matrix: for a batch of 768 tokens and GPT-2's 50,257-token
# vocabulary that matrix alone would be 768 x 50,257 x 4 bytes = 154 MB, to select 768 rows.
#
# ### The backward pass: gradients *scatter back* and must *add up*
#
# Each output row is a copy of one row of `W`, so the gradient of that output row flows
# back to that one row. When an id appears twice, its row receives **both** gradients:
#
# ```
#   ids      = [2, 0, 2]
#   grad_out = [[1, 1, 1],      ->  grad_W row 2 = [1, 1, 1] + [5, 5, 5] = [6, 6, 6]
#               [3, 3, 3],      ->  grad_W row 0 = [3, 3, 3]
#               [5, 5, 5]]          grad_W rows 1, 3, 4 = 0
# ```
#
# The obvious NumPy line gets this wrong. `grad_W[ids] += grad_out` is *buffered*: NumPy
# reads `grad_W[ids]`, adds, and writes each row back, so for a repeated id the last write
# wins and the other gradients are silently lost. `np.add.at(grad_W, ids, grad_out)` is
# *unbuffered*: every occurrence is added. The cell below shows the difference with numbers.

# %%
ids = np.array([2, 0, 2])
grad_out = np.array([[1, 1, 1], [3, 3, 3], [5, 5, 5]], dtype=np.float32)    # (T, d)
wrong = np.zeros((5, 3), dtype=np.float32)
wrong[ids] += grad_out                                                        # buffered: loses one write
right = np.zeros((5, 3), dtype=np.float32)
np.add.at(right, ids, grad_out)                                               # unbuffered: adds every one
print("grad_W[ids] += grad_out   row 2 =", wrong[2], " total", wrong.sum())
print("np.add.at(...)            row 2 =", right[2], " total", right.sum(), "(= grad_out.sum() =", grad_out.sum(), ")")

# %% [markdown]
# ## 2. The lookup as an autograd `Function`
#
# Module 05's contract: `forward` receives raw NumPy arrays and returns one; `backward`
# receives the gradient of the output and returns one gradient per input (None for inputs
# that cannot have one, like integer ids). Save what backward needs with
# `self.save_for_backward(...)`; it is then in `self.saved`.
#
# ```
#   forward(weight (V, d), indices (...) int)  ->  weight[indices]     (..., d)
#   backward(grad_out (..., d))                ->  (grad_weight (V, d), None)
#                                                  zeros, then np.add.at over indices
# ```
#
# `padding_idx` (as in PyTorch): the row of the `<pad>` token gets no gradient, so padding
# never learns anything.

# %% nbgrader={"grade": false, "grade_id": "embedding-function", "locked": false, "schema_version": 3, "solution": true}
#| export
class EmbeddingLookup(Function):
    """``weight[indices]`` with a gradient that adds up over repeated indices."""

    def forward(self, weight, indices, padding_idx=None):
        """weight (V, d) float, indices (...) int  ->  (..., d), the dtype of weight.

        HINT: save indices, the weight's shape and padding_idx; NumPy fancy indexing does
        the lookup.
        """
        ### BEGIN SOLUTION
        self.save_for_backward(indices, weight.shape, padding_idx)
        return weight[indices]                       # (..., d)
        ### END SOLUTION

    def backward(self, grad_out):
        """grad_out (..., d)  ->  (grad_weight (V, d), None).

        HINT: np.zeros(shape, dtype=grad_out.dtype); np.add.at(grad_w, indices, grad_out);
        zero the padding row when padding_idx is not None.
        """
        ### BEGIN SOLUTION
        indices, shape, padding_idx = self.saved
        grad_w = np.zeros(shape, dtype=grad_out.dtype)   # (V, d)
        np.add.at(grad_w, indices, grad_out)             # repeated ids accumulate
        if padding_idx is not None:
            grad_w[padding_idx] = 0
        return grad_w, None
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-embedding-function", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_embedding_lookup():
    """EmbeddingLookup: forward rows, backward adds repeated ids, padding row gets nothing."""
    W = np.arange(15, dtype=np.float32).reshape(5, 3) / 10 + 0.1       # the table of section 1
    ids = np.array([[2, 0, 2]])                                        # (B=1, T=3)
    fn = EmbeddingLookup()
    out = fn.forward(W, ids)
    assert out.shape == (1, 3, 3) and out.dtype == np.float32, f"got {out.shape} {out.dtype}"
    np.testing.assert_allclose(out[0], W[[2, 0, 2]])
    g = np.array([[[1, 1, 1], [3, 3, 3], [5, 5, 5]]], dtype=np.float32)  # (1, 3, 3)
    grad_w, grad_ids = fn.backward(g)
    assert grad_ids is None, "integer ids have no gradient: return None for them"
    assert grad_w.shape == (5, 3), f"grad of weight must be (V, d) = (5, 3), got {grad_w.shape}"
    np.testing.assert_allclose(grad_w[2], [6, 6, 6], err_msg="repeated id 2 must receive 1 + 5")
    np.testing.assert_allclose(grad_w[0], [3, 3, 3])
    assert grad_w.sum() == g.sum(), f"no gradient may be lost: {grad_w.sum()} != {g.sum()}"
    fn = EmbeddingLookup()
    fn.forward(W, np.array([0, 1, 0]), padding_idx=0)
    grad_w, _ = fn.backward(np.ones((3, 3), dtype=np.float32))
    np.testing.assert_allclose(grad_w[0], 0, err_msg="padding_idx row must get zero gradient")
    np.testing.assert_allclose(grad_w[1], 1)
    ### BEGIN HIDDEN TESTS
    fn = EmbeddingLookup()
    many = np.array([4] * 100)
    fn.forward(W, many)
    grad_w, _ = fn.backward(np.ones((100, 3), dtype=np.float32))
    np.testing.assert_allclose(grad_w[4], 100)
    ### END HIDDEN TESTS
    print("EmbeddingLookup: ok")


test_unit_embedding_lookup()

# %% [markdown]
# ## 3. The `Embedding` layer
#
# A `Module` holding the table as a parameter, like `torch.nn.Embedding`:
#
# ```
#   Embedding(num_embeddings=V, embedding_dim=d, seed=0, padding_idx=None)
#     .weight   Tensor (V, d) float32, requires_grad=True, initialised N(0, 1) (PyTorch's
#               choice), the padding row set to zeros
#   forward(ids)   ids: Tensor / NumPy array / list of ints, any shape (...)
#                  -> Tensor (..., d), built by EmbeddingLookup.apply so gradients flow
# ```
#
# The checks come first, because a wrong id is the most common bug in language-model code,
# and NumPy would hide it: a negative id silently wraps around to the end of the table, a
# float id raises a deep NumPy error. Say instead what was expected and what was got:
#
# ```
#   TypeError:  Embedding indices must be integers, got float32
#   IndexError: Embedding index out of range: expected 0 <= index < 65, got 70
# ```

# %% nbgrader={"grade": false, "grade_id": "embedding-layer", "locked": false, "schema_version": 3, "solution": true}
#| export
class Embedding(Module):
    """A learned table of ``num_embeddings`` vectors of size ``embedding_dim``."""

    def __init__(self, num_embeddings: int, embedding_dim: int, seed=None, padding_idx=None):
        super().__init__()
        if num_embeddings <= 0 or embedding_dim <= 0:
            raise ValueError(f"Embedding needs num_embeddings > 0 and embedding_dim > 0, "
                             f"got ({num_embeddings}, {embedding_dim})")
        if padding_idx is not None and not 0 <= padding_idx < num_embeddings:
            raise ValueError(f"padding_idx must be in [0, {num_embeddings}), got {padding_idx}")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.padding_idx = padding_idx
        rng = np.random.default_rng(seed)
        w = rng.standard_normal((self.num_embeddings, self.embedding_dim)).astype(np.float32)  # (V, d)
        if padding_idx is not None:
            w[padding_idx] = 0.0
        self.weight = Tensor(w, requires_grad=True)

    def forward(self, indices) -> Tensor:
        """ids (...) -> vectors (..., d).

        HINT: idx = np.asarray(getattr(indices, "data", indices)); check
        np.issubdtype(idx.dtype, np.integer) (TypeError) and 0 <= idx.min(), idx.max() < V
        (IndexError, only when idx.size > 0); then
        EmbeddingLookup.apply(self.weight, idx, padding_idx=self.padding_idx).
        """
        ### BEGIN SOLUTION
        idx = np.asarray(getattr(indices, "data", indices))
        if idx.size == 0 and idx.dtype == np.float64:       # np.asarray([]) is float64
            idx = idx.astype(np.int64)
        if not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"Embedding indices must be integers, got {idx.dtype}")
        if idx.size:
            lo, hi = int(idx.min()), int(idx.max())
            if lo < 0 or hi >= self.num_embeddings:
                bad = lo if lo < 0 else hi
                raise IndexError(f"Embedding index out of range: expected 0 <= index < "
                                 f"{self.num_embeddings}, got {bad}")
        return EmbeddingLookup.apply(self.weight, idx, padding_idx=self.padding_idx)  # (..., d)
        ### END SOLUTION

    def memory_footprint(self) -> int:
        """Bytes of the table (V x d x 4 for float32)."""
        return self.weight.data.nbytes

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"

# %% nbgrader={"grade": true, "grade_id": "test-embedding-layer", "locked": true, "points": 2, "schema_version": 3, "solution": false}
from tinytorch.testing import assert_tensor


def test_unit_embedding():
    """Embedding: shapes, dtype, parameters, clear errors, gradient through autograd."""
    emb = Embedding(10, 4, seed=0)
    assert emb.weight.shape == (10, 4) and emb.weight.dtype == np.float32
    assert emb.weight.requires_grad and len(list(emb.parameters())) == 1
    np.testing.assert_array_equal(Embedding(10, 4, seed=0).weight.data, emb.weight.data,
                                  err_msg="same seed, same table")
    ids = np.array([[1, 2, 1], [9, 1, 0]])                  # (B=2, T=3)
    out = assert_tensor(emb(ids), (2, 3, 4), np.float32, name="Embedding(10, 4)(ids)")
    np.testing.assert_allclose(out.data[1, 0], emb.weight.data[9])
    assert emb(Tensor(ids)).shape == (2, 3, 4), "ids may come as an integer Tensor"
    assert emb([3, 4]).shape == (2, 4), "ids may come as a list"
    assert emb(np.int64(7)).shape == (4,), "a single id gives one vector"
    for bad, err in [(np.array([1.0, 2.0]), TypeError), (np.array([10]), IndexError), (np.array([-1]), IndexError)]:
        try:
            emb(bad)
        except err as e:
            assert "expected" in str(e) or "integers" in str(e), f"unclear message: {e}"
        else:
            raise AssertionError(f"Embedding({bad}) must raise {err.__name__}")
    # gradient: id 1 appears 3 times, so its row gets 3 x the upstream gradient
    emb.weight.grad = None
    (emb(ids) * 2.0).sum().backward()
    g = emb.weight.grad.data
    np.testing.assert_allclose(g[1], 6.0, err_msg="row 1 is used 3 times: 3 * 2.0 each")
    np.testing.assert_allclose(g[[0, 2, 9]], 2.0)
    np.testing.assert_allclose(g[[3, 4, 5, 6, 7, 8]], 0.0)
    pad = Embedding(5, 2, seed=0, padding_idx=0)
    np.testing.assert_allclose(pad.weight.data[0], 0.0)
    pad(np.array([0, 0, 1])).sum().backward()
    np.testing.assert_allclose(pad.weight.grad.data[0], 0.0, err_msg="padding row must not learn")
    print("Embedding: ok")


test_unit_embedding()

# %% [markdown]
# ## 4. Where is each token? Positional information
#
# Attention (module 12) compares every token with every other token and sums the results:
# it treats the sequence as a *set*. `"dog bites man"` and `"man bites dog"` would look the
# same. The fix: add to each token's vector a vector that depends on its **position**.
#
# ```
#   token vectors   (B, T, d)      x[b, t]   = Embedding(ids)[b, t]
#   + position      (   T, d)      pos[t]    the same for every sequence in the batch
#   = input         (B, T, d)      broadcasting adds pos to every b
# ```
#
# **Learned** (GPT-2): a second `Embedding`-like table with `max_len` rows, looked up with
# ids `0, 1, ..., T-1`. It can learn anything, but it knows nothing about positions beyond
# `max_len`: a model trained with context 64 has no row for position 64. We initialise it
# small, `N(0, 0.02^2)` like GPT-2, so positions start as a mild perturbation of the tokens.
#
# The lookup of rows `0..T-1` is the same `EmbeddingLookup` you wrote, so the gradient
# reaches exactly the rows used, and nothing new is needed in autograd.

# %% nbgrader={"grade": false, "grade_id": "learned-positional", "locked": false, "schema_version": 3, "solution": true}
#| export
class PositionalEncoding(Module):
    """Learned positional embeddings: ``x + weight[:T]`` for x of shape (..., T, dim)."""

    def __init__(self, max_len: int, dim: int, seed=None, std: float = 0.02):
        super().__init__()
        if max_len <= 0 or dim <= 0:
            raise ValueError(f"PositionalEncoding needs max_len > 0 and dim > 0, got ({max_len}, {dim})")
        self.max_len, self.dim = int(max_len), int(dim)
        rng = np.random.default_rng(seed)
        self.weight = Tensor((std * rng.standard_normal((self.max_len, self.dim))).astype(np.float32),
                             requires_grad=True)          # (max_len, dim)

    def forward(self, x: Tensor) -> Tensor:
        """x (..., T, dim) -> x + position vectors of 0..T-1, same shape.

        Errors: x.shape[-1] != dim (ValueError naming both); T > max_len (ValueError).
        HINT: pos = EmbeddingLookup.apply(self.weight, np.arange(T)); return x + pos.
        """
        ### BEGIN SOLUTION
        if x.ndim < 2 or x.shape[-1] != self.dim:
            raise ValueError(f"PositionalEncoding expects (..., T, {self.dim}), got {tuple(x.shape)}")
        T = x.shape[-2]
        if T > self.max_len:
            raise ValueError(f"sequence length {T} exceeds max_len {self.max_len}")
        pos = EmbeddingLookup.apply(self.weight, np.arange(T))    # (T, dim)
        return x + pos                                            # (..., T, dim)
        ### END SOLUTION

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, dim={self.dim}"

# %% nbgrader={"grade": true, "grade_id": "test-learned-positional", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_positional_encoding():
    """PositionalEncoding: adds row t at position t, gradients reach rows 0..T-1 only."""
    pe = PositionalEncoding(max_len=8, dim=4, seed=0)
    assert pe.weight.shape == (8, 4) and pe.weight.requires_grad
    assert np.abs(pe.weight.data).max() < 0.2, "initialise small (std 0.02)"
    x = Tensor(np.ones((2, 5, 4), dtype=np.float32), requires_grad=True)   # (B=2, T=5, d=4)
    y = assert_tensor(pe(x), (2, 5, 4), np.float32, name="PositionalEncoding(8, 4)(x)")
    np.testing.assert_allclose(y.data[1], 1.0 + pe.weight.data[:5], rtol=1e-6)
    y.sum().backward()
    g = pe.weight.grad.data
    np.testing.assert_allclose(g[:5], 2.0, err_msg="each used position gets one gradient per sequence (B=2)")
    np.testing.assert_allclose(g[5:], 0.0, err_msg="positions beyond T get no gradient")
    np.testing.assert_allclose(x.grad.data, 1.0)
    for bad in (np.zeros((1, 9, 4), dtype=np.float32), np.zeros((1, 3, 5), dtype=np.float32)):
        try:
            pe(Tensor(bad))
        except ValueError as e:
            assert "max_len" in str(e) or "expects" in str(e), f"unclear message: {e}"
        else:
            raise AssertionError(f"input of shape {bad.shape} must raise ValueError")
    print("PositionalEncoding: ok")


test_unit_positional_encoding()

# %% [markdown]
# ## 5. Sinusoidal positional encoding: no parameters, any length
#
# Vaswani et al. (2017) use a fixed table. Column pair `(2i, 2i+1)` is a sine and a cosine
# of the position at frequency `w_i = 1 / 10000^(2i/d)`:
#
# ```
#   PE[pos, 2i]   = sin(pos * w_i)          w_0 = 1 (period 2*pi ~ 6.3 positions)
#   PE[pos, 2i+1] = cos(pos * w_i)          w_last ~ 1/10000 (period ~ 62,832 positions)
#
#   d = 4: w = [1, 0.01]
#   pos 0:  [sin 0,    cos 0,    sin 0,     cos 0   ] = [ 0.000,  1.000,  0.000,  1.000]
#   pos 1:  [sin 1,    cos 1,    sin 0.01,  cos 0.01] = [ 0.841,  0.540,  0.010,  1.000]
#   pos 2:  [sin 2,    cos 2,    sin 0.02,  cos 0.02] = [ 0.909, -0.416,  0.020,  1.000]
# ```
#
# Like the hands of a clock (seconds, minutes, hours ...), fast columns distinguish
# neighbours, slow columns distinguish distant positions, and every value stays in
# `[-1, 1]`. Because `sin(a + k)` is a fixed rotation of `(sin a, cos a)`, the offset between
# two positions is a linear function of their encodings, which attention can learn to read.
# The table costs no parameters and can be computed for any length.
#
# Compute it in float64 (positions times tiny frequencies) and return float32. For an odd
# `d`, compute `ceil(d / 2)` frequencies and drop the last cosine column.

# %% nbgrader={"grade": false, "grade_id": "sinusoidal-table", "locked": false, "schema_version": 3, "solution": true}
#| export
def sinusoidal_table(max_len: int, dim: int, base: float = 10000.0) -> np.ndarray:
    """The (max_len, dim) float32 sinusoidal encoding: sin in even columns, cos in odd ones.

    HINT: pos = np.arange(max_len)[:, None]; i = np.arange(ceil(dim / 2));
    freq = base ** (-2 * i / dim); angles = pos * freq  # (max_len, ceil(dim/2))
    """
    if max_len <= 0 or dim <= 0:
        raise ValueError(f"sinusoidal_table needs max_len > 0 and dim > 0, got ({max_len}, {dim})")
    ### BEGIN SOLUTION
    half = math.ceil(dim / 2)
    pos = np.arange(max_len, dtype=np.float64)[:, None]           # (max_len, 1)
    freq = base ** (-2.0 * np.arange(half, dtype=np.float64) / dim)  # (half,)
    angles = pos * freq                                            # (max_len, half)
    table = np.empty((max_len, 2 * half), dtype=np.float64)
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles)
    return table[:, :dim].astype(np.float32)                       # (max_len, dim)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-sinusoidal-table", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_sinusoidal_table():
    """sinusoidal_table: the worked numbers, dtype, range, odd dims."""
    t = sinusoidal_table(3, 4)
    assert t.shape == (3, 4) and t.dtype == np.float32, f"got {t.shape} {t.dtype}"
    expected = [[0, 1, 0, 1],
                [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)],
                [math.sin(2), math.cos(2), math.sin(0.02), math.cos(0.02)]]
    np.testing.assert_allclose(t, expected, atol=1e-6)
    big = sinusoidal_table(1000, 64)
    assert np.abs(big).max() <= 1.0
    assert len({row.tobytes() for row in big}) == 1000, "every position must get a distinct vector"
    odd = sinusoidal_table(5, 5)
    assert odd.shape == (5, 5)
    np.testing.assert_allclose(odd[:, 0], np.sin(np.arange(5)), atol=1e-6)
    np.testing.assert_allclose(odd[:, 3], np.cos(np.arange(5) * 10000.0 ** (-2 / 5)), atol=1e-6)
    np.testing.assert_allclose(odd[:, 4], np.sin(np.arange(5) * 10000.0 ** (-4 / 5)), atol=1e-6)
    print("sinusoidal_table: ok")


test_unit_sinusoidal_table()

# %% [markdown]
# The layer (provided) keeps the table as a **buffer**: saved in `state_dict()` and moved
# with the model, but not a parameter, so the optimizer never touches it and it costs no
# gradient memory.

# %% nbgrader={"grade": false, "grade_id": "sinusoidal-layer", "locked": true, "schema_version": 3, "solution": false}
#| export
class SinusoidalPositionalEncoding(Module):
    """Fixed sinusoidal positions: ``x + table[:T]`` for x of shape (..., T, dim)."""

    def __init__(self, max_len: int, dim: int, base: float = 10000.0):
        super().__init__()
        self.max_len, self.dim = int(max_len), int(dim)
        self.register_buffer("pe", Tensor(sinusoidal_table(self.max_len, self.dim, base)))  # (max_len, dim)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[-1] != self.dim:
            raise ValueError(f"SinusoidalPositionalEncoding expects (..., T, {self.dim}), got {tuple(x.shape)}")
        T = x.shape[-2]
        if T > self.max_len:
            raise ValueError(f"sequence length {T} exceeds max_len {self.max_len}")
        return x + self.pe.data[:T]                                  # (..., T, dim)

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, dim={self.dim}"

# %% nbgrader={"grade": true, "grade_id": "test-module", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_module():
    """Text -> ids -> token + position embeddings -> loss -> gradients, end to end."""
    from tinytorch.core.autograd import gradcheck
    from tinytorch.text.tokenization import CharTokenizer
    tok = CharTokenizer(byte_fallback=False).train("to be or not to be")
    ids = np.array([tok.encode("to be"), tok.encode("or no")])          # (B=2, T=5)
    d = 8
    tok_emb = Embedding(tok.vocab_size, d, seed=1)
    for pos_enc in (PositionalEncoding(16, d, seed=2), SinusoidalPositionalEncoding(16, d)):
        tok_emb.weight.grad = None
        x = pos_enc(tok_emb(ids))                                        # (B, T, d)
        assert x.shape == (2, 5, d) and x.dtype == np.float32
        (x * x).sum().backward()
        g = tok_emb.weight.grad.data
        used = np.unique(ids)
        assert np.all(np.abs(g[used]).sum(axis=1) > 0), "every used token row gets a gradient"
        unused = np.setdiff1d(np.arange(tok.vocab_size), used)
        np.testing.assert_allclose(g[unused], 0.0, err_msg="unused rows get no gradient")
    assert len(list(SinusoidalPositionalEncoding(16, d).parameters())) == 0, "sinusoidal has no parameters"
    assert "pe" in SinusoidalPositionalEncoding(16, d).state_dict(), "the table is a buffer in state_dict"
    # analytic vs numerical gradient of the lookup, repeated ids included, in float64
    W = Tensor(np.random.default_rng(0).standard_normal((6, 3)), requires_grad=True, dtype=np.float64)
    rep = np.array([[1, 4, 1], [1, 0, 5]])
    gradcheck(lambda w: (EmbeddingLookup.apply(w, rep) ** 2).sum(), W)
    print("test_module: ok")


test_module()

# %% [markdown]
# ## 6. Systems measurement: what the tables cost
#
# An embedding table is `V x d` float32 values. Below, real `Embedding` layers are built
# for the vocabularies of module 10 (your tokenizers, trained here on a corpus slice) and for
# larger vocabularies, and their memory is measured with `memory_footprint()`.

# %%
import time

from tinytorch.text.tokenization import BPETokenizer, CharTokenizer, load_text_corpus

text, source = load_text_corpus(max_chars=100_000)
vocabs = [("char tokenizer (no fallback)", CharTokenizer(byte_fallback=False).train(text).vocab_size),
          ("char + byte fallback", CharTokenizer().train(text).vocab_size),
          ("BPE 512 (module 10)", BPETokenizer().train(text, vocab_size=512).vocab_size),
          ("BPE 8k", 8192), ("Llama-2 size", 32000), ("GPT-2 size", 50257)]
print(f"corpus for the tokenizers: {source}")
print(f"{'vocabulary':<30}{'V':>8}{'d':>6}{'parameters':>14}{'MB (measured)':>15}")
for d in (64, 128):
    for name, V in vocabs:
        emb = Embedding(V, d, seed=0)
        print(f"{name:<30}{V:>8}{d:>6}{emb.weight.size:>14,}{emb.memory_footprint() / 1e6:>15.3f}")
        del emb

# %% [markdown]
# ### The gradient is as big as the table, the useful part is tiny
#
# `np.add.at` writes into a dense `V x d` zero array, but a batch only touches the rows of
# the tokens it contains. Measure it: one batch of nanoGPT's small configuration (B = 12
# sequences of T = 64 tokens) through a GPT-2-sized table at d = 64.

# %%
B, T, V, d = 12, 64, 50257, 64
bpe = BPETokenizer().train(text, vocab_size=512)
stream = np.array(bpe.encode(text), dtype=np.int64)
rng = np.random.default_rng(0)
starts = rng.integers(0, len(stream) - T, size=B)
batch = np.stack([stream[s:s + T] for s in starts])            # (B, T) real token ids (< 512)
emb = Embedding(V, d, seed=0)
t0 = time.perf_counter()
out = emb(batch)                                               # (B, T, d)
t_fwd = time.perf_counter() - t0
t0 = time.perf_counter()
out.sum().backward()
t_bwd = time.perf_counter() - t0
grad = emb.weight.grad.data                                    # (V, d)
rows_touched = int((np.abs(grad).sum(axis=1) > 0).sum())
print(f"batch {batch.shape}: {B * T} token positions, {len(np.unique(batch))} distinct ids")
print(f"output activations: {out.data.nbytes / 1e3:.1f} KB;  forward {t_fwd * 1e3:.2f} ms, backward {t_bwd * 1e3:.2f} ms")
print(f"dense gradient: {grad.nbytes / 1e6:.2f} MB, of which {rows_touched} of {V} rows are non-zero "
      f"({100 * rows_touched / V:.2f}%, {rows_touched * d * 4 / 1e3:.1f} KB of real information)")
onehot = np.zeros((B * T, V), dtype=np.float32)               # what onehot(ids) @ W would need
print(f"the one-hot matrix the lookup avoids: {onehot.nbytes / 1e6:.1f} MB")
del onehot, emb, out, grad

# %% [markdown]
# ## Reflect
#
# 1. GPT-2 small: V = 50,257, d = 768. Compute the token table's parameters and float32
#    megabytes. Adam (module 06) keeps two more tensors of the same shape, and the gradient
#    is a fourth: how many MB does the token table cost during training?
# 2. In the measurement, a batch of 768 token positions touched only a small fraction of
#    the rows, yet the gradient was a dense `V x d` array. What would a *sparse* gradient
#    (row ids + row values) save? Why does Adam's weight update make sparse gradients less
#    useful than they look (hint: what does momentum do to rows not in this batch)?
# 3. `grad_W[ids] += grad_out` silently dropped gradient in section 1. Which tokens would a
#    model trained with that bug learn worst: rare ones or frequent ones? Why is this bug
#    invisible in a loss curve for a long time?
# 4. A learned positional table with `max_len = 64` cannot encode position 64. What happens
#    in milestone 5 if you `generate` 200 characters with a context of 64, and how does
#    cropping the context to the last 64 tokens fix it? Would sinusoidal encoding remove
#    the limit, and would the model *work* beyond the lengths it was trained on?
# 5. Weight tying: GPT-2 uses the token table (V x d) also as the output layer (d x V,
#    transposed). How many parameters does that save for GPT-2 small, and what does the
#    gradient of the shared table become (two contributions, added like repeated ids)?
