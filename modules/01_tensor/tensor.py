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
# # Module 01: Tensor
#
# Every number a neural network touches (inputs, weights, activations, gradients) lives in a
# tensor: an n-dimensional array with a shape and a dtype. In this module you build TinyTorch's
# one `Tensor` class on top of a NumPy array. It stores float32 values, does arithmetic with
# broadcasting, multiplies matrices (first with explicit loops so you can count the work, then
# the fast way), reshapes and reduces, and reports how many bytes it occupies. The same class
# carries `requires_grad`, `grad` and `backward()` from day one; they stay dormant until
# module 05 wakes them up, so nothing you write here has to change later.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far            you build now                  this unlocks
#   ------------            -------------                  ------------
#   NumPy arrays  ----->    01 Tensor                ----->  02 Activations (ReLU, Softmax ...)
#   (given)                 float32 storage                  03 Layers (Linear: x @ W + b)
#                           + - * / ** with broadcasting     04 Losses
#                           matmul (loops and fast)          05 Autograd: the same Tensor,
#                           reshape, transpose, permute         now recording a graph
#                           sum / mean / max, exp / log
#                           indexing, memory_footprint()
#                           PyTorch spellings: dim=,
#                             argmax, view, squeeze ...
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp core.tensor
#| export
#| namespace tinytorch Tensor tensor zeros ones randn manual_seed
#| namespace tinytorch.core Tensor
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["Tensor", "matmul_loops", "tensor", "zeros", "ones", "randn", "manual_seed", "default_rng"]

# %% [markdown]
# ## 1. What a tensor stores
#
# A tensor is a block of memory plus a description of how to read it:
#
# ```
#   Tensor([[1, 2, 3],        shape  (2, 3)      2 rows, 3 columns
#           [4, 5, 6]])       dtype  float32     4 bytes per number
#                             size   6           numbers in total
#                             bytes  6 * 4 = 24  memory_footprint()
# ```
#
# Why float32 and not NumPy's default float64? Half the memory, twice the numbers per cache
# line and per memory transfer, and every deep-learning framework trains in float32 (or less).
# A float64 array that sneaks into a model doubles its memory and slows every operation, so
# the constructor converts floats to float32. Integer and boolean arrays keep their dtype:
# class labels and indices are integers on purpose. An explicit `dtype=` always wins (module
# 05's gradient checker asks for float64 on purpose).
#
# | you pass                          | `.data` becomes                |
# | --------------------------------- | ------------------------------ |
# | `3.0`, `[1, 2]`, `[[0.5], [1.5]]` | float32 array                  |
# | `np.array([...], float64)`        | float32 array                  |
# | `np.array([...], int64)` / bool   | kept: int64 / bool             |
# | a `Tensor`                        | the same array (no copy)       |
# | anything with `dtype=np.float64`  | float64 array                  |
# | `None`, a string                  | `TypeError` (NumPy: NaN, text) |
#
# NumPy arrays are *not* copied when their dtype is already right: `Tensor(arr)` shares
# memory with `arr`, as `torch.from_numpy` does. Copies cost memory and time; we make them
# only when the dtype changes.
#
# The class also carries three attributes for later: `requires_grad` (should gradients flow
# into this tensor?), `grad` (where they will land) and `_ctx` (the operation that produced
# this tensor). In this module `backward()` does nothing; module 05 fills it in.

