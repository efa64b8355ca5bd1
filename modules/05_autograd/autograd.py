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
# # Module 05: Autograd
#
# Training a network means computing how the loss changes with every one of its (possibly
# millions of) parameters. Doing that by hand for each new architecture is impossible;
# *automatic differentiation* does it for any program built from differentiable operations.
# In this module you give TinyTorch's `Tensor` a memory: every operation records which
# operation produced its result and from which inputs. Calling `loss.backward()` walks this
# recorded graph backwards and applies the chain rule, one small local derivative at a time.
# You build the `Function` base class, the backward pass, the derivatives of every operation
# of modules 01-04, `no_grad()`, and a gradient checker that catches wrong derivatives.
# Then `enable_autograd()` switches it all on for the one `Tensor` class you already have:
# the code of modules 01-04 does not change, it simply starts producing gradients.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far              you build now                    this unlocks
#   ------------              -------------                    ------------
#   01 Tensor       ----->    05 Autograd               ----->  06 Optimizers (SGD, Adam use .grad)
#   02 Activations            Function: forward + backward      07 Training loops
#   03 Layers                 unbroadcast                       09, 11-13: every new layer writes
#   04 Losses                 backward(): topological order         only its forward and backward
#                             gradient accumulation, no_grad    milestones 2-6: learning
#                             gradcheck: trust, but verify
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp core.autograd
#| export
#| namespace tinytorch no_grad is_grad_enabled
from __future__ import annotations

import ctypes
import functools
import numbers
import os
import types
import warnings

import numpy as np

from tinytorch.core import activations, losses
from tinytorch.core.activations import _GELU_C, _check_dim, _float_data
from tinytorch.core.losses import _check_probabilities, _check_same_shape, _class_indices
from tinytorch.core.tensor import (
    Tensor,
    _check_clamp,
    _check_matmul_shapes,
    _index_arg,
    _operand,
    _permute_arg,
    _reduce_args,
    _reshape_arg,
    _values_indices,
    _wrap,
)

__all__ = [
    "Function", "unbroadcast", "no_grad", "is_grad_enabled", "enable_autograd", "gradcheck",
    "backward_pass", "topological_order", "keep_freed_memory",
]

# %% [markdown]
# ## 1. The idea: a graph of small functions
#
# Take `loss = (x * w + b).sum()` with `x = [1, 2]`, `w = [3, 4]`, `b = 0.5`:
#
# ```
#   forward (left to right)                      backward (right to left)
#
#   x [1, 2] --\                                 dloss/dloss = 1
#               Mul --> m [3, 8] --\             dloss/ds = [1, 1]          (Sum: copy to every element)
#   w [3, 4] --/                    Add --> s --> Sum --> loss = 12.0
#   b 0.5  ------------------------/  [3.5, 8.5]
#
#   Add:  dloss/dm = [1, 1]   dloss/db = 1 + 1 = 2    (b was broadcast: sum it back)
#   Mul:  dloss/dw = dloss/dm * x = [1, 2]            dloss/dx = dloss/dm * w = [3, 4]
# ```
#
# Each operation only knows its *local* rule: given the gradient of the loss with respect to
# its output (`grad_out`), return the gradient with respect to each input. The chain rule
# glues these local rules together. Three things make this work:
#
# 1. every result remembers the operation that made it (`tensor._ctx`) and that operation
#    remembers its inputs and whatever it needs for the backward rule (`saved`);
# 2. `backward()` visits operations in reverse topological order, so an operation's
#    `grad_out` is complete (all its consumers have contributed) before it runs;
# 3. leaves (parameters, inputs with `requires_grad=True`) *accumulate* into `.grad`.
#
# The switch that turns recording on and off is global: inside `with no_grad():` nothing is
# recorded (evaluation, optimizer updates). It is provided here.

# %% nbgrader={"grade": false, "grade_id": "grad-mode", "locked": true, "schema_version": 3, "solution": false}
#| export
_GRAD_ENABLED = True


def is_grad_enabled() -> bool:
    """True when operations record a graph (the default)."""
    return _GRAD_ENABLED


class no_grad:
    """Context manager (and decorator) that turns graph recording off.

    EXAMPLE:
        with no_grad():
            y = model(x)      # no graph, no memory kept for backward
    """

    def __enter__(self):
        global _GRAD_ENABLED
        self._previous = _GRAD_ENABLED
        _GRAD_ENABLED = False
        return self

    def __exit__(self, *exc):
        global _GRAD_ENABLED
        _GRAD_ENABLED = self._previous
        return False

    def __call__(self, fn):
        @functools.wraps(fn)  # the wrapper keeps fn's name, docstring and signature
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        return wrapper


# %% [markdown]
# ## 2. `Function`: one operation, forward and backward
#
# A `Function` subclass writes two NumPy methods:
#
# ```
#   forward(self, *arrays, **kwargs) -> array      arrays in, array out (no Tensors)
#   backward(self, grad_out)          -> tuple      one gradient (array or None) per input
# ```
#
# and never calls them directly. `Function.apply(*inputs)` is the only entry point:
#
# ```
#   Mul.apply(x, w)
#     1. ctx = Mul()                          a fresh node for this one call
#     2. inputs that are not Tensors (2.0, arrays) become constant Tensors
#     3. out = ctx.forward(x.data, w.data)    plain NumPy
#     4. if grad mode is on and x or w requires grad:
#            result.requires_grad = True
#            result._ctx = ctx;  ctx.inputs = (x, w)      <- the graph edge
#     5. return Tensor(out)
# ```
#
# `ctx.needs_input_grad` (a tuple of bools) lets `backward` skip gradients nobody needs:
# the gradient of a constant or of the input batch `x` is wasted work.
#
# Constants follow the float dtype of the first Tensor input, so `float32_tensor * 0.5`
# stays float32 and the gradient checker's float64 computations stay float64.

# %% nbgrader={"grade": false, "grade_id": "function-class", "locked": false, "schema_version": 3, "solution": true}
#| export
def _as_input(x, ref) -> Tensor:
    """``x`` as a Tensor input of a Function; constants take ``ref``'s float dtype (provided)."""
    if isinstance(x, Tensor):
        return x
    if ref is None:
        return Tensor(x)
    if isinstance(x, numbers.Number) and not isinstance(x, np.generic):
        dtype = ref.dtype if np.issubdtype(ref.dtype, np.floating) else None
        if dtype is None and isinstance(x, float):
            dtype = np.float32
        return _wrap(np.asarray(x, dtype=dtype))
    return _wrap(np.asarray(_operand(x, ref)))


class Function:
    """Base class of differentiable operations. Subclasses write forward and backward."""

    def __init__(self):
        self.inputs = ()            # the input Tensors (set only when a graph is recorded)
        self.saved = ()             # whatever forward kept for backward
        self.needs_input_grad = ()  # one bool per input

    def forward(self, *arrays, **kwargs) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, grad_out: np.ndarray) -> tuple:
        raise NotImplementedError(f"{type(self).__name__}.backward")

    def save_for_backward(self, *values) -> None:
        """Keep arrays (or anything) that backward needs; read them back from ``self.saved``."""
        self.saved = values

    @classmethod
    def apply(cls, *inputs, **kwargs) -> Tensor:
        """Run the operation on Tensors and record it in the graph when gradients are needed.

        HINTS:
            - find the first input that is a Tensor (``ref``, or None) and turn every input
              into a Tensor with ``_as_input(x, ref)``
            - make the node (``cls()``) and record one bool per input in ``needs_input_grad``
            - call the node's ``forward`` on the inputs' ``.data`` arrays (pass ``**kwargs``)
              and wrap the resulting array with ``_wrap``
            - only if grad mode is on and some input requires grad: mark the output as
              requiring grad, point its ``_ctx`` at the node, and store the input Tensors
              in the node's ``inputs``
        """
        ### BEGIN SOLUTION
        ref = None
        for x in inputs:
            if isinstance(x, Tensor):
                ref = x
                break
        tensors = tuple(_as_input(x, ref) for x in inputs)
        ctx = cls()
        ctx.needs_input_grad = tuple(t.requires_grad for t in tensors)
        out = _wrap(ctx.forward(*(t.data for t in tensors), **kwargs))
        if _GRAD_ENABLED and any(ctx.needs_input_grad):
            out.requires_grad = True
            out._ctx = ctx
            ctx.inputs = tensors
        return out
        ### END SOLUTION

    def __repr__(self) -> str:
        return f"<{type(self).__name__} node>"


# %% [markdown]
# ## 3. Broadcasting, backwards
#
# When `b (3,)` is added to `x (2, 3)`, NumPy uses `b` twice (once per row). Each use
# contributes to the loss, so the gradient of `b` is the *sum* of the gradients of its uses:
#
# ```
#   grad_out (2, 3)  [[1, 1, 1],      unbroadcast to (3,):    sum over axis 0  -> [2, 2, 2]
#                     [1, 1, 1]]      unbroadcast to (1, 3):  sum, keepdims    -> [[2, 2, 2]]
#                                     unbroadcast to (2, 1):  sum over axis 1  -> [[3], [3]]
# ```
#
# Rule: sum away the leading axes that broadcasting added, then sum (keeping the axis)
# every axis where the original size was 1 but the gradient's is not.

