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
# # Module 02: Activations
#
# Stack two linear layers and you get... one linear layer: `(x @ W1) @ W2 = x @ (W1 @ W2)`.
# Without a non-linearity between them, a network of any depth can only draw straight lines.
# Activation functions are the small element-wise functions that break this: ReLU, Sigmoid,
# Tanh, GELU, and Softmax, which turns a row of scores into probabilities. They look like
# one-liners, and mathematically they are, but each hides a systems trap: `exp` overflows
# float32 at about 88.7, a Python loop over elements is hundreds of times slower than one
# NumPy call, and every activation allocates an output as large as its input. In this
# module you write all five so that they are numerically stable and vectorized, and you
# measure both traps with your own code.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far              you build now                   this unlocks
#   ------------              -------------                   ------------
#   01 Tensor      ----->     02 Activations        ----->    03 Layers (Sequential mixes
#   (float32 data,            ReLU, Sigmoid, Tanh,            Linear and activations)
#    memory_footprint)        GELU, Softmax(dim)              04 Losses (log-softmax)
#                                                             05 Autograd (replaces forward
#                                                              with differentiable versions)
#                                                             12-13 attention and GPT
#                                                              (Softmax, GELU)
# ```
#
# Every class here has the same shape: `forward(x: Tensor) -> Tensor`, `__call__` that
# calls `self.forward`, and `parameters()` that returns `[]` (activations learn nothing).
# The last two are the same for all five, so a small base class, `Activation`, holds them
# once; you write each `forward`. Keep the names exactly: module 05's `enable_autograd()`
# swaps in a differentiable `forward` for each class (the same mathematics, now recorded in
# the graph with its derivative), and `__call__` must pick it up.

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp core.activations
#| export
#| namespace tinytorch.nn ReLU Sigmoid Tanh GELU Softmax
import math

import numpy as np

from tinytorch.core.tensor import Tensor, _wrap

# %% [markdown]
# ### Small helpers and a base class (provided)
#
# Every activation starts the same way: get the float array behind the input, and at the
# end wrap a NumPy result back into a `Tensor`. These helpers are given so that your code
# can focus on the mathematics.
#
# - `_float_data(x)` accepts a Tensor, a NumPy array or a list. Integer and bool data become
#   float32 (you cannot take `exp` of a label). A float64 *Tensor* stays float64, because the
#   only way to get one is to ask for it explicitly (`Tensor(..., dtype=np.float64)`, which
#   module 05's gradient checker does on purpose). Module 04's losses use it too.
# - `_wrap(out)` is module 01's: a Tensor around `out` that keeps `out`'s dtype.
# - `_check_dim(dim, ndim, who)` turns an axis that does not exist into a clear error instead
#   of a NumPy `AxisError` from deep inside a reduction. Module 04's `log_softmax` and module
#   05's differentiable softmax check their `dim` with it too.
# - `Activation` is what the five classes share: calling one runs `self.forward`, it has no
#   parameters, and it prints as its class name, `ReLU()`. Each class below adds its
#   `forward` (and GELU and Softmax their own `__repr__`).

# %% nbgrader={"grade": false, "grade_id": "helpers", "locked": true, "schema_version": 3, "solution": false}
#| export
def _float_data(x) -> np.ndarray:
    """The floating-point array behind ``x`` (Tensor, ndarray, list or number)."""
    data = x.data if isinstance(x, Tensor) else np.asarray(x, dtype=np.float32)
    if not np.issubdtype(data.dtype, np.floating):
        data = data.astype(np.float32)
    return data


def _check_dim(dim: int, ndim: int, who: str) -> int:
    """``dim`` as a non-negative axis, or a ValueError naming the valid range."""
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{who}: dim must be an int, got {type(dim).__name__}")
    if ndim == 0:
        raise ValueError(f"{who}: expected a tensor with at least 1 dimension, got a scalar (shape ())")
    if not -ndim <= dim < ndim:
        raise ValueError(f"{who}: dim={dim} is out of range for a {ndim}-D input "
                         f"(expected -{ndim} <= dim < {ndim})")
    return int(dim) % ndim