# %% nbgrader={"grade": false, "grade_id": "tensor-class", "locked": false, "schema_version": 3, "solution": true}
#| export
class Tensor:
    """An n-dimensional array of numbers (float32 by default) over a NumPy array."""

    # NumPy must hand binary operations like ``ndarray + Tensor`` back to us
    # (``Tensor.__radd__``) instead of looping over the Tensor as if it were a list.
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        """Wrap ``data`` as a NumPy array following the dtype rules above.

        EXAMPLE:
            Tensor([1, 2]).data            -> array([1., 2.], dtype=float32)
            Tensor(np.arange(3)).dtype     -> int64 (labels stay integers)
            Tensor([1, 2], dtype=np.float64).dtype -> float64

        HINTS:
            - A Tensor argument: take its ``.data``.
            - ``dtype`` given: ``np.asarray(data, dtype=dtype)``.
            - NumPy array or NumPy scalar (``np.generic``): convert only float64 to float32
              (``arr.astype(np.float32)``), keep every other dtype.
            - Anything else (Python numbers, lists): ``np.asarray(data, dtype=np.float32)``.
            - Then set ``requires_grad`` (a bool), ``grad = None`` and ``_ctx = None``.
        """
        _check_data(data)
        ### BEGIN SOLUTION
        if isinstance(data, Tensor):
            data = data.data
        if dtype is not None:
            arr = np.asarray(data, dtype=dtype)
        elif isinstance(data, (np.ndarray, np.generic)):
            arr = data.astype(np.float32) if data.dtype == np.float64 else np.asarray(data)
        else:
            arr = np.asarray(data, dtype=np.float32)
        self.data = arr
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._ctx = None
        ### END SOLUTION

    # -- describing the tensor (provided) -------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        # NumPy's element count, callable as PyTorch's size() / size(dim) (section 7)
        return _Size(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    def numpy(self) -> np.ndarray:
        """The underlying NumPy array (shared, not copied)."""
        return self.data

    def item(self):
        """The single number of a one-element tensor, as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def detach(self) -> "Tensor":
        """A tensor sharing this data that is cut off from any gradient graph."""
        return _wrap(self.data)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        body = np.array2string(self.data, precision=4, separator=", ", prefix="Tensor(")
        return f"Tensor({body}, shape={self.shape}, dtype={self.dtype}{grad})"

    def __bool__(self) -> bool:
        # like NumPy: only a one-element tensor has a truth value
        return bool(self.data)

    def __array__(self, dtype=None, copy=None):
        # lets np.asarray(tensor) and np.testing work on tensors
        return self.data if dtype is None else self.data.astype(dtype)

    # Tensors compare element-wise (==), so hashing must fall back to identity.
    __hash__ = object.__hash__

    def memory_footprint(self) -> int:
        """Bytes occupied by the tensor's numbers.

        EXAMPLE: Tensor(np.zeros((1000, 1000))).memory_footprint() -> 4000000
        HINT: number of elements times bytes per element; NumPy knows both (``nbytes``).
        """
        ### BEGIN SOLUTION
        return int(self.data.nbytes)
        ### END SOLUTION

    # -- dormant autograd: module 05 replaces these -----------------------------------------
    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Compute gradients. Does nothing until module 05 calls ``enable_autograd()``."""
        return None

    def zero_grad(self) -> None:
        """Forget the accumulated gradient."""
        self.grad = None


class _Size(int):
    """An element count (NumPy's ``a.size``) that is also PyTorch's ``size()`` when called:
    ``t.size == 6`` and ``t.size() == (2, 3)``, ``t.size(0) == 2``."""

    def __new__(cls, shape: tuple):
        count = 1
        for n in shape:
            count *= int(n)
        obj = super().__new__(cls, count)
        obj.shape = tuple(shape)
        return obj

    def __call__(self, dim=None):
        return self.shape if dim is None else self.shape[dim]


def _check_data(data) -> None:
    """Refuse what NumPy would silently turn into a NaN or an object array."""
    if data is None:
        raise TypeError("Tensor(None): expected numbers, a (nested) list of numbers or an array, got None")
    if isinstance(data, (str, bytes, dict, set)):
        raise TypeError(f"Tensor() expects numbers or an array, got a {type(data).__name__}")


def _wrap(data: np.ndarray) -> Tensor:
    """Make a Tensor around an array that is already the right dtype (no checks, no copy).

    Results of operations use this: they keep the dtype NumPy computed, so a float64
    computation (the gradient checker's) stays float64 and a float32 one stays float32.
    """
    t = Tensor.__new__(Tensor)
    t.data = data if isinstance(data, np.ndarray) else np.asarray(data)
    t.requires_grad = False
    t.grad = None
    t._ctx = None
    return t


# %% nbgrader={"grade": true, "grade_id": "test-tensor-creation", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_tensor_creation():
    """Tensor() follows the dtype rules and measures its memory."""
    t = Tensor([[1, 2, 3], [4, 5, 6]])
    assert t.shape == (2, 3), f"expected shape (2, 3), got {t.shape}"
    assert t.dtype == np.float32, f"lists must become float32, got {t.dtype}"
    assert t.size == 6 and t.ndim == 2 and len(t) == 2
    assert Tensor(np.ones(3, dtype=np.float64)).dtype == np.float32, "float64 arrays must become float32"
    assert Tensor(np.arange(3)).dtype == np.arange(3).dtype, "integer arrays keep their dtype"
    assert Tensor(np.array([True, False])).dtype == np.bool_, "bool arrays keep their dtype"
    assert Tensor([1.0], dtype=np.float64).dtype == np.float64, "an explicit dtype wins"
    assert Tensor(2.5).item() == 2.5 and Tensor(2.5).shape == ()
    assert t.memory_footprint() == 24, f"6 float32 numbers are 24 bytes, got {t.memory_footprint()}"
    assert t.requires_grad is False and t.grad is None
    w = Tensor([1.0], requires_grad=True)
    assert w.requires_grad is True and w.backward() is None, "backward() is dormant in module 01"
    ### BEGIN HIDDEN TESTS
    arr = np.zeros((2, 2), dtype=np.float32)
    assert Tensor(arr).data is arr, "a float32 array must not be copied"
    assert Tensor(Tensor([1.0, 2.0])).shape == (2,)
    assert Tensor(np.zeros((1000, 1000))).memory_footprint() == 4_000_000
    ### END HIDDEN TESTS


test_unit_tensor_creation()

# %% [markdown]
# ### How the tests check your results
#
# The most common bug in this course is an operation that returns a raw NumPy array instead
# of a `Tensor`. It looks right when printed, and `np.testing.assert_allclose(out.data, ...)`
# even accepts it (an ndarray has a `.data` attribute too: a buffer of its bytes), but the
# next module cannot call Tensor methods on it and gradients cannot flow through it. The
# second most common is a silent float64. So every graded test first checks what came back:
#
# ```
#   assert_tensor(x + b, (2, 3))        a Tensor, of shape (2, 3), of dtype float32
#   assert_tensor(labels, (4,), np.int64)
# ```
#
# `assert_tensor` is given (read it; it goes into `tinytorch.testing`, like `torch.testing`,
# and later modules' tests import it from there). It recognises a Tensor by its class name,
# so that this notebook's `Tensor` and the one in your package both count.

# %% nbgrader={"grade": false, "grade_id": "testing-helpers", "locked": true, "schema_version": 3, "solution": false}
#| export testing
import numpy as np


def assert_tensor(out, shape, dtype=np.float32, name: str = "the result"):
    """Fail with a message a learner can act on unless ``out`` is a Tensor of ``shape`` and
    ``dtype`` (``dtype=None``: any). Returns ``out``, so a test can go on using it."""
    if not any(c.__name__ == "Tensor" for c in type(out).__mro__) or not isinstance(
            getattr(out, "data", None), np.ndarray):
        raise AssertionError(f"{name} must be a Tensor, got {type(out).__module__}.{type(out).__name__}: "
                             "wrap NumPy results as Tensor(...) (or _wrap(...)) so that later modules, "
                             "and gradients, can use them")
    if tuple(out.shape) != tuple(shape):
        raise AssertionError(f"{name}: expected shape {tuple(shape)}, got {tuple(out.shape)}")
    if dtype is not None and out.dtype != np.dtype(dtype):
        raise AssertionError(f"{name}: expected dtype {np.dtype(dtype)}, got {out.dtype}"
                             + (" (a float64 leak: NumPy's default)" if out.dtype == np.float64 else ""))
    return out


# %% [markdown]
# ## 2. Element-wise arithmetic and broadcasting
#
# `a + b` adds numbers position by position. When the shapes differ, NumPy *broadcasts*:
# it lines the shapes up from the right, and a dimension of size 1 (or a missing one) is
# stretched to match, without copying memory.
#
# ```
#   x      (2, 3)   [[1, 2, 3],        b  (3,)  [10, 20, 30]
#                    [4, 5, 6]]
#
#   align right:  x  2 x 3
#                 b      3     ->  b is treated as (1, 3), repeated over 2 rows
#
#   x + b  (2, 3)   [[11, 22, 33],
#                    [14, 25, 36]]
#
#   (2, 3) + (2,)  ->  3 vs 2: neither is 1  ->  error
# ```
#
# This is how a bias `b` of shape `(out,)` is added to a whole batch `(B, out)` in one line.
#
# Every operation needs the *other* operand as an array. It can be a Tensor, a NumPy array
# or a Python number. Python numbers stay Python numbers: NumPy 2 treats them "weakly", so
# `float32_tensor * 0.5` stays float32. A float64 NumPy array would drag the result to
# float64, so `_operand` converts it to the tensor's own float dtype (float32 normally).
#
# Results are wrapped with `_wrap`, which keeps whatever dtype NumPy computed. Your
# operations are one line each: compute on `.data`, wrap the result.

# %% nbgrader={"grade": false, "grade_id": "tensor-arithmetic", "locked": false, "schema_version": 3, "solution": true}
#| export
def _operand(other, like: Tensor):
    """``other`` as something NumPy can combine with ``like.data`` without silent float64.

    Tensor -> its array; Python number -> unchanged; NumPy array or scalar of dtype float64 ->
    cast to ``like``'s dtype when ``like`` is a float tensor (else to float32).
    """
    if isinstance(other, Tensor):
        return other.data
    if isinstance(other, numbers.Number) and not isinstance(other, np.generic):
        return other
    arr = np.asarray(other)
    if arr.dtype == np.float64:
        target = like.dtype if np.issubdtype(like.dtype, np.floating) else np.float32
        arr = arr.astype(target)
    return arr


def _add(self, other):
    """self + other, with broadcasting. EXAMPLE: Tensor([1, 2]) + 1 -> Tensor([2., 3.])"""
    ### BEGIN SOLUTION
    return _wrap(self.data + _operand(other, self))
    ### END SOLUTION


def _sub(self, other):
    """self - other, with broadcasting."""
    ### BEGIN SOLUTION
    return _wrap(self.data - _operand(other, self))
    ### END SOLUTION


def _mul(self, other):
    """self * other (element-wise, NOT matrix multiplication)."""
    ### BEGIN SOLUTION
    return _wrap(self.data * _operand(other, self))
    ### END SOLUTION


def _truediv(self, other):
    """self / other, with broadcasting."""
    ### BEGIN SOLUTION
    return _wrap(self.data / _operand(other, self))
    ### END SOLUTION


def _pow(self, exponent):
    """self ** exponent (a number or a tensor)."""
    ### BEGIN SOLUTION
    return _wrap(self.data ** _operand(exponent, self))
    ### END SOLUTION


def _neg(self):
    """-self."""
    ### BEGIN SOLUTION
    return _wrap(-self.data)
    ### END SOLUTION


# The reflected forms handle `2 - t`, `np_array * t` ...: Python calls `t.__rsub__(2)` when
# `int.__sub__` gives up (provided).
def _radd(self, other):
    """other + self."""
    return _add(self, other)


def _rsub(self, other):
    """other - self (``2 - t``)."""
    return _wrap(_operand(other, self) - self.data)


def _rmul(self, other):
    """other * self."""
    return _mul(self, other)


def _rtruediv(self, other):
    """other / self (``1 / t``)."""
    return _wrap(_operand(other, self) / self.data)


def _rpow(self, other):
    """other ** self (``2 ** t``)."""
    return _wrap(_operand(other, self) ** self.data)


# Attach the operations to the class (provided). These are the class's methods until module
# 05: its enable_autograd() replaces each one with a version that also records the graph,
# under the same name, with the same docstring and signature (help(Tensor.__add__) still
# shows this one's docstring).
Tensor.__add__ = _add
Tensor.__radd__ = _radd
Tensor.__sub__ = _sub
Tensor.__rsub__ = _rsub
Tensor.__mul__ = _mul
Tensor.__rmul__ = _rmul
Tensor.__truediv__ = _truediv
Tensor.__rtruediv__ = _rtruediv
Tensor.__pow__ = _pow
Tensor.__rpow__ = _rpow
Tensor.__neg__ = _neg


# Comparisons return bool tensors that never require grad (provided).
def _compare(op):
    def method(self, other):
        return _wrap(op(self.data, _operand(other, self)))
    return method


Tensor.__lt__ = _compare(np.less)
Tensor.__le__ = _compare(np.less_equal)
Tensor.__gt__ = _compare(np.greater)
Tensor.__ge__ = _compare(np.greater_equal)
Tensor.__eq__ = _compare(np.equal)
Tensor.__ne__ = _compare(np.not_equal)


# %% nbgrader={"grade": true, "grade_id": "test-tensor-arithmetic", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_arithmetic():
    """Element-wise operations broadcast and stay float32."""
    x = Tensor([[1, 2, 3], [4, 5, 6]])  # (2, 3)
    x_before = x.data.copy()
    b = Tensor([10, 20, 30])  # (3,)
    np.testing.assert_allclose(assert_tensor(x + b, (2, 3), name="x + b").data, [[11, 22, 33], [14, 25, 36]])
    np.testing.assert_allclose(assert_tensor(x - 1, (2, 3), name="x - 1").data, [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_allclose((2 - x).data, [[1, 0, -1], [-2, -3, -4]])
    np.testing.assert_allclose(assert_tensor(x * x, (2, 3), name="x * x").data, [[1, 4, 9], [16, 25, 36]])
    np.testing.assert_allclose(assert_tensor(x / 2, (2, 3), name="x / 2").data, [[0.5, 1, 1.5], [2, 2.5, 3]])
    np.testing.assert_allclose((1 / Tensor([2, 4])).data, [0.5, 0.25])
    np.testing.assert_allclose(assert_tensor(x ** 2, (2, 3), name="x ** 2").data, [[1, 4, 9], [16, 25, 36]])
    np.testing.assert_allclose(assert_tensor(-x, (2, 3), name="-x").data, -x_before)
    np.testing.assert_allclose((x ** Tensor([1, 0, 2])).data, [[1, 1, 9], [4, 1, 36]])
    for out in (x + b, x * 0.5, x / 3, x ** 2, x + np.ones(3), x * np.ones(3), x - np.ones(3),
                x / np.full(3, 2.0), x ** np.full(3, 2.0)):
        assert_tensor(out, (2, 3), np.float32, name="an operation with a float64 array")
    np.testing.assert_array_equal(x.data, x_before, err_msg="an operation modified its input in place")
    assert (x > 3).dtype == np.bool_ and (x > 3).data.sum() == 3
    ### BEGIN HIDDEN TESTS
    np.testing.assert_allclose((np.ones(3) + b).data, [11, 21, 31])
    assert isinstance(np.ones(3) * b, Tensor)
    assert (b == Tensor([10, 0, 30])).data.tolist() == [True, False, True]
    try:
        x + Tensor([1, 2])
        raise AssertionError("(2, 3) + (2,) must fail")
    except ValueError:
        pass
    ### END HIDDEN TESTS


test_unit_arithmetic()

# %% [markdown]
# ## 3. Matrix multiplication, counted
#
# `C = A @ B` for `A (M, K)` and `B (K, N)`: every output `C[i, j]` is a dot product of row
# `i` of `A` with column `j` of `B`, which is `K` multiply-adds.
#
# ```
#        A (2, 3)          B (3, 2)          C (2, 2)
#   [[1, 2, 3],      [[7,  8],         C[0,0] = 1*7 + 2*9 + 3*11 = 58
#    [4, 5, 6]]   @   [9, 10],    ->   C[0,1] = 1*8 + 2*10 + 3*12 = 64
#                     [11, 12]]        C[1,0] = 4*7 + 5*9 + 6*11 = 139
#                                      C[1,1] = 4*8 + 5*10 + 6*12 = 154
#   work: M * N * K = 2 * 2 * 3 = 12 multiply-adds (24 FLOPs)
# ```
#
# For two 1000x1000 matrices that is 10^9 multiply-adds. Written as three Python loops it
# is hopeless; NumPy hands it to an optimized BLAS library that uses vector instructions,
# caches and all cores. You write both and measure the gap below.
#
# The inner dimensions must agree. A good error says *which* shapes disagreed:
# `Shape mismatch: (3, 4) @ (5, 2): inner dimensions 4 and 5 differ`.
#
# `matmul` follows NumPy: 2-D times 2-D, but also batches `(B, M, K) @ (K, N)` (the same
# weights for every batch element) and `(B, M, K) @ (B, K, N)`, which attention uses later.

# %% nbgrader={"grade": false, "grade_id": "tensor-matmul", "locked": false, "schema_version": 3, "solution": true}
#| export
def _check_matmul_shapes(a_shape: tuple, b_shape: tuple) -> None:
    """Raise ValueError naming both shapes if ``a @ b`` is impossible."""
    if len(a_shape) == 0 or len(b_shape) == 0:
        raise ValueError(f"Shape mismatch: {a_shape} @ {b_shape}: matmul needs at least 1-D operands")
    k_a = a_shape[-1]
    k_b = b_shape[0] if len(b_shape) == 1 else b_shape[-2]
    if k_a != k_b:
        raise ValueError(
            f"Shape mismatch: {a_shape} @ {b_shape}: inner dimensions {k_a} and {k_b} differ"
        )


def matmul_loops(a, b) -> Tensor:
    """Matrix product of two 2-D tensors with three explicit Python loops (for teaching).

    EXAMPLE: matmul_loops(Tensor([[1, 2]]), Tensor([[3], [4]])) -> Tensor([[11.]])
    HINTS:
        - Check shapes with ``_check_matmul_shapes`` first.
        - allocate the (M, N) result with ``np.result_type(a.dtype, b.dtype)``
        - three nested loops: over rows i of ``a``, columns j of ``b``, and the shared
          dimension k; each innermost step is one multiply-add ``a[i, k] * b[k, j]``
    """
    a = a if isinstance(a, Tensor) else Tensor(a)
    b = b if isinstance(b, Tensor) else Tensor(b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"matmul_loops needs 2-D tensors, got {a.shape} @ {b.shape}")
    ### BEGIN SOLUTION
    _check_matmul_shapes(a.shape, b.shape)
    A, B = a.data, b.data
    M, K = A.shape
    N = B.shape[1]
    out = np.zeros((M, N), dtype=np.result_type(A.dtype, B.dtype))
    for i in range(M):
        for j in range(N):
            total = 0.0
            for k in range(K):
                total += A[i, k] * B[k, j]
            out[i, j] = total
    return _wrap(out)
    ### END SOLUTION


def _matmul(self, other) -> Tensor:
    """self @ other with NumPy's matmul semantics (batched, broadcast batch dims).

    HINT: check the shapes (clear error), then one call to ``np.matmul``.
    """
    ### BEGIN SOLUTION
    b = _operand(other, self)
    b_shape = np.shape(b)
    _check_matmul_shapes(self.shape, b_shape)
    try:
        return _wrap(np.matmul(self.data, b))
    except ValueError as e:  # batch dimensions that do not broadcast
        raise ValueError(f"Shape mismatch: {self.shape} @ {b_shape}: {e}") from None
    ### END SOLUTION


def _rmatmul(self, other) -> Tensor:
    """other @ self (``np_array @ t``)."""
    return _matmul(other if isinstance(other, Tensor) else Tensor(other), self)


Tensor.matmul = _matmul  # module 05 replaces all three (same names, docstrings, signatures)
Tensor.__matmul__ = _matmul
Tensor.__rmatmul__ = _rmatmul


# %% nbgrader={"grade": true, "grade_id": "test-tensor-matmul", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_matmul():
    """Both matmuls agree with the worked example and with each other; errors name shapes."""
    A = Tensor([[1, 2, 3], [4, 5, 6]])  # (2, 3)
    B = Tensor([[7, 8], [9, 10], [11, 12]])  # (3, 2)
    np.testing.assert_allclose(assert_tensor(A @ B, (2, 2), name="A @ B").data, [[58, 64], [139, 154]])
    np.testing.assert_allclose(assert_tensor(matmul_loops(A, B), (2, 2), name="matmul_loops(A, B)").data,
                               [[58, 64], [139, 154]])
    np.testing.assert_allclose(assert_tensor(A.matmul(B), (2, 2), name="A.matmul(B)").data, [[58, 64], [139, 154]])
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((4, 5, 3)).astype(np.float32))  # (B, M, K)
    assert_tensor(x @ B, (4, 5, 2), name="batched matmul (4, 5, 3) @ (3, 2)")
    np.testing.assert_allclose((x @ B).data, x.data @ B.data, rtol=1e-5)
    try:
        Tensor(np.zeros((3, 4))) @ Tensor(np.zeros((5, 2)))
        raise AssertionError("(3, 4) @ (5, 2) must raise")
    except ValueError as e:
        assert "(3, 4)" in str(e) and "(5, 2)" in str(e), f"the error must name both shapes: {e}"
    ### BEGIN HIDDEN TESTS
    p = Tensor(rng.standard_normal((7, 5)).astype(np.float32))
    q = Tensor(rng.standard_normal((5, 6)).astype(np.float32))
    np.testing.assert_allclose(matmul_loops(p, q).data, p.data @ q.data, rtol=1e-5, atol=1e-5)
    assert (Tensor(np.ones(3)) @ B).shape == (2,)
    ### END HIDDEN TESTS


test_unit_matmul()

# %% [markdown]
# ## 4. Changing the view: reshape, transpose, permute
#
# The same 6 numbers can be read as `(2, 3)`, `(3, 2)`, `(6,)` or `(1, 2, 3)`. `reshape`
# changes the shape, not the numbers, and `-1` means "whatever makes the count right":
#
# ```
#   [0 1 2 3 4 5]  (6,)  --reshape(2, -1)-->  [[0 1 2]      (2, 3)
#                                              [3 4 5]]
#   --transpose()-->  [[0 3]                                 (3, 2)
#                      [1 4]
#                      [2 5]]
# ```
#
# `transpose(dim0, dim1)` swaps two axes (by default the last two, so a batch of matrices
# transposes each matrix); `permute(*dims)` reorders all of them, e.g. images
# `(B, H, W, C) -> (B, C, H, W)` with `permute(0, 3, 1, 2)`. NumPy does these without
# copying: it only changes the *strides* (how many bytes to jump per axis).
#
# The argument checks are provided: `_reshape_arg` refuses a shape the elements cannot fill
# (6 numbers into `(4, 2)`) with an error that names both shapes, and `_permute_arg` wants one
# axis per dimension. Module 05's differentiable `reshape` and `permute` call the same two
# helpers, so the rules (and the messages) live here only. Your part is the NumPy call.

# %% nbgrader={"grade": false, "grade_id": "tensor-shape-ops", "locked": false, "schema_version": 3, "solution": true}
#| export
def _shape_arg(shape: tuple) -> tuple:
    """Accept both ``reshape(2, 3)`` and ``reshape((2, 3))``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return shape


def _reshape_arg(t: Tensor, shape: tuple) -> tuple:
    """The shape argument of ``t.reshape(...)`` as a tuple, or a ValueError naming both shapes
    when ``t``'s elements cannot fill it (checked here, not deep inside NumPy; module 05's
    differentiable reshape checks with it too)."""
    shape = tuple(_shape_arg(shape))
    known = 1
    for n in shape:
        if n != -1:
            known *= int(n)
    fits = known == t.size if -1 not in shape else known != 0 and t.size % known == 0
    if not fits:
        raise ValueError(f"cannot reshape a tensor of shape {t.shape} ({t.size} elements) "
                         f"into shape {shape}")
    return shape


def _permute_arg(t: Tensor, dims: tuple) -> tuple:
    """The axes of ``t.permute(...)`` as a tuple (``permute(2, 0, 1)`` or ``permute((2, 0, 1))``),
    one per axis of ``t``, or a ValueError (module 05's permute checks with it too)."""
    dims = tuple(_shape_arg(dims))
    if len(dims) != t.ndim:
        raise ValueError(f"permute needs {t.ndim} dims for shape {t.shape}, got {dims}")
    return dims


def _reshape(self, *shape) -> Tensor:
    """A tensor with the same numbers in a new shape (``-1`` allowed).

    EXAMPLE: Tensor(np.arange(6)).reshape(2, -1).shape -> (2, 3)
    """
    shape = _reshape_arg(self, shape)
    ### BEGIN SOLUTION
    return _wrap(self.data.reshape(shape))
    ### END SOLUTION


def _transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
    """Swap two axes (the last two by default). HINT: ``np.swapaxes``."""
    ### BEGIN SOLUTION
    return _wrap(np.swapaxes(self.data, dim0, dim1))
    ### END SOLUTION


def _permute(self, *dims) -> Tensor:
    """Reorder all axes. EXAMPLE: x of shape (2, 3, 4): x.permute(2, 0, 1).shape -> (4, 2, 3)"""
    dims = _permute_arg(self, dims)
    ### BEGIN SOLUTION
    return _wrap(np.transpose(self.data, dims))
    ### END SOLUTION


Tensor.reshape = _reshape  # module 05 replaces these three with differentiable versions
Tensor.transpose = _transpose
Tensor.permute = _permute
# .T reverses the axes (for a matrix: the usual transpose), like NumPy.
Tensor.T = property(lambda self: self.permute(*reversed(range(self.ndim))))


# %% nbgrader={"grade": true, "grade_id": "test-tensor-shape-ops", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_shape_ops():
    """reshape / transpose / permute / T move numbers as NumPy does."""
    x = Tensor(np.arange(6))
    int64 = np.arange(6).dtype
    assert_tensor(x.reshape(2, -1), (2, 3), int64, name="reshape(2, -1)")
    assert_tensor(x.reshape((3, 2)), (3, 2), int64, name="reshape((3, 2))")
    m = x.reshape(2, 3)
    np.testing.assert_array_equal(assert_tensor(m.transpose(), (3, 2), int64, name="transpose()").data,
                                  [[0, 3], [1, 4], [2, 5]])
    np.testing.assert_array_equal(m.T.data, m.transpose().data)
    y = Tensor(np.arange(24).reshape(2, 3, 4))
    np.testing.assert_array_equal(assert_tensor(y.permute(2, 0, 1), (4, 2, 3), int64, name="permute").data,
                                  np.transpose(y.data, (2, 0, 1)))
    np.testing.assert_array_equal(assert_tensor(y.transpose(), (2, 4, 3), int64, name="transpose()").data,
                                  np.swapaxes(y.data, 1, 2))
    assert_tensor(y.transpose(0, 2), (4, 3, 2), int64, name="transpose(0, 2)")
    try:
        x.reshape(4, 2)
        raise AssertionError("6 elements cannot become (4, 2)")
    except ValueError as e:
        assert "(6,)" in str(e), f"the error should name the original shape: {e}"
    ### BEGIN HIDDEN TESTS
    assert y.permute((0, 2, 1)).shape == (2, 4, 3)
    ### END HIDDEN TESTS


test_unit_shape_ops()

# %% [markdown]
# ## 5. Reductions and element-wise math
#
# A reduction collapses one or more axes. `axis` says which; `keepdims=True` leaves a size-1
# axis behind so the result still broadcasts against the input (that is how softmax
# subtracts each row's maximum):
#
# ```
#   x (2, 3) = [[1, 2, 3],        x.sum()                   -> 21          shape ()
#               [4, 5, 6]]        x.sum(axis=0)             -> [5, 7, 9]   shape (3,)
#                                 x.sum(axis=1)             -> [6, 15]     shape (2,)
#                                 x.max(axis=1, keepdims=True) -> [[3],[6]] shape (2, 1)
#                                 x.mean()                  -> 3.5
# ```
#
# One trap: NumPy's mean of an integer or bool array is float64. Accuracy is often
# computed as `(pred == label).mean()`, so for non-float tensors we ask for float32.
#
# `exp`, `log` and `sqrt` apply a function to every element. They are the building blocks
# of softmax, cross-entropy and normalization.

# %% nbgrader={"grade": false, "grade_id": "tensor-reductions", "locked": false, "schema_version": 3, "solution": true}
#| export
def _reduce_args(axis, keepdims, dim, keepdim, who: str):
    """NumPy's ``axis=``/``keepdims=`` or PyTorch's ``dim=``/``keepdim=`` -> (axis, keepdims) (provided)."""
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{who}(): give axis= (NumPy) or dim= (PyTorch), not both")
        axis = dim
    if keepdim is not None:
        keepdims = keepdim
    if isinstance(axis, list):
        axis = tuple(axis)
    return axis, bool(keepdims)


def _sum(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    """Sum over ``axis`` (None: all elements; an int or a tuple of ints)."""
    axis, keepdims = _reduce_args(axis, keepdims, dim, keepdim, "sum")
    ### BEGIN SOLUTION
    return _wrap(np.asarray(self.data.sum(axis=axis, keepdims=keepdims)))
    ### END SOLUTION


def _mean(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    """Mean over ``axis``; integer and bool tensors give float32 (not NumPy's float64)."""
    axis, keepdims = _reduce_args(axis, keepdims, dim, keepdim, "mean")
    ### BEGIN SOLUTION
    dtype = None if np.issubdtype(self.dtype, np.floating) else np.float32
    return _wrap(np.asarray(self.data.mean(axis=axis, keepdims=keepdims, dtype=dtype)))
    ### END SOLUTION


def _max(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    """Maximum over ``axis``. PyTorch's spelling ``max(dim=1)`` returns (values, indices) (section 7)."""
    if dim is not None:
        return _values_indices(self, "max", dim, keepdim)
    axis, keepdims = _reduce_args(axis, keepdims, None, keepdim, "max")
    ### BEGIN SOLUTION
    return _wrap(np.asarray(self.data.max(axis=axis, keepdims=keepdims)))
    ### END SOLUTION


def _exp(self) -> Tensor:
    """e ** x element-wise."""
    ### BEGIN SOLUTION
    return _wrap(np.exp(self.data))
    ### END SOLUTION


def _log(self) -> Tensor:
    """Natural logarithm element-wise."""
    ### BEGIN SOLUTION
    return _wrap(np.log(self.data))
    ### END SOLUTION


def _sqrt(self) -> Tensor:
    """Square root element-wise."""
    ### BEGIN SOLUTION
    return _wrap(np.sqrt(self.data))
    ### END SOLUTION


Tensor.sum = _sum  # module 05 replaces these six with differentiable versions
Tensor.mean = _mean
Tensor.max = _max
Tensor.exp = _exp
Tensor.log = _log
Tensor.sqrt = _sqrt


# %% nbgrader={"grade": true, "grade_id": "test-tensor-reductions", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_reductions():
    """Reductions honour axis and keepdims; element-wise math matches NumPy."""
    x = Tensor([[1, 2, 3], [4, 5, 6]])  # (2, 3)
    assert assert_tensor(x.sum(), (), name="x.sum()").item() == 21
    np.testing.assert_allclose(assert_tensor(x.sum(axis=0), (3,), name="sum(axis=0)").data, [5, 7, 9])
    np.testing.assert_allclose(assert_tensor(x.sum(axis=1, keepdims=True), (2, 1), name="sum(axis=1, keepdims=True)").data,
                               [[6], [15]])
    np.testing.assert_allclose(assert_tensor(x.mean(axis=1), (2,), name="mean(axis=1)").data, [2, 5])
    np.testing.assert_allclose(assert_tensor(x.mean(axis=0, keepdims=True), (1, 3), name="mean(axis=0, keepdims=True)").data,
                               [[2.5, 3.5, 4.5]])
    m = assert_tensor(x.max(axis=1, keepdims=True), (2, 1), name="max(axis=1, keepdims=True)")
    np.testing.assert_allclose(m.data, [[3], [6]])
    np.testing.assert_allclose(assert_tensor(x.max(axis=0), (3,), name="max(axis=0)").data, [4, 5, 6])
    np.testing.assert_allclose(assert_tensor(x.exp(), (2, 3), name="exp()").data, np.exp(x.data), rtol=1e-6)
    np.testing.assert_allclose(assert_tensor(x.log(), (2, 3), name="log()").data, np.log(x.data), rtol=1e-6)
    np.testing.assert_allclose(assert_tensor(Tensor([4, 9]).sqrt(), (2,), name="sqrt()").data, [2, 3])
    assert_tensor(x.mean(), (), np.float32, name="x.mean()")
    acc = (Tensor(np.array([1, 2, 3])) == Tensor(np.array([1, 0, 3]))).mean()
    assert acc.dtype == np.float32, f"mean of a bool tensor must be float32, got {acc.dtype}"
    ### BEGIN HIDDEN TESTS
    assert x.sum(axis=(0, 1)).item() == 21
    np.testing.assert_allclose(x.max().item(), 6)
    ### END HIDDEN TESTS


test_unit_reductions()

# %% [markdown]
# ## 6. Indexing
#
# `x[i]`, `x[1:3]`, `x[:, 0]`, `x[[0, 2]]` and `x[mask]` behave exactly like NumPy. Index
# arrays are how a loss picks the logit of the correct class for every row:
#
# ```
#   logits (3, 4)          labels [2, 0, 3]
#   logits[[0, 1, 2], labels]  ->  [logits[0, 2], logits[1, 0], logits[2, 3]]   shape (3,)
# ```

# %% nbgrader={"grade": false, "grade_id": "tensor-getitem", "locked": false, "schema_version": 3, "solution": true}
#| export
def _index_arg(index):
    """Replace Tensors inside an index by their arrays (provided)."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _getitem(self, index) -> Tensor:
    """self[index] with NumPy semantics (ints, slices, index arrays, boolean masks)."""
    index = _index_arg(index)
    ### BEGIN SOLUTION
    return _wrap(np.asarray(self.data[index]))
    ### END SOLUTION


Tensor.__getitem__ = _getitem  # module 05 replaces it with a differentiable version


# %% nbgrader={"grade": true, "grade_id": "test-tensor-getitem", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_getitem():
    """Indexing returns Tensors with NumPy semantics."""
    x = Tensor(np.arange(12).reshape(3, 4))
    assert_tensor(x[0], (4,), x.dtype, name="x[0]")
    assert assert_tensor(x[:, 1], (3,), x.dtype, name="x[:, 1]").data.tolist() == [1, 5, 9]
    labels = Tensor(np.array([2, 0, 3]))
    assert x[np.arange(3), labels].data.tolist() == [2, 4, 11]
    assert x[x > 9].data.tolist() == [10, 11]
    assert isinstance(x[1, 1], Tensor) and x[1, 1].item() == 5
    ### BEGIN HIDDEN TESTS
    assert x[1:, ::2].shape == (2, 2)
    ### END HIDDEN TESTS


test_unit_getitem()

# %% [markdown]
# ## 7. PyTorch habits: the same Tensor, spelled the PyTorch way
#
# Most readers of this course will also write PyTorch, and PyTorch spells a few things
# differently from NumPy. The Tensor accepts both spellings wherever they do not collide:
#
# ```
#   NumPy habit                      PyTorch habit                   here
#   x.sum(axis=0, keepdims=True)     x.sum(dim=0, keepdim=True)      both
#   x.max(axis=1)  -> values         x.max(dim=1) -> (values, idx)   both (the keyword decides)
#   x.argmax(axis=1)                 x.argmax(dim=1)                 both
#   x.reshape(2, 3)                  x.view(2, 3)                    both (view never copies)
#   x[:, None], np.squeeze(x)        x.unsqueeze(1), x.squeeze(1)    both
#   x.size -> 6  (element count)     x.size() -> (2, 3), x.size(0)   both: see below
#   x.astype(np.float32)             x.float(), x.long()             PyTorch's
#   np.clip(x, 0, 1), np.abs(x)      x.clamp(0, 1), x.abs()          PyTorch's
#   x.copy(), x.tolist()             x.clone(), x.tolist()           PyTorch's
# ```
#
# Where the habits collide we had to choose, and the choice is a rule you can remember:
#
# - **`max` with a position argument.** `x.max(1)` is NumPy's (the maximum values);
#   `x.max(dim=1)` is PyTorch's: a pair `(values, indices)` you can unpack, as
#   `values, idx = x.max(dim=1)`. Every line of this course written before this section uses
#   NumPy's `axis=`, so the positional form keeps NumPy's meaning; the keyword `dim=` is the
#   unambiguous PyTorch spelling. (Beware: a `(2, 3)` result also unpacks into two rows, so
#   `v, i = x.max(1)` would not fail; write `dim=`.)
# - **`size`.** NumPy's `a.size` is the number of elements (an int attribute); PyTorch's
#   `t.size()` is the shape (a method), and `t.numel()` the count. They never appear in the
#   same syntactic form, so `size` here is an int that you can also call:
#   `t.size == 6` and `t.size() == (2, 3)` and `t.size(0) == 2` all hold. Code written
#   for either library reads the answer it expects.
# - **`squeeze(dim)` of an axis that is not 1** is an error in NumPy and does nothing in
#   PyTorch. We follow PyTorch: these are PyTorch's names, so they keep PyTorch's meaning.
# - **`Tensor([1, 2])` is float32**, where `torch.tensor([1, 2])` is int64. Section 1's rule
#   (Python numbers become float32, integer *arrays* keep their dtype) holds for
#   `tinytorch.tensor(...)` too: one rule, not two.
#
# Your part: `argmax`, `unsqueeze` and `squeeze` (write the last two with `self.reshape`:
# module 05 makes `reshape` differentiable, so they will be too, for free) and `clamp`.
#
# ```
#   x (2, 3) = [[1, 9, 3],      x.argmax(dim=1)                -> [1, 2]      int64, (2,)
#               [4, 5, 6]]      x.argmax()                     -> 1           index in x.flatten()
#                               x.unsqueeze(0).shape           -> (1, 2, 3)
#                               x.unsqueeze(-1).shape          -> (2, 3, 1)
#                               x.unsqueeze(0).squeeze().shape -> (2, 3)
#                               x.clamp(2, 5)                  -> [[2, 5, 3], [4, 5, 5]]
# ```

# %% nbgrader={"grade": false, "grade_id": "tensor-pytorch-habits", "locked": false, "schema_version": 3, "solution": true}
#| export
def _argmax(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    """Index of the maximum along ``axis`` (None: index into the flattened tensor), int64.

    HINT: ``np.argmax`` takes ``axis`` and ``keepdims``; wrap its result with ``_wrap``.
    """
    axis, keepdims = _reduce_args(axis, keepdims, dim, keepdim, "argmax")
    ### BEGIN SOLUTION
    return _wrap(np.asarray(np.argmax(self.data, axis=axis, keepdims=keepdims)).astype(np.int64, copy=False))
    ### END SOLUTION


def _unsqueeze(self, dim: int) -> Tensor:
    """A new axis of size 1 at position ``dim`` (negative counts from the end of the result).

    HINT: insert 1 into ``list(self.shape)`` at ``dim % (self.ndim + 1)``, then ``self.reshape``.
    """
    if not -(self.ndim + 1) <= dim <= self.ndim:
        raise IndexError(f"unsqueeze: dim {dim} is out of range for a {self.ndim}-D tensor")
    ### BEGIN SOLUTION
    shape = list(self.shape)
    shape.insert(dim % (self.ndim + 1), 1)
    return self.reshape(tuple(shape))
    ### END SOLUTION


def _squeeze(self, dim=None) -> Tensor:
    """Drop axes of size 1: all of them, or only ``dim`` (a no-op if that axis is not 1).

    HINT: keep the sizes you do not drop, then ``self.reshape``.
    """
    if dim is not None and not -self.ndim <= dim < max(self.ndim, 1):
        raise IndexError(f"squeeze: dim {dim} is out of range for a {self.ndim}-D tensor")
    ### BEGIN SOLUTION
    if dim is None:
        shape = tuple(n for n in self.shape if n != 1)
    else:
        d = dim % self.ndim if self.ndim else 0
        shape = tuple(n for i, n in enumerate(self.shape) if i != d or n != 1)
    return self.reshape(shape)
    ### END SOLUTION


def _check_clamp(min, max) -> None:
    """clamp() needs at least one bound (provided; module 05's clamp checks with it too)."""
    if min is None and max is None:
        raise ValueError("clamp: give min, max or both")


def _clamp(self, min=None, max=None) -> Tensor:
    """Every element limited to ``[min, max]`` (either bound may be None). HINT: ``np.clip``."""
    _check_clamp(min, max)
    ### BEGIN SOLUTION
    return _wrap(np.clip(self.data, min, max))
    ### END SOLUTION


# The rest is provided: each is one NumPy call or built on what you wrote.
def _values_indices(t: Tensor, which: str, dim: int, keepdim):
    """PyTorch's ``max(dim=)`` / ``min(dim=)``: the pair (values, indices), values differentiable."""
    keepdim = bool(keepdim)
    values = getattr(t, which)(axis=dim, keepdims=keepdim)
    indices = (t if which == "max" else -t).argmax(axis=dim, keepdims=keepdim)
    return ValuesIndices(values, indices)


class ValuesIndices(tuple):
    """``(values, indices)`` that also has ``.values`` and ``.indices``, like PyTorch's result."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


def _min(self, axis=None, keepdims: bool = False, *, dim=None, keepdim=None):
    """Minimum over ``axis``: ``-max(-x)``, so module 05's Max makes it differentiable too."""
    if dim is not None:
        return _values_indices(self, "min", dim, keepdim)
    return -((-self).max(axis=axis, keepdims=keepdims if keepdim is None else keepdim))


def _view(self, *shape) -> Tensor:
    """``reshape`` that never copies, like PyTorch's view: an error if the memory layout forbids it."""
    shape = _shape_arg(shape)
    try:
        np.reshape(self.data, shape, copy=False)
    except ValueError:
        raise ValueError(f"view: a tensor of shape {self.shape} cannot be viewed as {tuple(shape)} without "
                         "a copy (it is not contiguous, e.g. after a transpose); use reshape") from None
    return self.reshape(shape)


def _flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge axes ``start_dim..end_dim`` into one (all of them by default)."""
    if self.ndim == 0:
        return self.reshape(1)
    s, e = start_dim % self.ndim, end_dim % self.ndim
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return self.reshape(self.shape[:s] + (-1,) + self.shape[e + 1:])


Tensor.argmax = _argmax
Tensor.argmin = lambda self, axis=None, keepdims=False, *, dim=None, keepdim=None: (-self).argmax(
    axis, keepdims, dim=dim, keepdim=keepdim)
Tensor.unsqueeze = _unsqueeze
Tensor.squeeze = _squeeze
Tensor.clamp = _clamp
Tensor.min = _min
Tensor.view = _view
Tensor.flatten = _flatten
def _abs(self) -> Tensor:
    """|x| element-wise."""
    return _wrap(np.abs(self.data))


def _float(self) -> Tensor:
    """The tensor as float32 (itself if it already is)."""
    return self if self.dtype == np.float32 else _wrap(self.data.astype(np.float32))


def _clone(self) -> Tensor:
    """A copy that shares no memory with this tensor."""
    return _wrap(self.data.copy())


Tensor.abs = _abs  # abs, float and clone: module 05 replaces them with differentiable versions
Tensor.float = _float
Tensor.long = lambda self: _wrap(self.data.astype(np.int64))
Tensor.clone = _clone
Tensor.tolist = lambda self: self.data.tolist()
Tensor.numel = lambda self: int(self.data.size)
Tensor.dim = lambda self: self.data.ndim


# Top-level factories, as `tinytorch.tensor(...)`, `tinytorch.zeros(...)` (provided).
_GENERATOR = [np.random.default_rng()]


def manual_seed(seed: int) -> None:
    """Seed the generator that ``randn`` and the layers made without ``seed=`` draw from."""
    _GENERATOR[0] = np.random.default_rng(int(seed))


def default_rng(seed=None) -> np.random.Generator:
    """``np.random.default_rng(seed)``; without a seed, the generator ``manual_seed`` set."""
    return _GENERATOR[0] if seed is None else np.random.default_rng(seed)


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """``Tensor(data, ...)``: the same dtype rules (section 1)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def zeros(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape_arg(shape), dtype=dtype), requires_grad=requires_grad, dtype=dtype)


def ones(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape_arg(shape), dtype=dtype), requires_grad=requires_grad, dtype=dtype)


def randn(*shape, requires_grad: bool = False) -> Tensor:
    """Standard-normal float32 numbers from the ``manual_seed`` generator."""
    data = default_rng().standard_normal(_shape_arg(shape), dtype=np.float32)
    return Tensor(data, requires_grad=requires_grad)


# %% nbgrader={"grade": true, "grade_id": "test-tensor-pytorch-habits", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_pytorch_habits():
    """argmax, unsqueeze, squeeze and clamp; both spellings of the reductions."""
    x = Tensor([[1, 9, 3], [4, 5, 6]])  # (2, 3)
    am = assert_tensor(x.argmax(dim=1), (2,), np.int64, name="argmax(dim=1)")
    assert am.tolist() == [1, 2], f"argmax(dim=1): {am}"
    assert assert_tensor(x.argmax(), (), np.int64, name="argmax()").item() == 1
    assert assert_tensor(x.argmax(axis=0), (3,), np.int64, name="argmax(axis=0)").tolist() == [1, 0, 1]
    assert_tensor(x.argmax(dim=1, keepdim=True), (2, 1), np.int64, name="argmax(dim=1, keepdim=True)")
    assert_tensor(x.unsqueeze(0), (1, 2, 3), name="unsqueeze(0)")
    assert_tensor(x.unsqueeze(-1), (2, 3, 1), name="unsqueeze(-1)")
    assert_tensor(x.unsqueeze(1), (2, 1, 3), name="unsqueeze(1)")
    assert_tensor(x.unsqueeze(0).squeeze(), (2, 3), name="unsqueeze(0).squeeze()")
    assert_tensor(x.unsqueeze(1).squeeze(1), (2, 3), name="unsqueeze(1).squeeze(1)")
    assert_tensor(x.squeeze(0), (2, 3), name="squeeze(0) of an axis that is not 1 (changes nothing, as in PyTorch)")
    assert_tensor(x.unsqueeze(0).unsqueeze(-1).squeeze(-1), (1, 2, 3), name="squeeze(-1) drops only that axis")
    c = assert_tensor(x.clamp(2, 5), (2, 3), name="clamp(2, 5)")
    assert c.tolist() == [[2, 5, 3], [4, 5, 5]]
    assert x.clamp(min=4).tolist() == [[4, 9, 4], [4, 5, 6]]
    assert x.tolist() == [[1, 9, 3], [4, 5, 6]], "clamp must not change its input"
    s = assert_tensor(x.sum(dim=0, keepdim=True), (1, 3), name="sum(dim=0, keepdim=True)")
    np.testing.assert_array_equal(s.data, [[5, 14, 9]])
    values, idx = x.max(dim=1)
    assert_tensor(values, (2,), name="max(dim=1) values")
    assert_tensor(idx, (2,), np.int64, name="max(dim=1) indices")
    assert values.tolist() == [9, 6] and idx.tolist() == [1, 2]
    assert x.size == 6 and x.size() == (2, 3) and x.size(1) == 3
    ### BEGIN HIDDEN TESTS
    assert Tensor(np.zeros((1, 3, 1))).squeeze().shape == (3,)
    assert Tensor(np.zeros((1, 3, 1))).squeeze(-1).shape == (1, 3)
    assert x.clamp(max=2).tolist() == [[1, 2, 2], [2, 2, 2]]
    assert x.min(dim=0).indices.tolist() == [0, 1, 0]
    ### END HIDDEN TESTS


test_unit_pytorch_habits()

# %% [markdown]
# ## 8. Everything together
#
# A single linear layer's forward pass uses most of what you built: `y = x @ W + b`, then a
# reduction. If this works, module 03's `Linear` is a few lines away.

# %% nbgrader={"grade": true, "grade_id": "test-tensor-module", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_module():
    """A linear layer plus softmax-style arithmetic, end to end in float32."""
    rng = np.random.default_rng(42)
    x = Tensor(rng.standard_normal((8, 4)))  # (B, in) float64 input becomes float32
    W = Tensor(rng.standard_normal((4, 3)) * 0.5)  # (in, out)
    b = Tensor(np.zeros(3))  # (out,)
    y = x @ W + b  # (B, out)
    assert y.shape == (8, 3) and y.dtype == np.float32
    z = (y - y.max(axis=1, keepdims=True)).exp()  # (B, out)
    p = z / z.sum(axis=1, keepdims=True)  # (B, out)
    np.testing.assert_allclose(p.sum(axis=1).data, np.ones(8), rtol=1e-6)
    assert p.dtype == np.float32, f"expected float32 all the way, got {p.dtype}"
    ref = x.data @ W.data + b.data
    np.testing.assert_allclose(y.data, ref, rtol=1e-5)
    total = sum(t.memory_footprint() for t in (x, W, b, y))
    assert total == (8 * 4 + 4 * 3 + 3 + 8 * 3) * 4
    ### BEGIN HIDDEN TESTS
    np.testing.assert_allclose(matmul_loops(x, W).data, (x @ W).data, rtol=1e-5, atol=1e-6)
    ### END HIDDEN TESTS


test_module()

# %% [markdown]
# ## Systems measurement: memory and the cost of loops
#
# First, memory. `C = A @ B` with three 1000x1000 float32 matrices: each holds 10^6 numbers
# of 4 bytes. We measure it with your `memory_footprint()` rather than trusting arithmetic.
# Then, time: the same 64x64 product with your triple loop and with `np.matmul`.

# %%
import time

rng = np.random.default_rng(0)
A = Tensor(rng.standard_normal((1000, 1000), dtype=np.float32))  # (1000, 1000)
B = Tensor(rng.standard_normal((1000, 1000), dtype=np.float32))  # (1000, 1000)
t0 = time.perf_counter()
C = A @ B  # (1000, 1000)
t_big = time.perf_counter() - t0
total_bytes = sum(t.memory_footprint() for t in (A, B, C))
print(f"(1000x1000) @ (1000x1000) float32: A, B and C hold {total_bytes:,} bytes "
      f"= {total_bytes / 1e6:.1f} MB")
print(f"  the same three matrices in float64 would need "
      f"{sum(t.data.astype(np.float64).nbytes for t in (A, B, C)) / 1e6:.1f} MB")
print(f"  np.matmul took {t_big * 1e3:.1f} ms for 1e9 multiply-adds "
      f"= {2e9 / t_big / 1e9:.1f} GFLOP/s")

n = 64
a = Tensor(rng.standard_normal((n, n), dtype=np.float32))  # (64, 64)
b = Tensor(rng.standard_normal((n, n), dtype=np.float32))  # (64, 64)
t0 = time.perf_counter()
c_loops = matmul_loops(a, b)
t_loops = time.perf_counter() - t0
repeats = 200
t0 = time.perf_counter()
for _ in range(repeats):
    c_fast = a @ b
t_fast = (time.perf_counter() - t0) / repeats
assert np.allclose(c_loops.data, c_fast.data, rtol=1e-4, atol=1e-4)
print(f"{n}x{n} @ {n}x{n} ({n ** 3:,} multiply-adds): loops {t_loops * 1e3:.1f} ms, "
      f"vectorized {t_fast * 1e6:.1f} us -> {t_loops / t_fast:,.0f}x faster")
print(f"  at the loop speed, 1000x1000 would take about {t_loops * (1000 / n) ** 3:.0f} s")

# %% [markdown]
# ## Reflect
#
# 1. Your measurement shows 12 MB for one 1000x1000 product in float32. A batch of 64 images
#    of 224x224x3 pixels stored as float32: how many MB? In float64? Why does the constructor
#    refuse to keep float64 silently?
# 2. The triple loop does `M * N * K` multiply-adds, and so does BLAS. Both are O(n^3), yet
#    you measured a gap of several hundred (or thousand) times. Name three things the fast
#    version does that the loop does not (think: interpreter overhead per operation, vector
#    instructions, cache reuse, threads).
# 3. Doubling `n` multiplies matmul work by 8 but memory by only 4. For large `n`, which
#    becomes the bottleneck first on your laptop, and why do GPUs love large matmuls?
# 4. `reshape` and `transpose` return views that share memory with the original. What can go
#    wrong if you later modify the view in place? When is a copy unavoidable (hint: reshape a
#    transposed matrix)?
# 5. `x + b` with `x (B, out)` and `b (out,)` never materializes `B` copies of `b`. How much
#    memory does broadcasting save for `B = 128`, `out = 256` in float32?
# 6. `x.max(1)` gives the values here and `(values, indices)` in PyTorch; `x.size` is a count
#    here and `x.size()` a shape in PyTorch. Which bugs can each choice cause in code ported
#    from the other library, and why does a keyword (`dim=`) make the intent unambiguous?