# %% nbgrader={"grade": false, "grade_id": "unbroadcast", "locked": false, "schema_version": 3, "solution": true}
#| export
def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` down to ``shape`` (the inverse of NumPy broadcasting).

    EXAMPLE: unbroadcast(np.ones((2, 3)), (3,)) -> array([2., 2., 2.])
    HINTS:
        - the number of leading axes broadcasting added is ``grad.ndim - len(shape)``: sum
          them away (``axis=`` takes a tuple of axes)
        - then sum, with ``keepdims=True``, every axis i where ``shape[i] == 1`` but the
          gradient's size is not 1
    """
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    ### BEGIN SOLUTION
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-function-unbroadcast", "locked": true, "points": 2, "schema_version": 3, "solution": false}
from tinytorch.testing import assert_tensor


def test_unit_function_and_unbroadcast():
    """apply() records the graph only when needed; unbroadcast sums broadcast axes."""
    g = np.ones((2, 3), dtype=np.float32)
    np.testing.assert_allclose(unbroadcast(g, (3,)), [2, 2, 2])
    np.testing.assert_allclose(unbroadcast(g, (1, 3)), [[2, 2, 2]])
    np.testing.assert_allclose(unbroadcast(g, (2, 1)), [[3], [3]])
    np.testing.assert_allclose(unbroadcast(g, ()), 6)
    assert unbroadcast(g, (2, 3)) is g
    g3 = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_allclose(unbroadcast(g3, (3, 1)), g3.sum(axis=(0, 2)).reshape(3, 1))

    class Double(Function):
        def forward(self, a):
            return 2 * a

        def backward(self, grad_out):
            return (2 * grad_out,)

    x = Tensor([1.0, 2.0], requires_grad=True)
    y = assert_tensor(Double.apply(x), (2,), np.float32, name="Double.apply(x)")
    np.testing.assert_allclose(y.data, [2, 4])
    assert y.requires_grad and isinstance(y._ctx, Double) and y._ctx.inputs[0] is x
    c = Double.apply(Tensor([1.0]))
    assert not c.requires_grad and c._ctx is None, "no input requires grad: no graph"
    with no_grad():
        z = Double.apply(x)
    assert not z.requires_grad and z._ctx is None, "no_grad() must not record a graph"
    assert is_grad_enabled()
    ### BEGIN HIDDEN TESTS
    assert Double.apply(np.float32(3.0)).item() == 6.0
    ### END HIDDEN TESTS


test_unit_function_and_unbroadcast()

# %% [markdown]
# ## 4. The backward pass
#
# `backward()` must call each node's `backward` exactly once, and only after every node that
# *uses* its output has passed its gradient down. That order is a reverse topological sort.
# A recursive depth-first search gives it in a few lines, but a 1000-layer graph (an RNN
# unrolled over a long sequence) would hit Python's recursion limit, so we use an explicit
# stack:
#
# ```
#   graph:  a --> c --> e          stack-based DFS from e, post-order:   a b c d e
#           b --/      /           reversed:                             e d c b a
#           b --> d --/            e runs first; c and d both feed b's gradient
#                                  before b is reached.
# ```
#
# Gradients travel in a dictionary keyed by node (`id(tensor)`), as NumPy arrays. When a
# node has several consumers their contributions are *added*. When we reach a leaf (no
# `_ctx`), its gradient is added to `leaf.grad` (a Tensor): calling `backward()` twice
# accumulates, which is why training loops call `zero_grad()`.
#
# Afterwards the graph is freed: each node drops its inputs and saved arrays, so the
# activation memory can be reclaimed before the next forward pass. A second `backward()`
# through a freed graph cannot work (the saved arrays are gone), and PyTorch raises
# instead of returning wrong gradients; so do we. The provided code marks every freed node
# and refuses to go through one. `backward(retain_graph=True)` keeps the graph for one more
# pass, as in PyTorch (the node's `_ctx` then stays in place).
#
# A non-scalar output has no single "direction" to differentiate; the caller must pass
# `gradient` (the `dloss/doutput` array), otherwise we raise a `RuntimeError`.

# %% nbgrader={"grade": false, "grade_id": "backward-pass", "locked": false, "schema_version": 3, "solution": true}
#| export
def topological_order(root: Tensor, every_input: bool = False) -> list:
    """Tensors of the graph ending in ``root``, each after all of its inputs (iterative DFS).

    backward() needs the tensors that require grad. ``every_input=True`` lists the inputs that
    do not as well (the batch, masks, constants): the graph keeps them alive too, so the memory
    measurements of this module and of modules 12 and 13 walk the graph with it.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        ctx = node._ctx
        if ctx is not None:
            for inp in ctx.inputs:
                if (every_input or inp.requires_grad) and id(inp) not in visited:
                    stack.append((inp, False))
    return order


def backward_pass(root: Tensor, gradient=None, retain_graph: bool = False) -> None:
    """Backpropagate from ``root``: fill ``.grad`` of every leaf that requires grad.

    HINTS (``seed`` and ``order`` are ready when your code starts):
        - keep pending gradients in a dict keyed by ``id(tensor)``, starting with the root
        - visit ``order`` (``topological_order(root)``) in reverse; take (pop) the node's
          pending gradient, skip nodes that received none
        - a leaf (no ``_ctx``): add into ``node.grad`` (a Tensor of the node's dtype; copy
          the array the first time so two leaves never share one)
        - otherwise: ask the node's Function for its input gradients and add each one
          (not None, input requires grad) to that input's pending gradient
        - free the node afterwards (unless ``retain_graph``): drop ``_ctx`` and empty the
          Function's inputs and saved
    """
    if not root.requires_grad:
        raise RuntimeError(
            f"backward() called on a tensor of shape {root.shape} that does not require grad: "
            "no input of the computation had requires_grad=True (or it ran under no_grad())")
    if gradient is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward() needs a gradient argument for a non-scalar output of shape {root.shape}")
        seed = np.ones_like(root.data)
    else:
        seed = gradient.data if isinstance(gradient, Tensor) else np.asarray(gradient)
        if seed.shape != root.shape:
            raise RuntimeError(f"backward(): gradient of shape {seed.shape} does not match the "
                               f"output shape {root.shape}")
        seed = seed.astype(root.dtype, copy=False)
    order = topological_order(root)
    for node in order:
        if node._ctx is None and getattr(node, "_graph_freed", False):
            raise RuntimeError(
                "Trying to backward through the graph a second time: an earlier backward() freed it. "
                "Run the forward pass again, or call backward(retain_graph=True) the first time.")
    inner = [node for node in order if node._ctx is not None]
    ### BEGIN SOLUTION
    grads = {id(root): seed}
    for node in reversed(order):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        ctx = node._ctx
        if ctx is None:  # a leaf: accumulate into .grad
            if node.grad is None:
                node.grad = _wrap(np.array(g, dtype=node.dtype, copy=True))
            else:
                node.grad.data = node.grad.data + g
            continue
        in_grads = ctx.backward(g)
        if not isinstance(in_grads, (tuple, list)):
            in_grads = (in_grads,)
        for inp, gi in zip(ctx.inputs, in_grads):
            if gi is None or not inp.requires_grad:
                continue
            gi = np.asarray(gi)
            if gi.shape != inp.shape:
                raise RuntimeError(f"{type(ctx).__name__}.backward returned a gradient of shape "
                                   f"{gi.shape} for an input of shape {inp.shape}")
            if gi.dtype != inp.dtype:
                gi = gi.astype(inp.dtype)
            key = id(inp)
            grads[key] = gi if key not in grads else grads[key] + gi
        if not retain_graph:
            node._ctx = None  # free the graph as we go
            ctx.inputs = ()
            ctx.saved = ()
    ### END SOLUTION
    if not retain_graph:
        for node in inner:
            node._graph_freed = True


# %% [markdown]
# ## 5. Local derivatives of arithmetic
#
# Each rule below is one line of calculus; broadcasting is handled by `unbroadcast`:
#
# ```
#   op          forward       d out / d a           d out / d b
#   a + b       a + b         1                     1
#   a - b       a - b         1                     -1
#   a * b       a * b         b                     a
#   a / b       a / b         1 / b                 -a / b**2
#   a ** p      a ** p        p * a**(p-1)          (p a number: no gradient)
#   a ** b      a ** b        b * a**(b-1)          a**b * log(a)
#   -a          -a            -1
# ```
#
# Worked numbers for `a * b` with `a = [1, 2]`, `b = [3, 4]`, `grad_out = [1, 1]`:
# `grad_a = grad_out * b = [3, 4]`, `grad_b = grad_out * a = [1, 2]`.

# %% nbgrader={"grade": false, "grade_id": "arithmetic-functions", "locked": false, "schema_version": 3, "solution": true}
#| export
class Add(Function):
    def forward(self, a, b):
        self.save_for_backward(a.shape, b.shape)
        return a + b

    def backward(self, grad_out):
        a_shape, b_shape = self.saved
        ### BEGIN SOLUTION
        ga = unbroadcast(grad_out, a_shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(grad_out, b_shape) if self.needs_input_grad[1] else None
        return ga, gb
        ### END SOLUTION


class Sub(Function):
    def forward(self, a, b):
        self.save_for_backward(a.shape, b.shape)
        return a - b

    def backward(self, grad_out):
        a_shape, b_shape = self.saved
        ### BEGIN SOLUTION
        ga = unbroadcast(grad_out, a_shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(-grad_out, b_shape) if self.needs_input_grad[1] else None
        return ga, gb
        ### END SOLUTION


class Mul(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, grad_out):
        a, b = self.saved
        ### BEGIN SOLUTION
        ga = unbroadcast(grad_out * b, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(grad_out * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb
        ### END SOLUTION


class Div(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a / b

    def backward(self, grad_out):
        a, b = self.saved
        ### BEGIN SOLUTION
        ga = unbroadcast(grad_out / b, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(-grad_out * a / (b * b), b.shape) if self.needs_input_grad[1] else None
        return ga, gb
        ### END SOLUTION


class PowScalar(Function):
    """a ** p for a fixed number p (the exponent is not differentiated)."""

    def forward(self, a, p):
        self.save_for_backward(a, p)
        return a ** p

    def backward(self, grad_out):
        a, p = self.saved
        ### BEGIN SOLUTION
        return (grad_out * p * a ** (p - 1),)
        ### END SOLUTION


class Pow(Function):
    """a ** b for two tensors (b differentiated too, where a > 0)."""

    def forward(self, a, b):
        out = a ** b
        self.save_for_backward(a, b, out)
        return out

    def backward(self, grad_out):
        a, b, out = self.saved
        ### BEGIN SOLUTION
        ga = unbroadcast(grad_out * b * a ** (b - 1), a.shape) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            log_a = np.log(np.where(a > 0, a, 1))
            gb = unbroadcast(grad_out * out * log_a, b.shape)
        return ga, gb
        ### END SOLUTION


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, grad_out):
        ### BEGIN SOLUTION
        return (-grad_out,)
        ### END SOLUTION


# %% [markdown]
# ## 6. Matrix multiplication and shape operations
#
# For `C = A @ B` with `A (M, K)`, `B (K, N)`, `grad_C (M, N)`:
#
# ```
#   grad_A = grad_C @ B.T     (M, N) @ (N, K) -> (M, K)    same shape as A: check!
#   grad_B = A.T @ grad_C     (K, M) @ (M, N) -> (K, N)    same shape as B
# ```
#
# The shapes tell you the formula: there is only one way to combine `grad_C` with the other
# operand into the right shape. With batches, `A (B, M, K) @ W (K, N)` uses the same `W` for
# every batch element, so `grad_W` is summed over the batch: `unbroadcast` again. A 1-D
# operand is treated as a row (left) or a column (right) matrix, as NumPy does.
#
# A shared 2-D weight is the common case (`Linear` on a `(B, T, C)` sequence, as in every
# transformer), and there the sum over the batch can be folded into the product itself: the
# B*T rows of the input are just more rows of one matrix.
#
# ```
#   A (B, T, K) @ W (K, N)         rows = A.reshape(B*T, K),  G = grad_C.reshape(B*T, N)
#   grad_W = sum_b A[b].T @ grad_C[b]  =  rows.T @ G      (K, B*T) @ (B*T, N): ONE product
#   grad_A = (G @ W.T).reshape(B, T, K)                     ONE product
# ```
#
# The batched route does B small products, writes a (B, K, N) temporary and sums it; the
# folded one hands BLAS one large product (B = 12, T = 64, K = 128, N = 512: 12 products of
# 64 rows, or one of 768). Same numbers, fewer and bigger calls; the forward folds the same way.
#
# Shape operations move numbers without changing them, so their backward moves the gradient
# back: reshape back to the input shape, transpose the same two axes again, permute with
# the inverse permutation (`np.argsort(dims)`). Indexing `x[idx]` copies some elements
# out; its backward *scatters* the gradient into zeros of `x`'s shape. If an index repeats
# (`x[[0, 0, 1]]`), element 0 was used twice and must receive both gradients, which plain
# assignment `grad[idx] = g` would lose: `np.add.at` adds them.

# %% nbgrader={"grade": false, "grade_id": "matmul-shape-functions", "locked": false, "schema_version": 3, "solution": true}
#| export
class MatMul(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        if a.ndim > 2 and b.ndim == 2:     # shared weight: (B*T, K) @ (K, N), one BLAS call
            rows = a.reshape(int(np.prod(a.shape[:-1])), a.shape[-1])
            return np.matmul(rows, b).reshape(*a.shape[:-1], b.shape[-1])
        return np.matmul(a, b)

    def backward(self, grad_out):
        a, b = self.saved
        ### BEGIN SOLUTION
        a2 = a[None, :] if a.ndim == 1 else a  # (..., M, K)
        b2 = b[:, None] if b.ndim == 1 else b  # (..., K, N)
        g = grad_out
        if a.ndim == 1:
            g = np.expand_dims(g, -2)
        if b.ndim == 1:
            g = np.expand_dims(g, -1)  # (..., M, N)
        ga = gb = None
        if b2.ndim == 2:  # one (K, N) matrix shared by every row: fold the batch into the rows
            n = int(np.prod(a2.shape[:-1]))                                  # B*M rows
            rows, g_rows = a2.reshape(n, b2.shape[0]), g.reshape(n, b2.shape[1])  # (B*M, K), (B*M, N)
            if self.needs_input_grad[0]:
                ga = np.matmul(g_rows, b2.T).reshape(a.shape)         # (B*M, K) -> a's shape
            if self.needs_input_grad[1]:
                gb = np.matmul(rows.T, g_rows).reshape(b.shape)       # (K, N): the batch sum is in the product
            return ga, gb
        if self.needs_input_grad[0]:
            ga = unbroadcast(np.matmul(g, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = unbroadcast(np.matmul(np.swapaxes(a2, -1, -2), g), b2.shape).reshape(b.shape)
        return ga, gb
        ### END SOLUTION


class Reshape(Function):
    def forward(self, a, shape):
        self.save_for_backward(a.shape)
        return a.reshape(shape)

    def backward(self, grad_out):
        (in_shape,) = self.saved
        ### BEGIN SOLUTION
        return (grad_out.reshape(in_shape),)
        ### END SOLUTION


class Transpose(Function):
    def forward(self, a, dim0, dim1):
        self.save_for_backward(dim0, dim1)
        return np.swapaxes(a, dim0, dim1)

    def backward(self, grad_out):
        dim0, dim1 = self.saved
        ### BEGIN SOLUTION
        return (np.swapaxes(grad_out, dim0, dim1),)
        ### END SOLUTION


class Permute(Function):
    def forward(self, a, dims):
        self.save_for_backward(dims)
        return np.transpose(a, dims)

    def backward(self, grad_out):
        (dims,) = self.saved
        ### BEGIN SOLUTION
        return (np.transpose(grad_out, np.argsort(dims)),)
        ### END SOLUTION


def _is_basic_index(index) -> bool:
    """True for ints, slices, None and Ellipsis only (no element can be picked twice)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