class Activation:
    """Base class of the activations: ``__call__`` runs ``self.forward``; no parameters."""

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def parameters(self) -> list:
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

# %% [markdown]
# ## 1. ReLU: the default non-linearity
#
# ```
#   ReLU(x) = max(0, x)
#
#        out
#         |        /
#         |      /
#         |    /
#   ------+--/--------- x          x:    [-2.0, -0.5, 0.0, 1.5, 3.0]
#         0                        out:  [ 0.0,  0.0, 0.0, 1.5, 3.0]
# ```
#
# ReLU costs one comparison per element, never saturates for positive inputs (its slope is
# exactly 1 there, so gradients pass through unchanged) and produces exact zeros, which makes
# activations sparse. Its weakness: a unit whose input is always negative outputs 0 and gets
# slope 0, so it can "die" and never recover.
#
# Implementation note: `np.maximum(data, 0)` keeps float32 (NumPy 2 treats the Python `0`
# as a "weak" scalar that adopts the array's dtype). `np.maximum(data, 0.0)` does too; a
# float64 *array* as the second argument would not.

# %% nbgrader={"grade": false, "grade_id": "relu", "locked": false, "schema_version": 3, "solution": true}
#| export
class ReLU(Activation):
    """Rectified linear unit: ``max(0, x)`` element-wise.

    EXAMPLE: ReLU()(Tensor([-1.0, 2.0])) -> Tensor([0., 2.])
    """

    def forward(self, x: Tensor) -> Tensor:
        """Return a new Tensor with ``max(0, x)``; the input is not modified.

        HINT: data = _float_data(x); then one NumPy call; then _wrap(...)
        """
        ### BEGIN SOLUTION
        data = _float_data(x)            # (...) any shape
        return _wrap(np.maximum(data, 0))  # (...) same shape and dtype
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-relu", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from tinytorch.testing import assert_tensor


def test_unit_relu():
    """ReLU zeroes negatives, keeps positives, keeps shape and float32, returns a Tensor."""
    x = Tensor([[-2.0, -0.5, 0.0], [1.5, 3.0, -1e-8]])
    out = assert_tensor(ReLU()(x), (2, 3), np.float32, name="ReLU()(x)")
    np.testing.assert_array_equal(out.data, [[0, 0, 0], [1.5, 3.0, 0]])
    np.testing.assert_array_equal(x.data[0], [-2.0, -0.5, 0.0], err_msg="ReLU must not modify its input")
    assert ReLU().parameters() == []
    ### BEGIN HIDDEN TESTS
    big = Tensor(np.array([-1e30, 1e30], dtype=np.float32))
    np.testing.assert_array_equal(ReLU()(big).data, [0, big.data[1]])
    ### END HIDDEN TESTS
    print("test_unit_relu passed")


test_unit_relu()

# %% [markdown]
# ## 2. Sigmoid, and the first overflow
#
# ```
#   sigmoid(x) = 1 / (1 + exp(-x))            squashes any real number into (0, 1)
#
#   x:        -20       -2      0      2      20
#   sigmoid:  2.1e-9   0.119   0.5   0.881   ~1.0
# ```
#
# The textbook formula has a trap. float32 can hold numbers up to about 3.4e38, so
# `exp(z)` overflows to `inf` as soon as `z > ln(3.4e38) = 88.72`. For `x = -100`,
# `exp(-x) = exp(100) = inf` and NumPy prints an overflow warning (the answer `1/(1+inf) = 0`
# happens to be right, but a warning in every training step hides the real ones, and the
# derivative formulas built on the same `exp` can produce `inf/inf = nan`).
#
# The stable version never calls `exp` on a positive number. With `e = exp(-|x|)`, which is
# always in `(0, 1]`:
#
# ```
#   x >= 0:   sigmoid(x) = 1 / (1 + exp(-x))  = 1 / (1 + e)
#   x <  0:   sigmoid(x) = exp(x) / (1 + exp(x)) = e / (1 + e)     (multiply top and bottom by exp(x))
# ```
#
# Both branches are computed for all elements and `np.where` picks one: no overflow, ever.