class GetItem(Function):
    def forward(self, a, index):
        self.save_for_backward(a.shape, a.dtype, index)
        return np.asarray(a[index])

    def backward(self, grad_out):
        shape, dtype, index = self.saved
        ### BEGIN SOLUTION
        grad = np.zeros(shape, dtype=dtype)
        if _is_basic_index(index):
            grad[index] = grad_out
        else:
            np.add.at(grad, index, grad_out)
        return (grad,)
        ### END SOLUTION


# %% [markdown]
# ## 7. Reductions and element-wise math
#
# ```
#   y = x.sum(axis)      every x that was summed gets grad_out: broadcast it back
#   y = x.mean(axis)     the same, divided by the number of elements averaged
#   y = x.max(axis)      only the maximum received the output: the gradient goes there
#                        (ties share it equally, as torch.amax does)
#   y = exp(x)           grad_out * y          (exp is its own derivative: reuse y)
#   y = log(x)           grad_out / x
#   y = sqrt(x)          grad_out * 0.5 / y
# ```
#
# Without `keepdims`, the reduced axis has disappeared from `grad_out`; put it back with
# `np.expand_dims` before broadcasting to the input's shape:
#
# ```
#   x (2, 3) --sum(axis=1)--> (2,)    grad_out (2,) -> (2, 1) -> broadcast -> (2, 3)
# ```

# %% nbgrader={"grade": false, "grade_id": "reduction-functions", "locked": false, "schema_version": 3, "solution": true}
#| export
def _expand_reduced(grad_out: np.ndarray, in_shape: tuple, axis, keepdims: bool) -> np.ndarray:
    """grad_out of a reduction, with the reduced axes put back as size 1 (provided)."""
    if axis is None:
        return grad_out.reshape((1,) * len(in_shape))
    if keepdims:
        return grad_out
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axes = tuple(sorted(int(a) % len(in_shape) for a in axes))
    return np.expand_dims(grad_out, axes)


def _count(in_shape: tuple, axis) -> int:
    if axis is None:
        return int(np.prod(in_shape))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return int(np.prod([in_shape[a] for a in axes]))