# %% nbgrader={"grade": false, "grade_id": "sigmoid", "locked": false, "schema_version": 3, "solution": true}
#| export
class Sigmoid(Activation):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, computed without overflow."""

    def forward(self, x: Tensor) -> Tensor:
        """Return sigmoid(x) element-wise, never calling exp on a positive number.

        HINT: e = np.exp(-np.abs(data)) is in (0, 1]; then np.where(data >= 0, ..., ...)
        """
        ### BEGIN SOLUTION
        data = _float_data(x)                              # (...)
        e = np.exp(-np.abs(data))                          # (...) in (0, 1], cannot overflow
        out = np.where(data >= 0, 1 / (1 + e), e / (1 + e))  # (...)
        return _wrap(out.astype(data.dtype, copy=False))
        ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-sigmoid", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_sigmoid():
    """Sigmoid: known values, symmetry, range, float32, and no overflow warning at +-1e4."""
    s = Sigmoid()
    out = assert_tensor(s(Tensor([-2.0, 0.0, 2.0])), (3,), np.float32, name="Sigmoid()(x)")
    np.testing.assert_allclose(out.data, [0.11920292, 0.5, 0.88079708], rtol=1e-6)
    x = np.linspace(-30, 30, 61).astype(np.float32)
    y = s(Tensor(x)).data
    np.testing.assert_allclose(y + y[::-1], np.ones_like(y), atol=1e-6)  # sigmoid(-x) = 1 - sigmoid(x)
    assert np.all((y >= 0) & (y <= 1)), "sigmoid must stay in [0, 1]"
    with np.errstate(over="raise", invalid="raise"):  # any overflow becomes an error here
        extreme = s(Tensor([-1e4, -100.0, 100.0, 1e4])).data
    np.testing.assert_allclose(extreme, [0.0, 0.0, 1.0, 1.0], atol=1e-30)
    ### BEGIN HIDDEN TESTS
    assert s(Tensor(np.zeros((2, 3, 4), dtype=np.float32))).shape == (2, 3, 4)
    ### END HIDDEN TESTS
    print("test_unit_sigmoid passed")


test_unit_sigmoid()

# %% [markdown]
# ## 3. Tanh and GELU
#
# **Tanh** is a rescaled sigmoid, `tanh(x) = 2 * sigmoid(2x) - 1`, centred on zero with range
# `(-1, 1)`. NumPy's `np.tanh` is already stable, so it is a one-liner.
#
# **GELU** (Gaussian Error Linear Unit) is what BERT and GPT-2 use instead of ReLU. It weighs
# `x` by the probability that a standard normal variable is below `x`: `GELU(x) = x * Phi(x)`.
# Instead of a hard corner at 0 it has a smooth dip (minimum about -0.17 near x = -0.75), so
# small negative inputs still pass a little signal and gradient. GPT-2 computes `Phi` with a
# tanh approximation, which is the one you implement (PyTorch: `approximate="tanh"`):
#
# ```
#   GELU(x) ~= 0.5 * x * (1 + tanh( sqrt(2/pi) * (x + 0.044715 * x^3) ))
#
#   x:      -3       -1       0      1       3
#   GELU:  -0.0036  -0.1588  0.0   0.8412  2.9964
#   ReLU:   0        0       0      1       3
# ```
#
# Numerics: for large `|x|` the cubic grows fast (`1e4^3 = 1e12`, still fine in float32,
# which overflows only past 3.4e38) and `tanh` saturates to exactly +-1, so `GELU(1e4) = 1e4`
# and `GELU(-1e4) = -0.0`. Compute the constant `sqrt(2/pi)` once, and write the cube as
# `data * data * data`: NumPy's `data ** 3` goes through the general power function, which
# is several times slower than two multiplications (GELU runs on every token of a GPT).

# %% nbgrader={"grade": false, "grade_id": "tanh-gelu", "locked": false, "schema_version": 3, "solution": true}
#| export
class Tanh(Activation):
    """Hyperbolic tangent, range (-1, 1)."""

    def forward(self, x: Tensor) -> Tensor:
        """Return tanh(x) element-wise.  HINT: np.tanh"""
        ### BEGIN SOLUTION
        return _wrap(np.tanh(_float_data(x)))  # (...)
        ### END SOLUTION


_GELU_C = math.sqrt(2.0 / math.pi)  # 0.7978845608...


class GELU(Activation):
    """Gaussian Error Linear Unit, tanh approximation (as in GPT-2)."""

    def forward(self, x: Tensor) -> Tensor:
        """Return 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x**3))).

        HINT: use the constant _GELU_C; keep the dtype of the input (Python floats are
        "weak" in NumPy 2, so 0.5 * float32_array stays float32).
        """
        ### BEGIN SOLUTION
        data = _float_data(x)                                  # (...)
        inner = _GELU_C * (data + 0.044715 * data * data * data)  # (...)
        return _wrap(0.5 * data * (1.0 + np.tanh(inner)))      # (...)
        ### END SOLUTION

    def __repr__(self) -> str:
        return "GELU(approximate='tanh')"

# %% nbgrader={"grade": true, "grade_id": "test-tanh-gelu", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_tanh_gelu():
    """Tanh and GELU: known values, float32, saturation at +-1e4."""
    t = assert_tensor(Tanh()(Tensor([-1.0, 0.0, 1.0])), (3,), np.float32, name="Tanh()(x)")
    np.testing.assert_allclose(t.data, [-0.7615942, 0.0, 0.7615942], rtol=1e-6)
    g = assert_tensor(GELU()(Tensor([-3.0, -1.0, 0.0, 1.0, 3.0])), (5,), np.float32, name="GELU()(x)")
    np.testing.assert_allclose(g.data, [-0.00363752, -0.15880801, 0.0, 0.84119199, 2.99636248], atol=1e-6)
    with np.errstate(over="raise", invalid="raise"):
        far = GELU()(Tensor([-1e4, 1e4])).data
    np.testing.assert_allclose(far, [0.0, 1e4], atol=1e-3)
    ### BEGIN HIDDEN TESTS
    np.testing.assert_allclose(Tanh()(Tensor([20.0, -20.0])).data, [1.0, -1.0])
    ### END HIDDEN TESTS
    print("test_unit_tanh_gelu passed")


test_unit_tanh_gelu()

# %% [markdown]
# How good is the tanh approximation? The exact GELU uses the error function,
# `x * 0.5 * (1 + erf(x / sqrt(2)))`. Python's `math.erf` gives it element by element;
# the largest gap on [-6, 6], measured:

# %%
_xs = np.linspace(-6, 6, 2001).astype(np.float32)
_exact = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in _xs.astype(np.float64)])
_approx = GELU()(Tensor(_xs)).data.astype(np.float64)
_gap = np.abs(_exact - _approx)
print(f"max |GELU_tanh - GELU_exact| on [-6, 6]: {_gap.max():.2e} at x = {_xs[_gap.argmax()]:+.3f}")

# %% [markdown]
# ## 4. Softmax: scores to probabilities, stably
#
# Softmax turns a row of scores ("logits") into a probability distribution:
#
# ```
#   softmax(x)_i = exp(x_i) / sum_j exp(x_j)
#
#   logits:  [2.0, 1.0, 0.1]
#   exp:     [7.389, 2.718, 1.105]      sum = 11.212
#   softmax: [0.659, 0.242, 0.099]      sums to 1
# ```
#
# **The overflow.** Logits of `[1000, 1001, 1002]` are ordinary for an untrained network
# with large weights (or attention scores before scaling). `exp(1000)` is `inf` in float32,
# so the formula gives `inf / inf = nan` for every element: one such row and the loss,
# the gradients and then every weight become `nan`.
#
# **The fix** uses one identity: softmax does not change when you subtract the same
# constant `c` from every element, because `exp(x_i - c) / sum exp(x_j - c)` multiplies top
# and bottom by `exp(-c)`. Choose `c = max(x)`:
#
# ```
#   x        = [1000, 1001, 1002]
#   x - max  = [  -2,   -1,    0]       largest exponent is exp(0) = 1: no overflow
#   exp      = [0.135, 0.368, 1.0]      the sum is >= 1: no division by zero
#   softmax  = [0.090, 0.245, 0.665]    exactly the right answer
# ```
#
# The same trick protects the other end: if all logits are `-1000`, the naive `exp` underflows
# to 0 and gives `0/0 = nan`; after subtracting the max one element is exactly `exp(0) = 1`.
#
# **Which axis.** For a batch of logits `(B, C)` the probabilities are over classes, the
# last axis: `Softmax(dim=-1)`. In attention (module 12) the scores are `(B, H, T, T)` and
# softmax runs over the last axis too. Use `keepdims=True` so that `(B, C) - (B, 1)`
# broadcasts row by row.

# %% nbgrader={"grade": false, "grade_id": "softmax", "locked": false, "schema_version": 3, "solution": true}
#| export
class Softmax(Activation):
    """Softmax along ``dim`` (default the last axis), numerically stable."""

    def __init__(self, dim: int = -1):
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        """Return exp(x - max) / sum(exp(x - max)) along ``self.dim``.

        HINT: turn self.dim into a checked axis with the provided _check_dim helper first;
        keepdims=True in both reductions so that (B, C) - (B, 1) broadcasts.
        """
        ### BEGIN SOLUTION
        data = _float_data(x)                                   # (B, C) or any shape
        axis = _check_dim(self.dim, data.ndim, "Softmax")
        shifted = data - data.max(axis=axis, keepdims=True)     # (B, C) - (B, 1): max is now 0
        e = np.exp(shifted)                                     # (B, C) in (0, 1]
        return _wrap(e / e.sum(axis=axis, keepdims=True))       # (B, C), rows sum to 1
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"Softmax(dim={self.dim})"

# %% nbgrader={"grade": true, "grade_id": "test-softmax", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_softmax():
    """Softmax: worked example, rows sum to 1, stable for +-1e4, shift invariance, dim argument."""
    sm = Softmax()
    out = assert_tensor(sm(Tensor([[2.0, 1.0, 0.1]])), (1, 3), np.float32, name="Softmax()(x)")
    np.testing.assert_allclose(out.data, [[0.65900114, 0.24243297, 0.09856589]], rtol=1e-5)
    big = sm(Tensor([[1000.0, 1001.0, 1002.0], [-1e4, 0.0, 1e4], [-1e4, -1e4, -1e4]])).data
    assert np.all(np.isfinite(big)), f"Softmax must stay finite for large logits, got {big}"
    np.testing.assert_allclose(big[0], [0.09003057, 0.24472847, 0.66524096], rtol=1e-5)
    np.testing.assert_allclose(big[1], [0.0, 0.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(big[2], [1 / 3] * 3, rtol=1e-6)
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    np.testing.assert_allclose(sm(Tensor(x)).data, sm(Tensor(x + 50)).data, atol=1e-6)
    cols = assert_tensor(Softmax(dim=0)(Tensor(x)), (4, 5), np.float32, name="Softmax(dim=0)(x)").data
    np.testing.assert_allclose(cols.sum(axis=0), np.ones(5), rtol=1e-6)
    try:
        Softmax(dim=2)(Tensor(x))
    except ValueError as e:
        assert "dim=2" in str(e), f"the error should name the bad dim, got: {e}"
    else:
        raise AssertionError("Softmax(dim=2) on a 2-D input must raise ValueError")
    ### BEGIN HIDDEN TESTS
    three = Softmax(dim=1)(Tensor(np.ones((2, 4, 3), dtype=np.float32))).data
    np.testing.assert_allclose(three, np.full((2, 4, 3), 0.25), rtol=1e-6)
    ### END HIDDEN TESTS
    print("test_unit_softmax passed")


test_unit_softmax()

# %% [markdown]
# ## 5. Systems measurement A: how fast does exp overflow?
#
# Below, a naive softmax (no max subtraction) meets the logits `base + [0, 1, 2]` for growing
# `base`. The right answer is the same for every row (shift invariance!). We also find, by
# measurement, the largest float32 `x` for which `np.exp(x)` is still finite: it should agree
# with `ln(float32 max)`.

# %%
def naive_softmax(x: np.ndarray) -> np.ndarray:
    """Softmax WITHOUT the max subtraction: for demonstration only."""
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


print(f"{'logits':>22} | {'naive softmax':>30} | {'your Softmax':>30}")
for base in (0.0, 50.0, 86.0, 87.0, 1000.0):
    logits = np.array([[0.0, 1.0, 2.0]], dtype=np.float32) + np.float32(base)  # (1, 3)
    with np.errstate(over="ignore", invalid="ignore"):
        naive = naive_softmax(logits)[0]
    ours = Softmax()(Tensor(logits)).data[0]
    print(f"{np.array2string(logits[0], precision=1):>22} | {np.array2string(naive, precision=3):>30} | "
          f"{np.array2string(ours, precision=3):>30}")

# Bisection on float32: the largest x with a finite exp(x)
lo, hi = np.float32(0.0), np.float32(200.0)
with np.errstate(over="ignore"):
    for _ in range(60):
        mid = np.float32((lo + hi) / 2)
        lo, hi = (mid, hi) if np.isfinite(np.exp(mid)) else (lo, mid)
print(f"\nlargest float32 x with finite exp(x), measured: {float(lo):.4f}; "
      f"ln(float32 max) = {math.log(float(np.finfo(np.float32).max)):.4f}")

# %% [markdown]
# ## 6. Systems measurement B: vectorized vs Python loop
#
# Your activations make one NumPy call over the whole array. The alternative a beginner
# writes first is a Python loop over elements. Both compute the same numbers; the
# difference is where the loop runs: in compiled C over a contiguous float32 buffer, or in
# the Python interpreter, one boxed float object at a time. Measured below on the same
# 200,000 values (times are wall-clock on this machine, best of 3).

# %%
import time


def relu_loop(values: np.ndarray) -> np.ndarray:
    """ReLU one element at a time, the way not to do it."""
    flat = values.reshape(-1)
    out = np.empty_like(flat)
    for i in range(flat.shape[0]):
        out[i] = flat[i] if flat[i] > 0 else 0.0
    return out.reshape(values.shape)


def best_of(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


_x = np.random.default_rng(42).normal(size=(200, 1000)).astype(np.float32)  # (200, 1000)
_xt = Tensor(_x)
assert np.array_equal(relu_loop(_x), ReLU()(_xt).data), "loop and vectorized ReLU disagree"
t_loop = best_of(lambda: relu_loop(_x))
t_vec = best_of(lambda: ReLU()(_xt))
t_gelu = best_of(lambda: GELU()(_xt))
print(f"ReLU, Python loop : {t_loop * 1e3:9.2f} ms for {_x.size:,} elements")
print(f"ReLU, vectorized  : {t_vec * 1e3:9.2f} ms   ({t_loop / t_vec:,.0f}x faster)")
print(f"GELU, vectorized  : {t_gelu * 1e3:9.2f} ms   (tanh + cube: {t_gelu / t_vec:.1f}x the cost of ReLU)")
out = ReLU()(_xt)
print(f"memory: input {_xt.memory_footprint() / 1e6:.2f} MB, ReLU output {out.memory_footprint() / 1e6:.2f} MB "
      f"(every activation allocates a new array as large as its input)")

# %% nbgrader={"grade": true, "grade_id": "test-module", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_module():
    """All activations together: shapes, dtypes, the interface module 03 relies on."""
    rng = np.random.default_rng(7)
    x = Tensor(rng.normal(size=(8, 16)).astype(np.float32) * 10)  # (B, C)
    for act in (ReLU(), Sigmoid(), Tanh(), GELU(), Softmax(dim=-1)):
        y = act(x)
        assert isinstance(y, Tensor), f"{act!r} returned {type(y).__name__}, expected Tensor"
        assert y.shape == x.shape, f"{act!r}: expected shape {x.shape}, got {y.shape}"
        assert y.dtype == np.float32, f"{act!r}: expected float32, got {y.dtype}"
        assert np.all(np.isfinite(y.data)), f"{act!r} produced non-finite values"
        assert act.parameters() == [], f"{act!r} has no parameters"
    # Composition: softmax of a ReLU'd batch is still a distribution per row
    p = Softmax()(ReLU()(x)).data
    np.testing.assert_allclose(p.sum(axis=-1), np.ones(8), rtol=1e-5)
    # __call__ must go through self.forward (module 05 replaces forward)
    class Doubled(ReLU):
        def forward(self, x):
            return _wrap(2 * _float_data(x))
    np.testing.assert_array_equal(Doubled()(Tensor([-1.0])).data, [-2.0])
    # numpy arrays and lists are accepted too
    np.testing.assert_array_equal(ReLU()([-1.0, 1.0]).data, [0.0, 1.0])
    print("test_module passed: all activations work together")


test_module()

# %% [markdown]
# ## PyTorch's function forms: `tinytorch.nn.functional`
#
# PyTorch offers every activation twice: as a class (`nn.ReLU()`, a layer you can put in
# `Sequential`) and as a function (`F.relu(x)`, for a `forward` you write yourself). The
# functions here are one line each: they call your classes, so module 05's gradients reach
# them too. `import tinytorch.nn.functional as F` finds them.

# %% nbgrader={"grade": false, "grade_id": "functional", "locked": true, "schema_version": 3, "solution": false}
#| export
#| namespace tinytorch.nn.functional relu sigmoid tanh gelu softmax
def relu(x) -> Tensor:
    return ReLU()(x)


def sigmoid(x) -> Tensor:
    return Sigmoid()(x)


def tanh(x) -> Tensor:
    return Tanh()(x)


def gelu(x) -> Tensor:
    return GELU()(x)


def softmax(x, dim: int = -1) -> Tensor:
    return Softmax(dim=dim)(x)


# %%
print("relu([-1, 2]) =", relu(Tensor([-1.0, 2.0])).data, "  softmax([0, ln 3]) =",
      softmax(Tensor([0.0, np.log(3.0)])).data)

# %% [markdown]
# ## Reflect
#
# 1. **Overflow.** You measured the float32 overflow point of `exp` at about 88.72. In
#    float16 (used for mixed-precision training) the largest finite value is 65504. At what
#    logit does `exp` overflow in float16, and why does that make the max-subtraction trick
#    even more important on GPUs?
# 2. **Memory.** A network computes `GELU(x)` on activations of shape `(B, T, 4C)` with
#    B = 32, T = 1024, C = 768 in float32. How many MB does the output take? Your GELU
#    also creates temporaries (`data * data * data`, `inner`, `tanh(inner)`): roughly how much
#    memory does one call touch, and what would a "fused" kernel save?
# 3. **Speed.** Your loop-vs-vectorized measurement gave a ratio of hundreds. Where does the
#    time go in the loop version: arithmetic, or interpreter overhead per element? What
#    does that predict for a loop over 1,000 elements versus 1,000,000?
# 4. **Design.** Sigmoid saturates: for `x = 10` its slope is about 4.5e-5. ReLU's slope is
#    exactly 1 for every positive input. Why does that difference matter for a 20-layer
#    network trained with the chain rule (module 05)?
# 5. **Softmax axis.** A batch of logits has shape `(32, 10)`. What goes wrong, silently,
#    if you compute the softmax over axis 0 instead of axis 1? Would any test that only
#    checks "outputs sum to 1" catch it?