class Sum(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.save_for_backward(a.shape, axis, keepdims)
        return np.asarray(a.sum(axis=axis, keepdims=keepdims))

    def backward(self, grad_out):
        in_shape, axis, keepdims = self.saved
        ### BEGIN SOLUTION
        g = _expand_reduced(grad_out, in_shape, axis, keepdims)
        return (np.broadcast_to(g, in_shape),)
        ### END SOLUTION


class Mean(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.save_for_backward(a.shape, axis, keepdims)
        return np.asarray(a.mean(axis=axis, keepdims=keepdims))

    def backward(self, grad_out):
        in_shape, axis, keepdims = self.saved
        ### BEGIN SOLUTION
        g = _expand_reduced(grad_out, in_shape, axis, keepdims) / _count(in_shape, axis)
        return (np.broadcast_to(g, in_shape),)
        ### END SOLUTION


class Max(Function):
    def forward(self, a, axis=None, keepdims=False):
        out = a.max(axis=axis, keepdims=True)
        self.save_for_backward(a, out, axis, keepdims)
        return np.asarray(out if keepdims else (out.reshape(()) if axis is None else np.squeeze(out, axis)))

    def backward(self, grad_out):
        a, out, axis, keepdims = self.saved
        ### BEGIN SOLUTION
        mask = (a == out)  # (in_shape) True at the maximum(s)
        share = mask / mask.sum(axis=axis, keepdims=True)
        g = _expand_reduced(grad_out, a.shape, axis, keepdims)
        return ((g * share).astype(a.dtype, copy=False),)
        ### END SOLUTION


class Exp(Function):
    def forward(self, a):
        out = np.exp(a)
        self.save_for_backward(out)
        return out

    def backward(self, grad_out):
        (out,) = self.saved
        ### BEGIN SOLUTION
        return (grad_out * out,)
        ### END SOLUTION


class Log(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return np.log(a)

    def backward(self, grad_out):
        (a,) = self.saved
        ### BEGIN SOLUTION
        return (grad_out / a,)
        ### END SOLUTION


class Sqrt(Function):
    def forward(self, a):
        out = np.sqrt(a)
        self.save_for_backward(out)
        return out

    def backward(self, grad_out):
        (out,) = self.saved
        ### BEGIN SOLUTION
        return (grad_out * 0.5 / out,)
        ### END SOLUTION


# %% [markdown]
# ## 8. Activations and losses as fused Functions
#
# You *could* differentiate softmax through the graph of `exp`, `sum`, `/`: five nodes and
# four saved arrays. A fused `Function` computes the same thing with one node and a closed
# form derivative, which is faster, uses less memory and is numerically stable:
#
# ```
#   relu      y = max(0, x)            grad_x = grad_y * (x > 0)
#   sigmoid   s = 1 / (1 + e^-x)       grad_x = grad_y * s * (1 - s)
#   tanh      t = tanh(x)              grad_x = grad_y * (1 - t^2)
#   gelu      0.5 x (1 + tanh(u)),  u = c (x + 0.044715 x^3),  c = sqrt(2 / pi)
#             grad_x = grad_y * (0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 * 0.044715 x^2))
#   softmax   s = softmax(x)           grad_x = s * (grad_y - sum(grad_y * s, dim))
#   log_softmax  l = x - max - log(sum(exp(x - max)))
#                                      grad_x = grad_y - exp(l) * sum(grad_y, dim)
#   cross-entropy (mean over B rows, integer targets t)
#             loss = -mean(l[i, t_i])   grad_logits = (softmax(x) - onehot(t)) / B
#   MSE       loss = mean((p - y)^2)   grad_p = 2 (p - y) / N
#   BCE       loss = -mean(y log p + (1 - y) log(1 - p)),  p clipped to [eps, 1 - eps]
#             grad_p = (p - y) / (p (1 - p)) / N
# ```
#
# Worked numbers for cross-entropy: logits `[2, 0]`, target 0: softmax `[0.881, 0.119]`,
# loss `-log(0.881) = 0.127`, gradient `[0.881 - 1, 0.119] = [-0.119, 0.119]`: push the
# right class up and the wrong one down, by exactly how wrong the prediction was.
#
# Each forward below is module 02's (or 04's) formula once more, on raw arrays, keeping what
# its backward needs (`x > 0` for ReLU, the output for sigmoid, `tanh(u)` for GELU): the
# backward is what is new. There is no second GELU anywhere else in the framework: section 9
# makes module 02's `GELU` class run `GELUFn`, and module 13's GPT uses that class, so the
# derivative you write here is the one every transformer of the course trains with.
#
# GELU runs on a transformer's widest activation (the MLP's hidden layer, 4C per token), so
# its backward is written with as few passes and temporaries as the formula allows. Since
# `1 - t^2 = (1 - t)(1 + t)`, the derivative factors:
#
# ```
#   grad_x = grad_y * 0.5 (1 + t) (1 + x (1 - t) u'),    u' = c (1 + 3 * 0.044715 x^2)
#
#   d = x * x;  d *= 3 * 0.044715;  d += 1;  d *= c;  d *= x      one new array: x u'
#   e = 1 - t;  d *= e;  d += 1                                  a second: (1 - t)
#   np.add(t, 1, out=e);  d *= e;  d *= 0.5;  d *= grad_y         e reused for (1 + t)
# ```
#
# The one-line version makes about ten full-size temporaries and keeps several alive at once.
# Measured on milestone 5's (12, 64, 512) hidden layer (one thread): 0.50 ms before, 0.34 ms
# after; and 3.3 ms before, 0.33 ms after with glibc's default allocator, where each new
# temporary can be fresh memory from the operating system (section 8c explains why).

# %% nbgrader={"grade": false, "grade_id": "fused-functions", "locked": false, "schema_version": 3, "solution": true}
#| export
def _log_softmax_array(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)  # max is now 0: exp cannot overflow
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class ReLUFn(Function):
    def forward(self, x):
        self.save_for_backward(x > 0)
        return np.maximum(x, 0)

    def backward(self, grad_out):
        (positive,) = self.saved
        ### BEGIN SOLUTION
        return (grad_out * positive,)
        ### END SOLUTION


class SigmoidFn(Function):
    def forward(self, x):
        e = np.exp(-np.abs(x))  # in (0, 1]: no overflow for any x
        s = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        self.save_for_backward(s)
        return s

    def backward(self, grad_out):
        (s,) = self.saved
        ### BEGIN SOLUTION
        return (grad_out * s * (1 - s),)
        ### END SOLUTION


class TanhFn(Function):
    def forward(self, x):
        t = np.tanh(x)
        self.save_for_backward(t)
        return t

    def backward(self, grad_out):
        (t,) = self.saved
        ### BEGIN SOLUTION
        return (grad_out * (1 - t * t),)
        ### END SOLUTION


class GELUFn(Function):
    """GELU, tanh approximation (GPT-2, torch's approximate='tanh'): module 02's formula."""

    def forward(self, x):
        u = x * x                                   # u = c x (1 + 0.044715 x^2) = x (c + 0.044715 c x^2)
        u *= 0.044715 * _GELU_C                     # in place; the two constants are one Python float
        u += _GELU_C
        u *= x
        t = np.tanh(u, out=u)                       # (...): the buffer of u, reused
        self.save_for_backward(x, t)
        out = t + 1
        out *= x
        out *= 0.5
        return out                                  # 0.5 x (1 + t)

    def backward(self, grad_out):
        x, t = self.saved
        ### BEGIN SOLUTION
        d = x * x                                   # du/dx = c (1 + 3 * 0.044715 x^2)
        d *= 3 * 0.044715
        d += 1
        d *= _GELU_C
        d *= x
        e = 1 - t
        d *= e                                      # x (1 - t) du
        d += 1
        np.add(t, 1, out=e)
        d *= e
        d *= 0.5                                    # 0.5 (1 + t) (1 + x (1 - t) du)
        d *= grad_out
        return (d,)
        ### END SOLUTION


class SoftmaxFn(Function):
    def forward(self, x, dim=-1):
        axis = _check_dim(dim, x.ndim, "Softmax")
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        s = e / e.sum(axis=axis, keepdims=True)
        self.save_for_backward(s, axis)
        return s

    def backward(self, grad_out):
        s, axis = self.saved
        ### BEGIN SOLUTION
        return (s * (grad_out - (grad_out * s).sum(axis=axis, keepdims=True)),)
        ### END SOLUTION


class LogSoftmaxFn(Function):
    def forward(self, x, dim=-1):
        axis = _check_dim(dim, x.ndim, "log_softmax")
        out = _log_softmax_array(x, axis)
        self.save_for_backward(out, axis)
        return out

    def backward(self, grad_out):
        out, axis = self.saved
        ### BEGIN SOLUTION
        return (grad_out - np.exp(out) * grad_out.sum(axis=axis, keepdims=True),)
        ### END SOLUTION


class CrossEntropyFn(Function):
    """Mean cross-entropy of logits (B, C) against integer targets (B,) (or one-hot (B, C))."""

    def forward(self, logits, targets):
        if logits.ndim != 2:
            raise ValueError(f"cross-entropy expects logits of shape (B, C), got {logits.shape}")
        B = logits.shape[0]
        logp = _log_softmax_array(logits, 1)  # (B, C)
        if targets.shape == logits.shape and np.issubdtype(targets.dtype, np.floating):
            onehot = targets.astype(logits.dtype, copy=False)  # (B, C) probabilities
        else:
            idx = targets.astype(np.int64, copy=False).reshape(-1)  # (B,)
            if idx.shape[0] != B:
                raise ValueError(f"cross-entropy: {B} rows of logits {logits.shape} but "
                                 f"{idx.shape[0]} targets {targets.shape}")
            onehot = np.zeros_like(logp)
            onehot[np.arange(B), idx] = 1
        self.save_for_backward(logp, onehot)
        return np.asarray(-(logp * onehot).sum() / B, dtype=logits.dtype)

    def backward(self, grad_out):
        logp, onehot = self.saved
        ### BEGIN SOLUTION
        B = logp.shape[0]
        return (grad_out * (np.exp(logp) - onehot) / B, None)
        ### END SOLUTION


class MSEFn(Function):
    def forward(self, pred, target):
        diff = pred - target
        self.save_for_backward(diff, pred.shape, target.shape)
        return np.asarray(np.mean(diff * diff), dtype=diff.dtype)

    def backward(self, grad_out):
        diff, p_shape, t_shape = self.saved
        ### BEGIN SOLUTION
        g = grad_out * 2 * diff / diff.size
        gp = unbroadcast(g, p_shape) if self.needs_input_grad[0] else None
        gt = unbroadcast(-g, t_shape) if self.needs_input_grad[1] else None
        return gp, gt
        ### END SOLUTION


class BCEFn(Function):
    def forward(self, pred, target, eps=1e-7):
        p = np.clip(pred, eps, 1 - eps)
        t = target.astype(p.dtype, copy=False)
        self.save_for_backward(p, t, pred.shape)
        loss = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
        return np.asarray(loss, dtype=p.dtype)

    def backward(self, grad_out):
        p, t, p_shape = self.saved
        ### BEGIN SOLUTION
        g = grad_out * (p - t) / (p * (1 - p)) / p.size
        return unbroadcast(g, p_shape), None
        ### END SOLUTION


# %% [markdown]
# ## 8b. The PyTorch habits of module 01, differentiable
#
# Module 01 gave the Tensor PyTorch's spellings. Most need nothing new here: `view`,
# `unsqueeze`, `squeeze` and `flatten` are built on `reshape`, `min` on `max` and negation,
# `max(dim=1)` returns `max(axis=1)` as its values. Three need their own local derivative:
#
# ```
#   op               forward                 d out / d x
#   x.abs()          |x|                     sign(x)            (0 at x = 0, as PyTorch)
#   x.clamp(lo, hi)  min(max(x, lo), hi)     1 inside [lo, hi], 0 where it was clipped
#   x.float()        x as float32            1, cast back to x's dtype
#   x.clone()        a copy of x             1
# ```
#
# Worked numbers for `clamp(0, 1)` of `x = [-0.5, 0.3, 2.0]` with `grad_out = [1, 1, 1]`:
# the output is `[0, 0.3, 1]` and the gradient `[0, 1, 0]`: a clipped element no longer
# moves the output. `argmax`, `argmin`, `long()` and `tolist()` give integers or lists: no
# gradient flows through them, in PyTorch either.

# %% nbgrader={"grade": false, "grade_id": "habit-functions", "locked": false, "schema_version": 3, "solution": true}
#| export
class Abs(Function):
    def forward(self, x):
        """|x|; save what backward needs."""
        ### BEGIN SOLUTION
        self.save_for_backward(np.sign(x))
        return np.abs(x)
        ### END SOLUTION

    def backward(self, grad_out):
        ### BEGIN SOLUTION
        (sign,) = self.saved
        return (grad_out * sign,)
        ### END SOLUTION


class Clamp(Function):
    def forward(self, x, lo=None, hi=None):
        """``np.clip(x, lo, hi)``; the gradient passes only where nothing was clipped."""
        ### BEGIN SOLUTION
        inside = np.ones(x.shape, dtype=bool)
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        self.save_for_backward(inside)
        return np.clip(x, lo, hi)
        ### END SOLUTION

    def backward(self, grad_out):
        ### BEGIN SOLUTION
        (inside,) = self.saved
        return (grad_out * inside,)
        ### END SOLUTION


class Cast(Function):
    """A copy of x in ``dtype`` (``float()`` and ``clone()``); the gradient is cast back by the engine."""

    def forward(self, x, dtype=None):
        ### BEGIN SOLUTION
        return np.array(x, dtype=dtype or x.dtype, copy=True)
        ### END SOLUTION

    def backward(self, grad_out):
        ### BEGIN SOLUTION
        return (grad_out,)
        ### END SOLUTION


# %% [markdown]
# ## 8c. Memory the graph gives back, and what it costs to get it again
#
# A training step allocates every activation in the forward pass and frees it in the
# backward pass (section 4 frees the graph as it goes); the next step allocates all of it
# again, and every op's backward makes temporaries of the same sizes. Who hands out that
# memory? NumPy asks the C library's `malloc`. On Linux, glibc's malloc serves a large
# block (128 KB at first; the limit rises to the largest block freed so far, up to 32 MB)
# with a fresh mapping from the operating system (`mmap`) and gives it back on `free`
# (`munmap`); smaller blocks come from a heap, whose free top is also given back once it
# is larger than a threshold. Memory fresh from the OS is not ready to use: the kernel maps
# each 4 KB page only when it is first touched (a *page fault*: a trap into the kernel,
# which zero-fills the page and maps it).
#
# ```
#   one GELU temporary of milestone 5's GPT: (12, 64, 512) float32 = 1.5 MB = 384 pages
#
#   block reused from the heap:   x * x   reads and writes 1.5 MB       ~0.05 ms
#   block fresh from the OS:      x * x   + 384 page faults             ~0.5-1.5 ms
# ```
#
# So an op can spend ten times longer getting its output memory than computing it. The
# measurement below counts the page faults (`ru_minflt`) and times a multiply that keeps
# six such temporaries alive at once (as a backward does), with fresh and with reused memory.
#
# PyTorch's GPU allocator meets the same problem (asking the driver for memory is slow) and
# keeps freed blocks in a cache for reuse; `torch.cuda.empty_cache()` hands them back. On
# the CPU we ask glibc for the same policy with two settings of `mallopt`: serve blocks up
# to 32 MB from the heap (`M_MMAP_THRESHOLD`), and keep up to 1 GB of freed heap instead
# of returning it (`M_TRIM_THRESHOLD`). `keep_freed_memory()` below makes that call
# through `ctypes` (Python's standard library) and `enable_autograd()` calls it, so every
# tinytorch program gets it. Elsewhere (macOS, Windows, other C libraries) it changes
# nothing and returns False. The price: a process keeps freed memory (up to 1 GB) that
# another program could have used. `TINYTORCH_KEEP_FREED_MEMORY=0` in the environment
# keeps glibc's defaults.
#
# Measured on milestone 5's training step (benchmarks/results/gpt_speedups.md: batch 12,
# block 64, 4 layers, 128 dims, one thread, the same step in PyTorch timed alongside): with
# glibc's default and the kernels written without care for temporaries, the step made about
# 10,700 page faults (42 MB of fresh memory) and took 1.38x PyTorch's time. Fewer
# temporaries (GELU here, AdamW in module 06, attention in 12, LayerNorm in 13) halved the
# faults (5,100; 1.14x); keeping freed memory left 2 faults per step and 0.99x PyTorch: the
# same NumPy calls, without the operating system's page faults.

# %% nbgrader={"grade": false, "grade_id": "keep-freed-memory", "locked": true, "schema_version": 3, "solution": false}
#| export
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # mallopt's parameter numbers (glibc's malloc.h)


def keep_freed_memory(enable: bool = True) -> bool:
    """Ask glibc's malloc to keep freed memory for reuse (True) or to return it to the OS
    early (False: blocks from 128 KB come fresh from the OS every time).

    Returns True if the C library accepted the settings, False where there is no glibc
    malloc to tune (then nothing changes).
    """
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version          # only glibc has it
        mallopt = libc.mallopt
    except (AttributeError, OSError, TypeError):   # no such function, no C library, or Windows
        return False
    mmap_limit, trim_limit = (32 << 20, 1 << 30) if enable else (128 << 10, 128 << 10)
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_limit)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_limit))


# %%
import time

try:
    import resource
except ImportError:            # not on Windows: no page-fault counter
    resource = None


def fresh_versus_reused(x, live=6, repeats=10):
    """ms per x * x and page faults per x * x, with ``live`` results alive at once."""
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0
    t0 = time.perf_counter()
    for _ in range(repeats):
        kept = [x * x for _ in range(live)]              # live temporaries, as in a backward
        del kept
    ms = (time.perf_counter() - t0) / (repeats * live) * 1e3
    if resource:
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / (repeats * live)
    return ms, faults


xa = np.random.default_rng(0).standard_normal((12, 64, 512)).astype(np.float32)   # (B, T, 4C)
if keep_freed_memory(False):
    fresh = fresh_versus_reused(xa)
    keep_freed_memory(True)
    fresh_versus_reused(xa)                              # the heap grows once
    reused = fresh_versus_reused(xa)
    print(f"x * x on {xa.nbytes / 1e6:.1f} MB: fresh from the OS {fresh[0]:.3f} ms and "
          f"{fresh[1]:.0f} page faults; reused {reused[0]:.3f} ms and {reused[1]:.0f} page faults "
          f"({fresh[0] / reused[0]:.0f}x)")
else:
    print("no glibc malloc here: keep_freed_memory() changes nothing on this system")


# %% [markdown]
# ## 9. Switching it on: `enable_autograd()`
#
# Module 01's `Tensor.__add__` computes `self.data + other` and wraps it. Now we replace
# the *methods of the class* (not of any one object) with versions that go through
# `Function.apply`, and the `forward` of the activation and loss classes with the fused
# Functions. Every Tensor, old or new, gets the new behaviour, and code written against
# modules 01-04 keeps working: same names, same results, plus a graph.
#
# ```
#   before:  Tensor.__mul__ = _mul                                 (module 01: a.data * b.data)
#   after:   Tensor.__mul__ = lambda self, other: Mul.apply(self, other)   (records the graph)
# ```
#
# Only the computation changes. The argument checks stay module 01's, 02's and 04's: the new
# `reshape` checks its shape with module 01's `_reshape_arg`, softmax its `dim` with module
# 02's `_check_dim`, cross-entropy its targets with module 04's `_class_indices`, so a rule
# and its error message live in one place.
#
# A replaced method must still look like the one it replaces: `help(Tensor.sum)`, Jupyter's
# Shift-Tab and a traceback should say `Tensor.sum` with module 01's docstring and signature,
# not `<lambda>`. `_patch` therefore installs a copy of the new function under the method's
# name, with the original's docstring and annotations (what `functools.wraps` does for a
# decorator, plus the name a traceback prints). Calling `enable_autograd()` twice installs the
# same methods again, so it is idempotent. This is provided: read it to see which Function
# serves which method.

# %% nbgrader={"grade": false, "grade_id": "enable-autograd", "locked": true, "schema_version": 3, "solution": false}
#| export
def _pow_method(self, exponent):
    if isinstance(exponent, numbers.Number) and not isinstance(exponent, Tensor):
        return PowScalar.apply(self, p=exponent)
    return Pow.apply(self, exponent)


def _matmul_method(self, other):
    b = other if isinstance(other, Tensor) else _as_input(other, self)
    _check_matmul_shapes(self.shape, b.shape)
    try:
        return MatMul.apply(self, b)
    except ValueError as e:  # batch dimensions that do not broadcast
        raise ValueError(f"Shape mismatch: {self.shape} @ {b.shape}: {e}") from None


# Reductions take NumPy's axis=/keepdims= and PyTorch's dim=/keepdim= (module 01's rules).
def _sum_method(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
    axis, keepdims = _reduce_args(axis, keepdims, dim, keepdim, "sum")
    return Sum.apply(self, axis=axis, keepdims=keepdims)


def _mean_method(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
    axis, keepdims = _reduce_args(axis, keepdims, dim, keepdim, "mean")
    x = self if np.issubdtype(self.dtype, np.floating) else _wrap(self.data.astype(np.float32))
    return Mean.apply(x, axis=axis, keepdims=keepdims)


def _max_method(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
    if dim is not None:  # PyTorch's spelling: (values, indices)
        return _values_indices(self, "max", dim, keepdim)
    axis, keepdims = _reduce_args(axis, keepdims, None, keepdim, "max")
    return Max.apply(self, axis=axis, keepdims=keepdims)


def _clamp_method(self, min=None, max=None):
    _check_clamp(min, max)
    return Clamp.apply(self, lo=min, hi=max)


def _backward_method(self, gradient=None, retain_graph: bool = False) -> None:
    """Backpropagate from this tensor: fill ``.grad`` of every leaf of its graph that requires
    grad. A non-scalar tensor needs ``gradient`` (dloss/dself); ``retain_graph=True`` keeps
    the graph for another backward()."""
    backward_pass(self, gradient, retain_graph)


_TENSOR_METHODS = {
    "__add__": lambda self, other: Add.apply(self, other),
    "__radd__": lambda self, other: Add.apply(_as_input(other, self), self),
    "__sub__": lambda self, other: Sub.apply(self, other),
    "__rsub__": lambda self, other: Sub.apply(_as_input(other, self), self),
    "__mul__": lambda self, other: Mul.apply(self, other),
    "__rmul__": lambda self, other: Mul.apply(_as_input(other, self), self),
    "__truediv__": lambda self, other: Div.apply(self, other),
    "__rtruediv__": lambda self, other: Div.apply(_as_input(other, self), self),
    "__pow__": _pow_method,
    "__rpow__": lambda self, other: Pow.apply(_as_input(other, self), self),
    "__neg__": lambda self: Neg.apply(self),
    "__matmul__": _matmul_method,
    "__rmatmul__": lambda self, other: _matmul_method(_as_input(other, self), self),
    "matmul": _matmul_method,
    "reshape": lambda self, *shape: Reshape.apply(self, shape=_reshape_arg(self, shape)),
    "transpose": lambda self, dim0=-2, dim1=-1: Transpose.apply(self, dim0=dim0, dim1=dim1),
    "permute": lambda self, *dims: Permute.apply(self, dims=_permute_arg(self, dims)),
    "__getitem__": lambda self, index: GetItem.apply(self, index=_index_arg(index)),
    "sum": _sum_method,
    "mean": _mean_method,
    "max": _max_method,
    "exp": lambda self: Exp.apply(self),
    "log": lambda self: Log.apply(self),
    "sqrt": lambda self: Sqrt.apply(self),
    "abs": lambda self: Abs.apply(self),
    "clamp": _clamp_method,
    "float": lambda self: self if self.dtype == np.float32 else Cast.apply(self, dtype=np.float32),
    "clone": lambda self: Cast.apply(self),
    "backward": _backward_method,
}


def _float_input(x) -> Tensor:
    """The input of an activation or loss as a float Tensor (module 02's ``_float_data`` rules).

    A float Tensor is passed on as it is: it may be part of the graph.
    """
    if isinstance(x, Tensor) and np.issubdtype(x.dtype, np.floating):
        return x
    return _wrap(_float_data(x))


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Differentiable, numerically stable log-softmax along ``dim``."""
    return LogSoftmaxFn.apply(_float_input(x), dim=dim)


def _loss_inputs(who, pred, target):
    """Float predictions and targets of the same shape (module 04's rules)."""
    pred = _float_input(pred)
    target = _float_input(target)
    if target.dtype != pred.dtype:
        target = _wrap(target.data.astype(pred.dtype))
    _check_same_shape(pred, target, who)
    return pred, target


def _mse_forward(self, predictions, targets):
    pred, target = _loss_inputs("MSELoss", predictions, targets)
    return MSEFn.apply(pred, target)


def _bce_forward(self, predictions, targets):
    pred, target = _loss_inputs("BinaryCrossEntropyLoss", predictions, targets)
    _check_probabilities(target.data, "BinaryCrossEntropyLoss")
    return BCEFn.apply(pred, target, eps=float(getattr(self, "eps", 1e-7)))


def _ce_forward(self, predictions, targets):
    logits = _float_input(predictions)  # (..., C)
    t = _class_indices(targets, logits.shape, "CrossEntropyLoss")  # (...)
    if logits.ndim != 2:
        logits = logits.reshape(-1, logits.shape[-1])  # (N, C)
    return CrossEntropyFn.apply(logits, _wrap(t.reshape(-1)))


_ACTIVATION_FORWARDS = {
    activations.ReLU: lambda self, x: ReLUFn.apply(_float_input(x)),
    activations.Sigmoid: lambda self, x: SigmoidFn.apply(_float_input(x)),
    activations.Tanh: lambda self, x: TanhFn.apply(_float_input(x)),
    activations.GELU: lambda self, x: GELUFn.apply(_float_input(x)),
    activations.Softmax: lambda self, x: SoftmaxFn.apply(_float_input(x), dim=self.dim),
}
_LOSS_FORWARDS = {
    losses.MSELoss: _mse_forward,
    losses.BinaryCrossEntropyLoss: _bce_forward,
    losses.CrossEntropyLoss: _ce_forward,
}
_ORIGINALS: dict = {}  # (owner, name) -> what module 01, 02 or 04 defined
_METHODS: dict = {}    # (owner, name) -> the method installed instead (made once: idempotent)


def _as_method(fn, owner, name: str, original):
    """A copy of ``fn`` that presents itself as ``owner.name``: the method's name (also in
    tracebacks), the original's docstring (unless ``fn`` has its own) and its annotations."""
    qualname = name if isinstance(owner, types.ModuleType) else f"{owner.__qualname__}.{name}"
    code = fn.__code__.replace(co_name=name)
    if hasattr(code, "co_qualname"):  # Python 3.11+
        code = code.replace(co_qualname=qualname)
    method = types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    method.__kwdefaults__ = fn.__kwdefaults__
    method.__qualname__ = qualname
    method.__doc__ = fn.__doc__ or getattr(original, "__doc__", None)
    method.__annotations__ = dict(fn.__annotations__ or getattr(original, "__annotations__", {}))
    return method


def _patch(owner, name, fn) -> None:
    key = (owner, name)
    if key not in _ORIGINALS:
        _ORIGINALS[key] = owner.__dict__.get(name)
        _METHODS[key] = _as_method(fn, owner, name, _ORIGINALS[key])
    setattr(owner, name, _METHODS[key])


def _restore() -> None:
    for (owner, name), value in _ORIGINALS.items():
        if value is None:
            if name in owner.__dict__:
                delattr(owner, name)
        else:
            setattr(owner, name, value)


def enable_autograd() -> None:
    """Make every Tensor operation, activation and loss record a graph (idempotent); keep
    freed memory for reuse (section 8c) unless TINYTORCH_KEEP_FREED_MEMORY=0."""
    if os.environ.get("TINYTORCH_KEEP_FREED_MEMORY", "1") != "0":
        keep_freed_memory(True)
    for name, fn in _TENSOR_METHODS.items():
        _patch(Tensor, name, fn)
    for table in (_ACTIVATION_FORWARDS, _LOSS_FORWARDS):
        for cls, forward in table.items():
            _patch(cls, "forward", forward)
    _patch(losses, "log_softmax", log_softmax)
    # A learner's half-finished module must not break every Tensor: check one tiny step.
    try:
        w = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
        ((w * w + w).sum() / 2).backward()
        ok = w.grad is not None and np.allclose(w.grad.data, [1.5, 2.5])
    except NotImplementedError:
        ok = False
    if not ok:
        _restore()
        warnings.warn("enable_autograd(): the autograd Functions are not complete yet; Tensor "
                      "stays without gradients (module 01 behaviour).", RuntimeWarning, stacklevel=2)


# %% [markdown]
# Now switch it on and use it. From here on, every operation on a tensor that requires grad
# records a node.

# %%
enable_autograd()


# %% nbgrader={"grade": true, "grade_id": "test-backward-basics", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_backward_basics():
    """The worked example of section 1, accumulation, freeing and the non-scalar error."""
    x = Tensor([1.0, 2.0], requires_grad=True)
    w = Tensor([3.0, 4.0], requires_grad=True)
    b = Tensor(0.5, requires_grad=True)
    loss = (x * w + b).sum()
    assert loss.item() == 12.0 and loss._ctx is not None
    loss.backward()
    np.testing.assert_allclose(w.grad.data, [1, 2])
    np.testing.assert_allclose(x.grad.data, [3, 4])
    np.testing.assert_allclose(b.grad.data, 2.0)
    assert_tensor(w.grad, (2,), np.float32, name="w.grad")
    assert_tensor(b.grad, (), np.float32, name="b.grad")
    assert loss._ctx is None, "the graph must be freed after backward()"
    u = Tensor([3.0], requires_grad=True)
    (u * u + u).sum().backward()  # u is used three times: the contributions add up
    np.testing.assert_allclose(u.grad.data, [2 * 3 + 1], err_msg="a tensor used twice gets the sum of both gradients")
    (x * w + b).sum().backward()
    np.testing.assert_allclose(w.grad.data, [2, 4], err_msg="gradients must accumulate")
    w.zero_grad()
    assert w.grad is None
    y = x * 2  # (2,) not a scalar
    try:
        y.backward()
        raise AssertionError("backward() of a non-scalar without gradient must raise")
    except RuntimeError as e:
        assert "non-scalar" in str(e) and "(2,)" in str(e), str(e)
    x.zero_grad()
    y.backward(np.array([1.0, 10.0], dtype=np.float32))
    np.testing.assert_allclose(x.grad.data, [2, 20])
    ### BEGIN HIDDEN TESTS
    # a diamond: a feeds two paths that meet again
    a = Tensor([3.0], requires_grad=True)
    c = a * a
    d = a * 2
    (c + d).sum().backward()
    np.testing.assert_allclose(a.grad.data, [2 * 3 + 2])
    # a deep chain must not hit the recursion limit
    z = Tensor([1.0], requires_grad=True)
    h = z
    for _ in range(5000):
        h = h + 1
    h.sum().backward()
    np.testing.assert_allclose(z.grad.data, [1.0])
    ### END HIDDEN TESTS


test_unit_backward_basics()


# %% nbgrader={"grade": true, "grade_id": "test-arithmetic-grads", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def test_unit_arithmetic_grads():
    """Local derivatives of + - * / ** neg, with broadcasting."""
    a = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)  # (2, 3)
    b = Tensor([1.0, 2.0, 4.0], requires_grad=True)  # (3,)
    (a * b).sum().backward()
    np.testing.assert_allclose(a.grad.data, np.broadcast_to(b.data, (2, 3)))
    np.testing.assert_allclose(b.grad.data, [5, 7, 9])
    assert_tensor(a.grad, (2, 3), np.float32, name="a.grad")
    assert_tensor(b.grad, (3,), np.float32, name="b.grad (the broadcast operand's gradient has its own shape)")
    a.zero_grad(), b.zero_grad()
    (a / b - b).sum().backward()
    np.testing.assert_allclose(a.grad.data, np.broadcast_to(1 / b.data, (2, 3)))
    np.testing.assert_allclose(b.grad.data, -(a.data / b.data ** 2).sum(0) - 2)
    a.zero_grad()
    (-(a ** 2)).sum().backward()
    np.testing.assert_allclose(a.grad.data, -2 * a.data)
    c = Tensor([2.0], requires_grad=True)
    (3 - c * 2 + 1 / c).sum().backward()
    np.testing.assert_allclose(c.grad.data, [-2 - 1 / 4])
    ### BEGIN HIDDEN TESTS
    e = Tensor([2.0, 3.0], requires_grad=True)
    p = Tensor([3.0, 2.0], requires_grad=True)
    (e ** p).sum().backward()
    np.testing.assert_allclose(e.grad.data, p.data * e.data ** (p.data - 1), rtol=1e-6)
    np.testing.assert_allclose(p.grad.data, e.data ** p.data * np.log(e.data), rtol=1e-6)
    ### END HIDDEN TESTS


test_unit_arithmetic_grads()


# %% nbgrader={"grade": true, "grade_id": "test-matmul-shape-grads", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def test_unit_matmul_and_shape_grads():
    """matmul (2-D and batched), reshape, transpose, permute and indexing backward."""
    rng = np.random.default_rng(0)
    A = Tensor(rng.standard_normal((2, 3)).astype(np.float32), requires_grad=True)  # (M, K)
    B = Tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)  # (K, N)
    (A @ B).sum().backward()
    assert_tensor(A.grad, (2, 3), np.float32, name="A.grad")
    assert_tensor(B.grad, (3, 4), np.float32, name="B.grad")
    np.testing.assert_allclose(A.grad.data, np.ones((2, 4)) @ B.data.T, rtol=1e-5)
    np.testing.assert_allclose(B.grad.data, A.data.T @ np.ones((2, 4)), rtol=1e-5)
    X = Tensor(rng.standard_normal((5, 2, 3)).astype(np.float32), requires_grad=True)  # (B, M, K)
    B.zero_grad()
    (X @ B).sum().backward()
    assert B.grad.shape == (3, 4), f"shared weight gradient must be (3, 4), got {B.grad.shape}"
    np.testing.assert_allclose(B.grad.data, np.einsum("bmk,bmn->kn", X.data, np.ones((5, 2, 4))),
                               rtol=1e-5)
    W1 = Tensor(rng.standard_normal((1, 3, 4)).astype(np.float32), requires_grad=True)  # (1, K, N): broadcast batch
    X.zero_grad()
    (X @ W1).sum().backward()
    assert_tensor(W1.grad, (1, 3, 4), np.float32, name="grad of a (1, K, N) operand")
    np.testing.assert_allclose(W1.grad.data[0], B.grad.data, rtol=1e-5, err_msg="summed over the broadcast batch")
    np.testing.assert_allclose(X.grad.data, np.ones((5, 2, 4)) @ W1.data[0].T, rtol=1e-5)
    x = Tensor(np.arange(6, dtype=np.float32), requires_grad=True)  # (6,)
    y = x.reshape(2, 3).transpose() * Tensor([[1.0, 2.0]])  # (3, 2)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [1, 1, 1, 2, 2, 2])
    x.zero_grad()
    x[np.array([0, 0, 5])].sum().backward()
    np.testing.assert_allclose(x.grad.data, [2, 0, 0, 0, 0, 1], err_msg="repeated indices add up")
    p = Tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4), requires_grad=True)
    weights = Tensor(np.arange(24, dtype=np.float32).reshape(4, 2, 3))
    (p.permute(2, 0, 1) * weights).sum().backward()  # the gradient must go back through the inverse permutation
    np.testing.assert_allclose(p.grad.data, np.transpose(weights.data, (1, 2, 0)))
    assert_tensor(p.grad, (2, 3, 4), np.float32, name="grad through permute")
    ### BEGIN HIDDEN TESTS
    z = Tensor(rng.standard_normal((2, 3, 4)).astype(np.float32), requires_grad=True)
    (z.permute(2, 0, 1) * Tensor(np.arange(4, dtype=np.float32).reshape(4, 1, 1))).sum().backward()
    np.testing.assert_allclose(z.grad.data, np.broadcast_to(np.arange(4, dtype=np.float32), (2, 3, 4)))
    v = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    (A @ v).sum().backward()
    np.testing.assert_allclose(v.grad.data, A.data.sum(0), rtol=1e-5)
    ### END HIDDEN TESTS


test_unit_matmul_and_shape_grads()


# %% nbgrader={"grade": true, "grade_id": "test-reduction-grads", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_reduction_grads():
    """sum / mean / max with axis and keepdims; exp / log / sqrt."""
    x = Tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]], requires_grad=True)  # (2, 3)
    x.mean(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.data, np.full((2, 3), 1 / 3), rtol=1e-6)
    x.zero_grad()
    x.max(axis=1, keepdims=True).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[0, 1, 0], [0, 0, 1]])
    ties = Tensor([[2.0, 2.0, 1.0]], requires_grad=True)
    ties.max(axis=1).sum().backward()
    np.testing.assert_allclose(ties.grad.data, [[0.5, 0.5, 0]], err_msg="tied maxima share the gradient")
    x.zero_grad()
    (x.sum(axis=0) * Tensor([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[1, 2, 3], [1, 2, 3]])
    x.zero_grad()
    (x.exp().log() + x.sqrt()).sum().backward()
    np.testing.assert_allclose(x.grad.data, 1 + 0.5 / np.sqrt(x.data), rtol=1e-5)
    assert_tensor(x.grad, (2, 3), np.float32, name="x.grad")
    x.zero_grad()
    (x.exp() * Tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[np.e, 0, 0], [0, 0, np.exp(6.0)]], rtol=1e-5)
    ### BEGIN HIDDEN TESTS
    t = Tensor([2.0, 2.0, 1.0], requires_grad=True)
    t.max().backward()
    np.testing.assert_allclose(t.grad.data, [0.5, 0.5, 0], err_msg="ties share the gradient")
    ### END HIDDEN TESTS


test_unit_reduction_grads()


# %% nbgrader={"grade": true, "grade_id": "test-habit-grads", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_habit_grads_and_second_backward():
    """abs / clamp / float / clone and the PyTorch spellings are differentiable; a second
    backward() through a freed graph raises; retain_graph=True keeps it."""
    x = Tensor([-0.5, 0.3, 2.0], requires_grad=True)
    y = assert_tensor(x.clamp(0, 1), (3,), np.float32, name="x.clamp(0, 1)")
    assert y.requires_grad, "clamp must record the graph"
    y.sum().backward()
    np.testing.assert_allclose(assert_tensor(x.grad, (3,), np.float32, name="x.grad (clamp)").data, [0, 1, 0])
    edge = Tensor([0.0, 1.0], requires_grad=True)
    edge.clamp(0, 1).sum().backward()
    np.testing.assert_allclose(edge.grad.data, [1, 1], err_msg="at a bound itself the gradient passes (as in PyTorch)")
    x.zero_grad()
    a = assert_tensor(x.abs(), (3,), np.float32, name="x.abs()")
    np.testing.assert_allclose(a.data, [0.5, 0.3, 2.0])
    (a * Tensor([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_allclose(assert_tensor(x.grad, (3,), np.float32, name="x.grad (abs)").data, [-1, 2, 3])
    x.zero_grad()
    c = assert_tensor(x.clone(), (3,), np.float32, name="x.clone()")
    assert not np.shares_memory(c.data, x.data), "clone() must copy the data"
    (c * 2 + x.float()).sum().backward()
    np.testing.assert_allclose(assert_tensor(x.grad, (3,), np.float32, name="x.grad (clone, float)").data, [3, 3, 3])
    m = Tensor([[1.0, 5.0], [4.0, 2.0]], requires_grad=True)  # (2, 2)
    values, idx = m.max(dim=1)
    assert_tensor(values, (2,), np.float32, name="max(dim=1) values")
    assert_tensor(idx, (2,), np.int64, name="max(dim=1) indices")
    assert idx.tolist() == [1, 0] and not idx.requires_grad
    (values.sum() + m.unsqueeze(0).squeeze(0).view(4).sum(dim=0)).backward()
    np.testing.assert_allclose(assert_tensor(m.grad, (2, 2), np.float32, name="m.grad").data, [[1, 2], [2, 1]])
    loss = (m * m).sum()
    loss.backward()
    try:
        loss.backward()
        raise AssertionError("a second backward() through a freed graph must raise")
    except RuntimeError as e:
        assert "second time" in str(e), str(e)
    w = Tensor([2.0], requires_grad=True)
    out = (w * w).sum()
    out.backward(retain_graph=True)
    out.backward()
    np.testing.assert_allclose(w.grad.data, [8.0], err_msg="retain_graph=True allows one more pass")
    ### BEGIN HIDDEN TESTS
    t = Tensor([[0.5, -2.0], [0.1, 4.0]], requires_grad=True)
    (t.min(dim=0).values * 3).sum().backward()
    np.testing.assert_allclose(t.grad.data, [[0, 3], [3, 0]])
    z = Tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    z.flatten().sum(dim=0).backward()
    np.testing.assert_allclose(z.grad.data, [[1, 1, 1]])
    ### END HIDDEN TESTS


test_unit_habit_grads_and_second_backward()


# %% [markdown]
# ## 10. Trust, but verify: the gradient checker
#
# A wrong derivative does not crash: the network just learns badly, or not at all. The
# definition of the derivative gives an independent check. For each input element `x_i`:
#
# ```
#   d f / d x_i  ~=  ( f(x + eps e_i) - f(x - eps e_i) ) / (2 eps)       (central difference)
# ```
#
# The error of the central difference is O(eps^2); rounding error grows like 1/eps. In
# float32 (7 digits) no eps is good for both, so we compute in float64 (16 digits) where
# eps = 1e-6 gives about 10 correct digits.
#
# If `fn` returns a non-scalar, we check a random projection `sum(fn(x) * R)`: that checks
# `R` times the whole Jacobian in one backward pass. It costs two forward passes per input
# element, so use small inputs.

# %% nbgrader={"grade": false, "grade_id": "gradcheck", "locked": false, "schema_version": 3, "solution": true}
#| export
def gradcheck(fn, *inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              seed: int = 0) -> bool:
    """Compare backward() with central differences for every float Tensor in ``inputs``.

    Inputs are copied to float64 (requires_grad=True); non-float inputs (labels) are passed
    unchanged. Returns True, or raises AssertionError naming the argument, the index, the
    expected (numerical) and the got (analytic) value.

    HINTS:
        - copy each float Tensor input to a float64 Tensor with requires_grad=True
        - call fn once, draw a random projection R of the output's shape (seeded) and
          backpropagate R: that gives the analytic gradients
        - numerical: the objective is sum(fn(...) * R) under no_grad(); nudge each element
          by +eps and -eps in turn (then restore it) and take the central difference
        - compare with ``np.isclose(analytic, numerical, rtol=rtol, atol=atol)``
    """
    ### BEGIN SOLUTION
    args, checked = [], []
    for pos, x in enumerate(inputs):
        if isinstance(x, Tensor) and np.issubdtype(x.dtype, np.floating):
            t = Tensor(np.array(x.data, dtype=np.float64), dtype=np.float64, requires_grad=True)
            args.append(t)
            checked.append(pos)
        else:
            args.append(x)
    out = fn(*args)
    R = np.random.default_rng(seed).standard_normal(out.shape)

    def objective() -> float:
        with no_grad():
            return float((fn(*args).data.astype(np.float64) * R).sum())

    out.backward(R)
    for pos in checked:
        x = args[pos]
        analytic = np.zeros(x.shape) if x.grad is None else x.grad.data
        flat = x.data.reshape(-1)  # a view: changing it changes x
        numerical = np.zeros(flat.size)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            plus = objective()
            flat[i] = old - eps
            minus = objective()
            flat[i] = old
            numerical[i] = (plus - minus) / (2 * eps)
        numerical = numerical.reshape(x.shape)
        close = np.isclose(analytic, numerical, rtol=rtol, atol=atol)
        if not close.all():
            bad = tuple(int(i) for i in np.unravel_index(int(np.argmin(close.reshape(-1))), x.shape))
            message = (f"gradcheck failed for argument {pos} (shape {x.shape}) at index {bad}: "
                       f"expected (numerical) {numerical[bad]:.6g}, got (analytic) {analytic[bad]:.6g}")
            raise AssertionError(message)
    return True
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-gradcheck", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_gradcheck():
    """gradcheck accepts correct derivatives and names the culprit of a wrong one."""
    rng = np.random.default_rng(1)
    a = Tensor(rng.standard_normal((3, 4)))
    b = Tensor(rng.standard_normal((4, 2)))
    assert gradcheck(lambda p, q: ((p @ q).exp() / (1 + (p @ q) ** 2)).mean(axis=0), a, b)

    class WrongSquare(Function):
        def forward(self, x):
            self.save_for_backward(x)
            return x * x

        def backward(self, grad_out):
            (x,) = self.saved
            return (grad_out * x,)  # should be 2 * x

    try:
        gradcheck(lambda x: WrongSquare.apply(x).sum(), Tensor([1.0, 2.0]))
        raise AssertionError("gradcheck must reject a wrong derivative")
    except AssertionError as e:
        msg = str(e)
        assert "argument 0" in msg and "expected" in msg and "got" in msg, msg

    class WrongInSecond(Function):
        def forward(self, x, y):
            self.save_for_backward(x, y)
            return x * y

        def backward(self, grad_out):
            x, y = self.saved
            return grad_out * y, grad_out * y  # the second should be grad_out * x

    try:
        gradcheck(lambda x, y: WrongInSecond.apply(x, y).sum(), Tensor([1.0, 2.0]), Tensor([3.0, 5.0]))
        raise AssertionError("gradcheck must check every input, not only the first")
    except AssertionError as e:
        assert "argument 1" in str(e), str(e)
    ### BEGIN HIDDEN TESTS
    assert gradcheck(lambda x: (x[np.array([0, 0, 2])] * x.max()).sum(), Tensor([1.0, 3.0, 2.0]))
    ### END HIDDEN TESTS


test_unit_gradcheck()


# %% nbgrader={"grade": true, "grade_id": "test-fused-functions", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_fused_functions():
    """Activation and loss Functions pass gradcheck and stay finite for huge logits."""
    rng = np.random.default_rng(2)
    x = Tensor(rng.standard_normal((3, 4)))
    for fn in (ReLUFn, SigmoidFn, TanhFn, GELUFn):
        assert gradcheck(lambda t, f=fn: f.apply(t), x), fn.__name__
    assert gradcheck(lambda t: SoftmaxFn.apply(t, dim=1), x)
    assert gradcheck(lambda t: LogSoftmaxFn.apply(t, dim=0), x)
    labels = Tensor(np.array([0, 3, 1]))
    assert gradcheck(lambda t: CrossEntropyFn.apply(t, labels), x)
    y = Tensor(rng.uniform(0.1, 0.9, (3, 4)))
    assert gradcheck(lambda p: BCEFn.apply(p, Tensor((y.data > 0.5).astype(np.float32))), y)
    assert gradcheck(lambda p, q: MSEFn.apply(p, q), x, y)
    big = Tensor(np.array([[1e4, -1e4, 0.0]], dtype=np.float32), requires_grad=True)  # (1, 3)
    loss = CrossEntropyFn.apply(big, Tensor(np.array([1])))
    loss.backward()
    assert np.isfinite(loss.data) and np.isfinite(big.grad.data).all(), "logits of 1e4 must stay finite"
    ### BEGIN HIDDEN TESTS
    p = Tensor(np.array([0.0, 1.0], dtype=np.float32), requires_grad=True)
    bce = BCEFn.apply(p, Tensor(np.array([1.0, 0.0], dtype=np.float32)))
    bce.backward()
    assert np.isfinite(bce.data) and np.isfinite(p.grad.data).all()
    ### END HIDDEN TESTS


test_unit_fused_functions()


# %% [markdown]
# ## 11. Everything together: a two-layer network learns
#
# With autograd on, a training step is: forward, loss, `backward()`, move every parameter
# against its gradient. We train a tiny MLP on XOR-like data with plain gradient descent
# (module 06 will package the update as an optimizer).

# %% nbgrader={"grade": true, "grade_id": "test-autograd-module", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def test_module():
    """An MLP trained with our gradients fits XOR; everything stays float32."""
    rng = np.random.default_rng(0)
    X = Tensor(np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32))  # (4, 2)
    y = Tensor(np.array([0, 1, 1, 0]))  # (4,) class labels
    W1 = Tensor(rng.standard_normal((2, 8)).astype(np.float32), requires_grad=True)  # (2, 8)
    b1 = Tensor(np.zeros(8, dtype=np.float32), requires_grad=True)  # (8,)
    W2 = Tensor(rng.standard_normal((8, 2)).astype(np.float32), requires_grad=True)  # (8, 2)
    b2 = Tensor(np.zeros(2, dtype=np.float32), requires_grad=True)  # (2,)
    params = [W1, b1, W2, b2]
    losses = []
    for _ in range(300):
        h = TanhFn.apply(X @ W1 + b1)  # (4, 8)
        logits = h @ W2 + b2  # (4, 2)
        loss = CrossEntropyFn.apply(logits, y)
        for p in params:
            p.zero_grad()
        loss.backward()
        with no_grad():
            for p in params:
                p.data -= 0.5 * p.grad.data
        losses.append(loss.item())
    assert losses[-1] < 0.05, f"XOR should be learned, final loss {losses[-1]:.3f}"
    for p in params:
        assert p.dtype == np.float32 and p.grad.dtype == np.float32, "no silent float64"
    with no_grad():
        pred = (TanhFn.apply(X @ W1 + b1) @ W2 + b2).data.argmax(1)  # (4,)
    assert pred.tolist() == [0, 1, 1, 0]
    ### BEGIN HIDDEN TESTS
    assert logits.dtype == np.float32 and h.dtype == np.float32
    ### END HIDDEN TESTS


test_module()

# %% [markdown]
# ## Systems measurement: graph size, gradient memory, and the price of checking
#
# Three measurements on an MLP 784-256-128-10 with a batch of 64 (the milestone-3 network):
# how many nodes the graph records, how many bytes the gradients take next to the
# parameters, and how much slower a numerical gradient is than `backward()`.

# %%
import time


def graph_stats(root: Tensor):
    """Number of Function nodes and bytes of arrays they saved for backward."""
    nodes, saved = 0, 0
    for t in topological_order(root):
        if t._ctx is not None:
            nodes += 1
            saved += sum(v.nbytes for v in t._ctx.saved if isinstance(v, np.ndarray))
    return nodes, saved


rng = np.random.default_rng(0)
sizes = [784, 256, 128, 10]
params = []
for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
    bound = 1 / np.sqrt(fan_in)
    params.append(Tensor(rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32),
                         requires_grad=True))  # (in, out)
    params.append(Tensor(np.zeros(fan_out, dtype=np.float32), requires_grad=True))  # (out,)
xb = Tensor(rng.standard_normal((64, 784)).astype(np.float32))  # (B, 784)
yb = Tensor(rng.integers(0, 10, 64))  # (B,)


def mlp_loss():
    h = xb
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]  # (B, out)
        if i < len(params) - 2:
            h = ReLUFn.apply(h)
    return CrossEntropyFn.apply(h, yb)


loss = mlp_loss()
nodes, saved_bytes = graph_stats(loss)
t0 = time.perf_counter()
loss.backward()
t_backward = time.perf_counter() - t0
param_bytes = sum(p.memory_footprint() for p in params)
grad_bytes = sum(p.grad.memory_footprint() for p in params)
print(f"graph: {nodes} nodes, {saved_bytes / 1e6:.2f} MB saved for backward (batch 64)")
print(f"parameters {param_bytes / 1e6:.2f} MB, gradients {grad_bytes / 1e6:.2f} MB "
      f"(ratio {grad_bytes / param_bytes:.1f}x)")
with no_grad():
    free = mlp_loss()
print(f"under no_grad(): requires_grad={free.requires_grad}, recorded node: {free._ctx}")

# numerical gradient of 20 entries of W1 vs one backward pass for all 235,146 parameters
W1 = params[0]
t0 = time.perf_counter()
checks = 20
max_err = 0.0
for k in range(checks):
    i, j = divmod(k * 997 % W1.size, W1.shape[1])
    old = W1.data[i, j]
    with no_grad():
        W1.data[i, j] = old + 1e-2
        plus = mlp_loss().item()
        W1.data[i, j] = old - 1e-2
        minus = mlp_loss().item()
    W1.data[i, j] = old
    max_err = max(max_err, abs((plus - minus) / 2e-2 - W1.grad.data[i, j]))
t_numeric = (time.perf_counter() - t0) / checks
n_params = sum(p.size for p in params)
print(f"backward(): {t_backward * 1e3:.1f} ms for all {n_params:,} gradients; numerical: "
      f"{t_numeric * 1e3:.1f} ms per gradient -> {n_params * t_numeric / t_backward:,.0f}x slower "
      f"for all of them (float32, eps=1e-2: max |numerical - analytic| = {max_err:.1e})")

# %% [markdown]
# ## Reflect
#
# 1. Your measurement shows the gradients take exactly as much memory as the parameters.
#    Adam (module 06) keeps two more arrays per parameter. For a 7-billion-parameter model
#    in float32, how many GB are parameters + gradients + Adam state, before activations?
# 2. The arrays saved for backward grow with the batch size; parameters and gradients do
#    not. At what batch size does the saved activation memory of this MLP equal its
#    parameter memory? Why does `no_grad()` make evaluation cheaper?
# 3. Numerical gradients need two forward passes per parameter; backward costs about two
#    forward passes for *all* of them. Use your measured times to explain why every
#    framework uses reverse-mode autodiff and keeps finite differences for testing only.
# 4. Why does cross-entropy get its own fused Function instead of `log_softmax` followed
#    by indexing and `mean`? Count nodes and saved arrays for both versions.
# 5. `backward()` frees the graph as it goes. What would happen to memory in a training
#    loop if it did not? What would break if you called `backward()` twice on the same loss?
# 6. Section 8c measured the page faults of a fresh 1.5 MB array. How many page faults does
#    one training step cause if every activation it frees is returned to the OS and
#    allocated again (count the MB of arrays the step makes), and what does that cost at
#    your measured time per fault? When is keeping freed memory the wrong choice?
