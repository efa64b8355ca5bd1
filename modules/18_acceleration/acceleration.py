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
# # Module 18: Acceleration
#
# Your framework is correct. Module 14 told you where its time goes: in a CNN training step,
# the convolutions' backward and forward passes, then pooling and batch norm; in a GPT, the
# matrix products and the element-wise kernels around them. This module makes that code fast
# without changing what it computes. Every trick here is one a production framework uses:
# hand the arithmetic to BLAS, lay the data out so that the inner loop reads consecutive
# memory, do a whole batch in one big call instead of many small ones, compute a gradient as
# a second convolution instead of a scatter, fuse passes so that fewer temporaries are
# written, update in place. Each gain is measured on your own code, here, on this machine.
# At the end your kernels become what module 09's `Conv2d`, `MaxPool2d` and `BatchNorm2d`
# run: one switch, the way module 05 switched on autograd, and the milestone-4 CNN trains
# faster with no layer written twice.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far                        you build now                        this unlocks
#   ------------                        -------------                        ------------
#   01 Tensor, matmul_loops     -->     18 loops -> BLAS, measured     -->   20 capstone: a faster
#   09 Conv2d (im2col), pooling,        18 softmax, LayerNorm: fused            model for the
#      BatchNorm2d              -->     18 in-place updates, buffers            speed track
#   14 Profiler, Amdahl,        -->     18 channels-last im2col, one GEMM
#      swap_method                      18 input gradient as a convolution
#   05 autograd (Function)              18 pooling by reshape, fused BN
#                                       18 enable_acceleration(): the CNN
#                                          layers run your kernels
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp optimization.acceleration
#| export
import contextlib
import ctypes
import glob
import os
import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinytorch.core.autograd import _as_method
from tinytorch.core.spatial import (
    BatchNorm2d,
    BatchNorm2dFunction,
    Conv2dFunction,
    MaxPool2dFunction,
    _check_input,
    _pair,
    conv_output_size,
)

# %% [markdown]
# ## 1. Measure first: loops against BLAS
#
# Module 01 gave you `matmul_loops`, the three loops of a matrix product. NumPy's `@` calls
# BLAS (OpenBLAS here): the same multiply-adds, but in blocks that stay in the CPU's caches,
# eight or sixteen at a time in SIMD registers, with no Python between them. How much is that
# worth? A matrix product of (n, n) by (n, n) does `n^3` multiply-adds, `2 n^3` FLOPs:
#
# ```
#   n = 48:  2 * 48^3 = 221,184 FLOPs     Python: ~1 multiply-add per 100 ns  ->  ~10 ms
#                                          BLAS:   ~10-100 GFLOP/s per core   ->  a few us
# ```
#
# Every figure below is measured when the cell runs. `best_of` takes the fastest of a few
# runs: the minimum is the run least disturbed by other programs on the machine (module 19
# explains when a median and an interval are needed instead).

# %% nbgrader={"grade": false, "grade_id": "timing", "locked": true, "schema_version": 3, "solution": false}
#| export
def best_of(fn, repeats=5, timer=None):
    """Fastest of ``repeats`` calls of fn(), in seconds (``timer``: time.perf_counter by default)."""
    import time
    timer = timer or time.perf_counter
    best = float("inf")
    for _ in range(repeats):
        t0 = timer()
        fn()
        best = min(best, timer() - t0)
    return best


# %%
from tinytorch.core.tensor import Tensor, matmul_loops

_rng = np.random.default_rng(0)
for n in (16, 48):
    a, b = (_rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    t_loop = best_of(lambda: matmul_loops(Tensor(a), Tensor(b)), repeats=2)
    t_blas = best_of(lambda: a @ b, repeats=20)
    np.testing.assert_allclose(matmul_loops(Tensor(a), Tensor(b)).data, a @ b, rtol=1e-4, atol=1e-4)
    print(f"({n}, {n}) @ ({n}, {n}): loops {t_loop * 1e3:7.2f} ms ({2 * n**3 / t_loop / 1e6:6.1f} MFLOP/s), "
          f"BLAS {t_blas * 1e6:7.1f} us ({2 * n**3 / t_blas / 1e9:6.2f} GFLOP/s): {t_loop / t_blas:,.0f}x")
a = _rng.standard_normal((256, 256)).astype(np.float32)
t_big = best_of(lambda: a @ a, repeats=5)
print(f"(256, 256) @ (256, 256) with BLAS: {t_big * 1e3:.2f} ms = {2 * 256**3 / t_big / 1e9:.1f} GFLOP/s")

# %% [markdown]
# Two lessons hide in these numbers. The gap is thousands of times, so no Python loop may run
# per multiply-add anywhere in a framework. And BLAS gets *faster per FLOP* as the matrices
# grow: a small product spends its time on the call and on loading the operands, a big one
# keeps the arithmetic units busy. Hence the rule this module applies over and over: **one
# large call beats many small ones.**
#
# ## 2. Element-wise kernels: softmax and LayerNorm
#
# Softmax and LayerNorm do few FLOPs per byte; their speed is how many times they sweep the
# data through memory and how many temporaries they allocate. Written with a Python loop per
# row (as a first translation of the formula often is), they are slow for the same reason as
# the matmul loops. Vectorized, each line of NumPy is one sweep over the whole array:
#
# ```
#   softmax over the last axis of x (R, D), stable:           sweeps   temporaries
#     m = x.max(-1, keepdims)              (R, 1)              1        small
#     e = exp(x - m)                       (R, D)              2        x - m, e
#     e / e.sum(-1, keepdims)              (R, D)              2        the result
#   fused: write x - m into e, exp in place, divide in place   same     only e
# ```
#
# `np.subtract(x, m, out=e)` writes into an array you already have instead of allocating a
# new one; `np.exp(e, out=e)` overwrites it. Same sweeps, one allocation instead of three.
# LayerNorm (module 13's, over the last axis with `gamma`, `beta`) is the same pattern:
# mean, centred values, variance of the centred values, scale, shift.
#
# The loop versions are given (they are the oracles, as the seven-loop convolution was in
# module 09). Write the fast ones.

# %% nbgrader={"grade": false, "grade_id": "loop-kernels", "locked": true, "schema_version": 3, "solution": false}
#| export
def softmax_loops(x):
    """Softmax over the last axis, one Python loop per row (the oracle). x: (..., D)."""
    x = np.asarray(x)
    rows = x.reshape(-1, x.shape[-1])
    out = np.empty_like(rows)
    for r in range(rows.shape[0]):
        e = np.exp(rows[r] - rows[r].max())
        out[r] = e / e.sum()
    return out.reshape(x.shape)


def layer_norm_loops(x, gamma, beta, eps=1e-5):
    """LayerNorm over the last axis, one Python loop per row (the oracle). x: (..., D)."""
    x = np.asarray(x)
    rows = x.reshape(-1, x.shape[-1])
    out = np.empty_like(rows)
    for r in range(rows.shape[0]):
        mu = rows[r].mean()
        var = ((rows[r] - mu) ** 2).mean()
        out[r] = (rows[r] - mu) / np.sqrt(var + eps) * gamma + beta
    return out.reshape(x.shape)


# %% nbgrader={"grade": false, "grade_id": "fast-kernels", "locked": false, "schema_version": 3, "solution": true}
#| export
def softmax_fast(x):
    """Softmax over the last axis, vectorized, with one output allocation. x: (..., D), float.

    EXAMPLE: softmax_fast(np.array([[0., 0.], [0., np.log(3)]])) -> [[0.5, 0.5], [0.25, 0.75]]
    HINTS:
      - subtract the row maximum (x.max(axis=-1, keepdims=True)) so exp never overflows
      - out = np.subtract(x, m); then np.exp(out, out=out); then divide in place by the row sums
    """
    x = np.asarray(x)
    ### BEGIN SOLUTION
    out = np.subtract(x, x.max(axis=-1, keepdims=True))        # (..., D) the one allocation
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out
    ### END SOLUTION


def layer_norm_fast(x, gamma, beta, eps=1e-5):
    """LayerNorm over the last axis, vectorized: (x - mean) / sqrt(var + eps) * gamma + beta.

    x: (..., D); gamma, beta: (D,). Biased variance (divide by D), as PyTorch.
    HINTS:
      - x minus its row mean (keepdims=True) is the one big temporary, xc; keep reusing it
      - var from xc (np.einsum("...d,...d->...", xc, xc) / D sums squares without a temporary)
      - scale xc in place by 1 / sqrt(var + eps)[..., None], then by gamma, then add beta
    """
    x = np.asarray(x)
    ### BEGIN SOLUTION
    D = x.shape[-1]
    xc = x - x.mean(axis=-1, keepdims=True)                     # (..., D)
    var = np.einsum("...d,...d->...", xc, xc) / D               # (...,)
    xc *= (1.0 / np.sqrt(var + eps)).astype(xc.dtype)[..., None]
    xc *= gamma
    xc += beta
    return xc
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-fast-kernels", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_fast_kernels():
    """softmax_fast and layer_norm_fast agree with the loop oracles, stay stable and float32."""
    r = np.random.default_rng(0)
    x = (r.standard_normal((3, 5, 7)) * 4).astype(np.float32)
    s = softmax_fast(x)
    assert isinstance(s, np.ndarray) and s.shape == x.shape and s.dtype == np.float32, (type(s), s.shape)
    np.testing.assert_allclose(s, softmax_loops(x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(s.sum(-1), 1, rtol=1e-5)
    big = softmax_fast(np.array([[1e4, 0.0, -1e4]], np.float32))
    assert np.isfinite(big).all(), f"softmax of +-1e4 must stay finite, got {big}"
    np.testing.assert_allclose(softmax_fast(np.array([[0.0, 0.0], [0.0, np.log(3)]])), [[0.5, 0.5], [0.25, 0.75]])
    g, b = r.standard_normal(7).astype(np.float32), r.standard_normal(7).astype(np.float32)
    ln = layer_norm_fast(x, g, b)
    assert isinstance(ln, np.ndarray) and ln.shape == x.shape and ln.dtype == np.float32, (type(ln), ln.shape)
    np.testing.assert_allclose(ln, layer_norm_loops(x, g, b), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer_norm_fast(x, np.ones(7), np.zeros(7)).std(-1), 1, atol=1e-3)
    x0 = x.copy()
    softmax_fast(x)
    layer_norm_fast(x, g, b)
    np.testing.assert_array_equal(x, x0, err_msg="the kernels must not overwrite their input")
    ### BEGIN HIDDEN TESTS
    np.testing.assert_allclose(layer_norm_fast(np.full((2, 4), 3.0), np.ones(4), np.full(4, 0.5)), 0.5)
    ### END HIDDEN TESTS


test_unit_fast_kernels()

# %% [markdown]
# Measured on a GPT-sized activation (64 rows of 256, a small batch):

# %%
_x = _rng.standard_normal((64, 256)).astype(np.float32)     # (64, 256)
_g, _b = np.ones(256, np.float32), np.zeros(256, np.float32)


def _softmax_naive(x):                                       # vectorized, but three allocations
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


for name, loops, naive, fast in (("softmax", lambda: softmax_loops(_x), lambda: _softmax_naive(_x),
                                  lambda: softmax_fast(_x)),
                                 ("LayerNorm", lambda: layer_norm_loops(_x, _g, _b),
                                  lambda: (_x - _x.mean(-1, keepdims=True)) / np.sqrt(_x.var(-1, keepdims=True) + 1e-5) * _g + _b,
                                  lambda: layer_norm_fast(_x, _g, _b))):
    t0, t1, t2 = best_of(loops, 3), best_of(naive, 20), best_of(fast, 20)
    print(f"{name:9} (64, 256): row loop {t0 * 1e6:7.0f} us, vectorized {t1 * 1e6:6.0f} us ({t0 / t1:4.0f}x), "
          f"fewer temporaries {t2 * 1e6:6.0f} us ({t1 / t2:.2f}x more)")

# %% [markdown]
# Vectorizing removes the per-row Python cost (tens of times). Fewer temporaries is a smaller
# gain at this size, which fits in the CPU's cache anyway; it grows when the arrays do not
# (the next section measures why).
#
# ## 3. In-place updates and buffer reuse
#
# An optimizer step touches every parameter. `v = momentum * v + g` allocates two new arrays
# the size of the parameter, writes them and frees the old `v`; `v *= momentum; v += g` writes
# into the buffer that is already there. A fresh large array also costs the operating system:
# the first write to each new 4 KiB page of memory is a page fault, and every page is zeroed
# before you get it. A buffer you reuse has paid that once.
#
# ```
#   p, g, v: 1,000,000 float32 = 4 MB each
#   allocating:  v = m * v + g       2 new arrays (8 MB), 3 reads + 2 writes of 4 MB
#   in place:    v *= m; v += g      0 new arrays,       3 reads + 2 writes of 4 MB
# ```

# %% nbgrader={"grade": false, "grade_id": "sgd-inplace", "locked": false, "schema_version": 3, "solution": true}
#| export
def sgd_momentum_step(param, grad, buf, lr, momentum=0.9):
    """One SGD-momentum update, in place: buf = momentum * buf + grad; param -= lr * buf.

    param, grad, buf: float arrays of one shape; param and buf are modified, nothing is
    allocated the size of the parameter except one scaled copy of buf. Returns None.
    HINT: scale buf in place by momentum, add grad in place, then subtract np.multiply(buf, lr) in place.
    """
    ### BEGIN SOLUTION
    buf *= momentum
    buf += grad
    param -= np.multiply(buf, lr, dtype=param.dtype)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-sgd-inplace", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_sgd_momentum_step():
    """The in-place step gives the textbook values and writes into the given arrays."""
    r = np.random.default_rng(1)
    p, g, v = (r.standard_normal(10).astype(np.float32) for _ in range(3))
    p0, v0 = p.copy(), v.copy()
    p_id, v_id = id(p), id(v)
    out = sgd_momentum_step(p, g, v, lr=0.1, momentum=0.9)
    assert out is None, "the step updates in place and returns None"
    np.testing.assert_allclose(v, 0.9 * v0 + g, rtol=1e-6)
    np.testing.assert_allclose(p, p0 - 0.1 * (0.9 * v0 + g), rtol=1e-6)
    assert id(p) == p_id and id(v) == v_id and p.dtype == np.float32 and v.dtype == np.float32
    ### BEGIN HIDDEN TESTS
    q = np.ones(3, np.float32)
    sgd_momentum_step(q, np.ones(3, np.float32), np.zeros(3, np.float32), lr=0.5, momentum=0.0)
    np.testing.assert_allclose(q, 0.5)
    ### END HIDDEN TESTS


test_unit_sgd_momentum_step()

# %%
_p, _gr, _v = (_rng.standard_normal(1_000_000).astype(np.float32) for _ in range(3))


def _alloc_step():
    global _p, _v
    _v = 0.9 * _v + _gr
    _p = _p - 0.01 * _v


t_alloc = best_of(_alloc_step, 9)
t_inplace = best_of(lambda: sgd_momentum_step(_p, _gr, _v, 0.01), 9)
print(f"SGD momentum step on 1M parameters: allocating {t_alloc * 1e3:.2f} ms, in place "
      f"{t_inplace * 1e3:.2f} ms ({t_alloc / t_inplace:.2f}x)")
_big = 32 * 2**20 // 4                                              # 32 MiB of float32
t_fresh = best_of(lambda: np.ones(_big, np.float32), 5)
_buf = np.empty(_big, np.float32)
t_reuse = best_of(lambda: _buf.fill(1.0), 5)
print(f"write 32 MiB: into a fresh array {t_fresh * 1e3:.1f} ms, into a reused buffer {t_reuse * 1e3:.1f} ms "
      f"(the difference is the page faults of fresh memory: {t_fresh / t_reuse:.1f}x)")

# %% [markdown]
# ## 4. Memory layout: contiguity and channels
#
# A NumPy array is a block of memory plus *strides*: how many bytes to step for each axis.
# `x.transpose(...)` changes only the strides, not a byte of data. An operation is fast when
# its inner loop walks consecutive addresses (every byte of a 64-byte cache line is used) and
# slow when it jumps (one float used per line fetched).
#
# ```
#   (N, C, H, W) "channels first", NCHW:   x[n, c, h, w+1] is next to x[n, c, h, w]
#   (N, H, W, C) "channels last",  NHWC:   x[n, h, w, c+1] is next to x[n, h, w, c]
#
#   im2col gathers, for every output pixel, the KH x KW x C values under the kernel:
#     from NCHW: each (ki, kj, c) value comes from a different plane: runs of 1 float
#     from NHWC: for each (ki, kj), the C channels are one run of C consecutive floats
# ```
#
# So lay activations out channels-last, and make the im2col rows `(ki, kj, c)`: the gather
# copies runs of C floats (32 to 128 here) instead of single ones, and the matrix product
# `cols (N*L, K) @ weight.T (K, O)` gives `(N*L, O)`, which *is* the next activation in NHWC.
# The tensors still present the `(N, C, H, W)` shape every layer expects: `as_nchw` is a
# transposed view of the NHWC memory, free to make. NumPy's element-wise operations keep the
# memory order of their input, so ReLU's output is channels-last too, and the layout flows
# through the network with no copy.

# %% nbgrader={"grade": false, "grade_id": "layout-helpers", "locked": true, "schema_version": 3, "solution": false}
#| export
def channels_last(x):
    """A logical (N, C, H, W) array seen as (N, H, W, C): a view (free; contiguous when x is
    stored channels-last)."""
    return x.transpose(0, 2, 3, 1)


def as_nchw(xh):
    """An (N, H, W, C) array presented as the (N, C, H, W) every layer expects: a view."""
    return xh.transpose(0, 3, 1, 2)


# %%
_xc = _rng.standard_normal((16, 32, 32, 32)).astype(np.float32)    # (N, C, H, W) stored NCHW
_xh = np.ascontiguousarray(channels_last(_xc))                      # the same values stored NHWC
print(f"sum over channels (N, C, H, W) -> (N, H, W): NCHW memory "
      f"{best_of(lambda: _xc.sum(axis=1), 5) * 1e3:.2f} ms, NHWC memory "
      f"{best_of(lambda: _xh.sum(axis=3), 5) * 1e3:.2f} ms")
print(f"copy to the other layout (a transpose that must move every float): "
      f"{best_of(lambda: np.ascontiguousarray(channels_last(_xc)), 5) * 1e3:.2f} ms for "
      f"{_xc.nbytes / 1e6:.1f} MB")

# %% [markdown]
# ## 5. Convolution: channels-last im2col and one large GEMM
#
# Module 09's `Conv2dFunction` lays patches out as `(N, C*KH*KW, L)` and runs one product per
# image: `np.matmul(w2 (O, K), cols (N, K, L))` is N matrix products of `(O, K) @ (K, L)`.
# Channels-last, the whole batch is **one** product:
#
# ```
#   x (N, H, W, C)  --pad-->  xp (N, H+2P, W+2P, C)
#   windows view   (N, Ho, Wo, C, KH, KW)          sliding_window_view(xp, (KH, KW), axis=(1, 2))
#   cols           (N*Ho*Wo, KH*KW*C)              rows ordered (ki, kj, c): one copy
#   weight (O, C, KH, KW) -> wk (O, KH, KW, C) -> (O, K)
#   out = cols @ wk.T   (N*L, K) @ (K, O) -> (N*L, O) = (N, Ho, Wo, O), channels-last
#
#   second layer of the milestone CNN: N*L = 128*32*32 = 131,072 rows, K = 9*32 = 288, O = 32
#   one GEMM of 131,072 x 288 x 32 = 1.21 G multiply-adds
# ```
#
# Whether one big GEMM beats NumPy's batched `matmul` (also a single call, looping over the
# images inside) is a question for measurement, not for belief: `benchmarks/acceleration.py`
# times both at batch 128 and finds them within about 10% of each other. What this layout buys
# is the gather (runs of C floats), an output that is already the next layer's input, and a
# weight gradient that is one product over the whole batch.
#
# The backward pass is two more products of the same size. The weight gradient, summed over
# the batch, is again one GEMM: `dW = g2.T @ cols`, `(O, N*L) @ (N*L, K)`, with `g2` the output
# gradient as `(N*L, O)` (a free view when it is channels-last).

# %% nbgrader={"grade": false, "grade_id": "im2col-nhwc", "locked": false, "schema_version": 3, "solution": true}
#| export
def im2col_nhwc(xh, kernel_size, stride=1, padding=0):
    """Patches of a channels-last batch as rows: xh (N, H, W, C) -> (cols, (Ho, Wo)).

    cols has shape (N*Ho*Wo, KH*KW*C), row n*Ho*Wo + i*Wo + j holding
    xpad[n, i*S + ki, j*S + kj, c] at column (ki*KW + kj)*C + c.
    HINTS:
      - pad H and W with zeros only when padding > 0 (a new (N, H+2P, W+2P, C) array)
      - sliding_window_view(xp, (KH, KW), axis=(1, 2)), every S-th window, cropped to (Ho, Wo),
        is (N, Ho, Wo, C, KH, KW): transpose to (N, Ho, Wo, KH, KW, C), copy, reshape
    """
    KH, KW = _pair(kernel_size, "kernel_size")
    S, P = int(stride), int(padding)
    N, H, W, C = xh.shape
    Ho, Wo = conv_output_size(H, KH, S, P), conv_output_size(W, KW, S, P)
    ### BEGIN SOLUTION
    if P > 0:
        xp = np.zeros((N, H + 2 * P, W + 2 * P, C), xh.dtype)              # (N, H+2P, W+2P, C)
        xp[:, P:P + H, P:P + W] = xh
    else:
        xp = xh
    win = sliding_window_view(xp, (KH, KW), axis=(1, 2))[:, ::S, ::S][:, :Ho, :Wo]   # (N, Ho, Wo, C, KH, KW)
    cols = np.empty((N, Ho, Wo, KH, KW, C), xh.dtype)
    np.copyto(cols, win.transpose(0, 1, 2, 4, 5, 3))                       # the one copy, runs of C
    return cols.reshape(N * Ho * Wo, KH * KW * C), (Ho, Wo)
    ### END SOLUTION


def conv2d_nhwc(x, weight, bias=None, stride=1, padding=0):
    """Convolution of a logical (N, C, H, W) batch as one GEMM. Returns (out, cols).

    out is (N, O, Ho, Wo) as a view of channels-last memory (N, Ho, Wo, O); cols (N*L, K) is
    what the backward pass needs. weight (O, C, KH, KW), bias (O,) or None.
    HINTS: cols from im2col_nhwc(channels_last(x), ...); wk = weight.transpose(0, 2, 3, 1)
           .reshape(O, -1); out2 = cols @ wk.T, add the bias, reshape, as_nchw.
    """
    N = x.shape[0]
    O, C, KH, KW = weight.shape
    ### BEGIN SOLUTION
    cols, (Ho, Wo) = im2col_nhwc(channels_last(x), (KH, KW), stride, padding)   # (N*L, K)
    wk = weight.transpose(0, 2, 3, 1).reshape(O, -1)                           # (O, K), (ki, kj, c)
    out = cols @ wk.T                                                          # (N*L, O)
    if bias is not None:
        out += bias
    return as_nchw(out.reshape(N, Ho, Wo, O)), cols
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-conv-nhwc", "locked": true, "points": 2, "schema_version": 3, "solution": false}
from tinytorch.core.spatial import conv2d_loops


def test_unit_conv_nhwc():
    """im2col_nhwc's layout; conv2d_nhwc agrees with module 09's seven-loop oracle."""
    xh = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)               # a..p = 0..15, C = 1
    cols, (ho, wo) = im2col_nhwc(xh, 3)
    assert (ho, wo) == (2, 2) and cols.shape == (4, 9), f"expected (4, 9) and (2, 2), got {cols.shape}, {(ho, wo)}"
    np.testing.assert_array_equal(cols[0], [0, 1, 2, 4, 5, 6, 8, 9, 10])   # window at (0, 0)
    np.testing.assert_array_equal(cols[3], [5, 6, 7, 9, 10, 11, 13, 14, 15])
    two = np.stack([np.zeros((3, 3)), np.ones((3, 3))], axis=-1)[None].astype(np.float32)  # C = 2
    c2, _ = im2col_nhwc(two, 2)
    np.testing.assert_array_equal(c2[0], [0, 1, 0, 1, 0, 1, 0, 1], err_msg="columns are ordered (ki, kj, c)")
    cp, size = im2col_nhwc(np.ones((2, 5, 5, 3), np.float32), (3, 3), stride=2, padding=1)
    assert size == (3, 3) and cp.shape == (18, 27), f"got {cp.shape}, {size}"
    assert cp[0].sum() == 12, "the corner window sees 2x2 of 3x3 positions with padding 1, times 3 channels"
    r = np.random.default_rng(0)
    for (shape, O, k, s, p) in [((2, 3, 7, 7), 4, 3, 1, 1), ((1, 2, 8, 9), 3, (3, 2), 2, 0), ((2, 1, 6, 6), 2, 5, 1, 2)]:
        x = r.standard_normal(shape).astype(np.float32)
        w = r.standard_normal((O, shape[1]) + _pair(k, "k")).astype(np.float32)
        b = r.standard_normal(O).astype(np.float32)
        out, cols = conv2d_nhwc(x, w, b, s, p)
        ref = conv2d_loops(x, w, b, stride=s, padding=p)
        assert out.shape == ref.shape and out.dtype == np.float32, f"expected {ref.shape} float32, got {out.shape} {out.dtype}"
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
        assert cols.shape == (ref.shape[0] * ref.shape[2] * ref.shape[3], w[0].size), cols.shape
    ### BEGIN HIDDEN TESTS
    out, _ = conv2d_nhwc(np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 3, 3), np.float32))
    np.testing.assert_allclose(out, 9)
    ### END HIDDEN TESTS


test_unit_conv_nhwc()

# %% [markdown]
# ### The input gradient: a convolution, not a scatter
#
# Module 09 computes `dL/dx` in two steps: `dcols = g2 @ wk` (a GEMM producing a `(N*L, K)`
# array, KH*KW times the input's size), then `col2im`, which adds every entry back onto the
# pixel it came from: KH*KW passes of read-add-write over the padded input. For stride 1 there
# is a shortcut. Each input pixel receives `sum over (ki, kj, o) of g[o, i-ki+P, j-kj+P] *
# W[o, c, ki, kj]`: that is itself a convolution, of the output gradient padded by
# `K - 1 - P`, with the kernel flipped in both spatial axes and input and output channels
# swapped (a "transposed convolution"):
#
# ```
#   dx = conv(g padded by K-1-P, W')     W'[c, o, ki, kj] = W[o, c, K-1-ki, K-1-kj]
#   3x3, P = 1:  g (N, 32, 32, O) padded by 1, kernel (C, O, 3, 3): output (N, 32, 32, C)
#   one im2col of g (a gather: the fast direction) + one GEMM; no scatter, no dcols
# ```
#
# For other strides (and non-square kernels) keep the scatter: write it channels-last, the
# same loop over kernel offsets as module 09's `col2im`.

# %% nbgrader={"grade": false, "grade_id": "conv-input-grad", "locked": false, "schema_version": 3, "solution": true}
#| export
def conv2d_input_grad(grad_out, weight, x_shape, stride=1, padding=0):
    """dL/dx of a convolution: (N, O, Ho, Wo) -> (N, C, H, W) as a view of channels-last memory.

    Stride 1 with a square kernel and padding <= K - 1: the transposed convolution (im2col of
    the gradient padded by K - 1 - P, and the flipped, channel-swapped kernel). Otherwise:
    dcols = g2 @ wk and a channels-last col2im.
    HINTS:
      - im2col_nhwc of the channels-last gradient, padded by K - 1 - P: (N*H*W, KH*KW*O)
      - the kernel flipped in both spatial axes, as a (C, KH*KW*O) matrix with columns (ki, kj, o)
      - their product is dx as (N*H*W, C)
    """
    N, O, Ho, Wo = grad_out.shape
    _, C, KH, KW = weight.shape
    H, W = x_shape[2], x_shape[3]
    S, P = int(stride), int(padding)
    if not (S == 1 and KH == KW and P <= KH - 1):
        g2 = channels_last(grad_out).reshape(-1, O)                              # (N*L, O)
        dcols = (g2 @ weight.transpose(0, 2, 3, 1).reshape(O, -1)).reshape(N, Ho, Wo, KH, KW, C)
        dxp = np.zeros((N, H + 2 * P, W + 2 * P, C), dcols.dtype)                # (N, H+2P, W+2P, C)
        for ki in range(KH):
            for kj in range(KW):
                dxp[:, ki:ki + S * Ho:S, kj:kj + S * Wo:S] += dcols[:, :, :, ki, kj]
        return as_nchw(dxp[:, P:P + H, P:P + W])
    ### BEGIN SOLUTION
    colsg, _ = im2col_nhwc(channels_last(grad_out), (KH, KW), 1, KH - 1 - P)    # (N*H*W, KH*KW*O)
    wt = weight[:, :, ::-1, ::-1].transpose(1, 2, 3, 0).reshape(C, -1)           # (C, KH*KW*O)
    return as_nchw((colsg @ wt.T).reshape(N, H, W, C))                           # (N, C, H, W) view
    ### END SOLUTION


# %% [markdown]
# The tests compare with module 09's own methods. Once this module is exported, `Conv2dFunction`
# may already run your kernels (section 7 explains the switch); `module_09` reaches behind it.

# %%
def module_09(cls, name):
    """Module 09's method cls.name, also when module 18's kernel is installed in its place."""
    method = cls.__dict__[name]
    return getattr(method, "__wrapped__", method)


# %% nbgrader={"grade": true, "grade_id": "test-conv-input-grad", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_conv_input_grad():
    """The transposed convolution gives module 09's input gradient (and the scatter path too)."""
    r = np.random.default_rng(2)
    for (shape, O, k, s, p) in [((2, 3, 6, 6), 4, 3, 1, 1), ((1, 2, 7, 7), 3, 3, 1, 0), ((2, 2, 7, 6), 3, 5, 1, 2),
                                ((1, 2, 7, 7), 2, 3, 2, 1), ((1, 2, 6, 7), 2, (2, 3), 1, 1)]:
        x = r.standard_normal(shape).astype(np.float32)
        w = r.standard_normal((O, shape[1]) + _pair(k, "k")).astype(np.float32)
        fn = Conv2dFunction()
        out = module_09(Conv2dFunction, "forward")(fn, x, w, stride=s, padding=p)
        g = r.standard_normal(out.shape).astype(np.float32)
        ref = module_09(Conv2dFunction, "backward")(fn, g)[0]
        dx = conv2d_input_grad(g, w, x.shape, s, p)
        assert dx.shape == x.shape, f"expected {x.shape}, got {dx.shape}"
        np.testing.assert_allclose(dx, ref, rtol=1e-4, atol=1e-4, err_msg=f"{shape} k={k} s={s} p={p}")
    ### BEGIN HIDDEN TESTS
    dx = conv2d_input_grad(np.ones((1, 1, 1, 1), np.float32), np.ones((1, 1, 3, 3), np.float32), (1, 1, 3, 3))
    np.testing.assert_allclose(dx, 1)
    ### END HIDDEN TESTS


test_unit_conv_input_grad()

# %% [markdown]
# Measured against module 09, forward and backward, on the milestone CNN's second layer at a
# small batch (8 images, 32 channels, 32x32, 3x3, padding 1), each the fastest of five runs:

# %%
_x9 = _rng.standard_normal((8, 32, 32, 32)).astype(np.float32)        # (8, 32, 32, 32) NCHW memory
_x18 = as_nchw(np.ascontiguousarray(channels_last(_x9)))              # the same values, NHWC memory
_w = (_rng.standard_normal((32, 32, 3, 3)) * 0.06).astype(np.float32)
_f9 = Conv2dFunction()
_plain_fwd, _plain_bwd = module_09(Conv2dFunction, "forward"), module_09(Conv2dFunction, "backward")
_y9 = _plain_fwd(_f9, _x9, _w, padding=1)
_g9 = np.ones_like(_y9)
_y18, _cols = conv2d_nhwc(_x18, _w, None, 1, 1)
_g18 = as_nchw(np.ones((8, 32, 32, 32), np.float32))
np.testing.assert_allclose(_y18, _y9, rtol=1e-4, atol=1e-4)
_t = {"fwd 09": best_of(lambda: _plain_fwd(Conv2dFunction(), _x9, _w, padding=1), 5),
      "fwd 18": best_of(lambda: conv2d_nhwc(_x18, _w, None, 1, 1), 5),
      "bwd 09": best_of(lambda: _plain_bwd(_f9, _g9), 5),
      "dW 18": best_of(lambda: channels_last(_g18).reshape(-1, 32).T @ _cols, 5),
      "dx scatter": best_of(lambda: channels_last(_g18).reshape(-1, 32) @ _w.transpose(0, 2, 3, 1).reshape(32, -1),
                            5),                                            # dcols = g2 @ wk alone
      "dx 18": best_of(lambda: conv2d_input_grad(_g18, _w, _x18.shape, 1, 1), 5)}
print(f"forward:  module 09 {_t['fwd 09'] * 1e3:6.2f} ms, channels-last one GEMM {_t['fwd 18'] * 1e3:6.2f} ms "
      f"({_t['fwd 09'] / _t['fwd 18']:.2f}x)")
print(f"backward: module 09 {_t['bwd 09'] * 1e3:6.2f} ms, yours dW {_t['dW 18'] * 1e3:.2f} + dx {_t['dx 18'] * 1e3:.2f} ms "
      f"({_t['bwd 09'] / (_t['dW 18'] + _t['dx 18']):.2f}x); the scatter's GEMM alone (dcols) "
      f"{_t['dx scatter'] * 1e3:.2f} ms before any col2im")

# %% [markdown]
# ### Winograd F(2, 3): fewer multiplies, in blocks that stay in the cache
#
# im2col + GEMM does every multiply-add of the convolution: 9 per input channel per output
# value of a 3x3 kernel. BLAS already runs near the core's peak, so the next gain must come
# from doing *fewer* multiplies. Winograd's minimal filtering algorithm F(2, 3) computes two
# outputs of a 3-tap filter `w` from four inputs `d` with 4 multiplies instead of 6:
#
# ```
#   y0 = d0 w0 + d1 w1 + d2 w2          m0 = (d0 - d2) w0                m2 = (d2 - d1) (w0 - w1 + w2) / 2
#   y1 = d1 w0 + d2 w1 + d3 w2          m1 = (d1 + d2) (w0 + w1 + w2) / 2  m3 = (d1 - d3) w2
#                                       y0 = m0 + m1 + m2                y1 = m1 - m2 - m3
#   in matrices:  y = AT [ (G w) * (BT d) ]      (* element by element)
#   BT (4x4) = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G (4x3) = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
#   AT (2x4) = [1 1 1 0; 0 1 -1 -1]
# ```
#
# In two dimensions, apply it along rows and columns: a 4x4 input tile `d` gives a 2x2 output
# tile with `AT [ (G w GT) * (BT d B) ] A`, 16 multiplies instead of 2*2*9 = 36 (2.25x fewer).
# Summed over the input channels, the 16 element-wise products become **16 GEMMs**: for each of
# the 16 positions `p` of the transformed tile, `M[p] = V[p] @ U[p]`, `(tiles, C) @ (C, O)`.
#
# ```
#   x (N, H, W, C) padded by 1  --BT . B per 4x4 tile (stride 2)-->  V (16, N*H/2*W/2, C)
#   weight (O, C, 3, 3)         --G . GT per filter-------------->  U (16, C, O)
#   M[p] = V[p] @ U[p]          16 GEMMs                             M (16, tiles, O)
#   out tile = AT . A of M       one (4, 16) @ (16, tiles*O) GEMM    out (N, H, W, O)
#
#   second layer, batch 128:  im2col GEMM 131,072 x 288 x 32 = 1.21 G multiply-adds
#                             Winograd    16 x 32,768 x 32 x 32 = 0.54 G   (2.25x fewer)
# ```
#
# The price is the transforms, sweeps over memory with additions only: `BT d B` separates into
# a row pass and a column pass (4 subtractions/additions each, written with `out=` into arrays
# that exist already). And `V` is 16/4 = 4 times the input, `M` 4 times the output. Streamed
# through main memory for the whole batch, those sweeps cost as much as the multiplies saved:
# the first version written for this lesson, whole batch at once, was *slower* than im2col
# (0.74x on the second layer, measured by `benchmarks/acceleration.py`). Two changes made it pay:
#
# ```
#   1. cache blocking   transform, multiply, untransform a chunk of images (4 MB of
#                       temporaries) at a time: each temporary is read back while it is
#                       still in the cache (this machine: 1 MB of L2 per core, 32 MB of L3)
#   2. split columns    the column pass picks every other column, runs of only C floats; the
#                       padding copy writes even and odd columns apart, (n, H+2, 2, W/2+1, C),
#                       so that each pick is one contiguous block
#
#   padded columns   0  1  2  3  4  5  ...  W+1        xq[:, :, 0] = columns 0, 2, 4, ...
#   tile s uses     2s .. 2s+3                          xq[:, :, 1] = columns 1, 3, 5, ...
#   column 2s + b = xq[:, :, b % 2, s + b // 2]
# ```
#
# A third idea, a workspace (the chunk's temporaries allocated once and reused by every chunk
# and step), measured 1.00-1.05x and was dropped: a chunk's arrays are a few MB, below the
# 32 MB up to which module 05's `keep_freed_memory()` lets malloc recycle freed blocks, so a
# fresh `np.empty` of that size is already reused memory, with no page faults to save.
#
# The backward pass is the same algorithm run backwards:
#
# ```
#   dM = A . dY-tile . AT   (16, tiles, O)       one (16, 4) @ (4, tiles*O) GEMM per chunk
#   dU[p] = sum over tiles of V[p].T @ dM[p]     16 GEMMs (C, tiles) @ (tiles, O)
#   dW = GT . dU . G                              (O, C, 3, 3)
#   dx = Winograd convolution of dY with the flipped, channel-swapped kernel (as in the last section)
# ```
#
# `V` is not saved by the forward pass: 4 times the input (67 MB for the second layer at batch
# 128) written to main memory and read back costs more than transforming the chunk again while
# it is in the cache, so the backward pass recomputes it from the input `x`, which it keeps (the
# measured difference is in `benchmarks/acceleration.py`'s table and the Reflect answers).
#
# Winograd needs stride 1, padding 1, a 3x3 kernel and even H and W; with few input channels
# (the first layer's 3) its GEMMs are too thin to gain, so `Conv2d` keeps im2col there.
#
# The chunks are also what a second core can share: NumPy's ufuncs and BLAS release Python's
# global interpreter lock, so two threads can each transform and multiply their own chunks
# (each with its own temporaries). `parallel_chunks` (provided, below) does this when BLAS is set
# to two threads (`OPENBLAS_NUM_THREADS=2` or `blas_threads(2)`), running BLAS single-threaded
# inside each; section 9 measures it.

# %% nbgrader={"grade": false, "grade_id": "blas-threads", "locked": true, "schema_version": 3, "solution": false}
#| export
_OPENBLAS = []


def _openblas_calls():
    """(set, get) of the OpenBLAS that NumPy loaded, or None when it cannot be found (cached)."""
    if not _OPENBLAS:
        _OPENBLAS.append(_find_openblas())
    return _OPENBLAS[0]


def _find_openblas():
    here = os.path.dirname(np.__file__)
    for path in sorted(glob.glob(os.path.join(here, os.pardir, "numpy.libs", "*openblas*"))
                       + glob.glob(os.path.join(here, ".dylibs", "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for stem in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                setter = getattr(lib, f"{stem}set_num_threads{suffix}", None)
                getter = getattr(lib, f"{stem}get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    getter.restype = ctypes.c_int
                    return setter, getter
    return None


@contextlib.contextmanager
def blas_threads(n: int):
    """Run the block with ``n`` OpenBLAS threads (yields the count in effect, None if unknown)."""
    calls = _openblas_calls()
    if calls is None:
        yield None
        return
    setter, getter = calls
    before = getter()
    setter(int(n))
    try:
        yield getter()
    finally:
        setter(before)




def conv_threads() -> int:
    """How many threads the Winograd convolution splits its chunks over: the BLAS thread count
    in effect (so OPENBLAS_NUM_THREADS and blas_threads(n) are the one knob), at most the cores."""
    calls = _openblas_calls()
    return max(1, min(calls[1]() if calls else 1, os.cpu_count() or 1))


_POOL = {}


def parallel_chunks(fn, N, step):
    """fn(n0, n) for the chunks n0 = 0, step, 2*step, ... of N images, spread over conv_threads()
    threads (NumPy's ufuncs and BLAS release the GIL); BLAS runs one thread inside each.
    Returns the list of fn's results."""
    starts = list(range(0, N, step))
    k = min(conv_threads(), len(starts))
    if k <= 1:
        return [fn(n0, min(step, N - n0)) for n0 in starts]
    from concurrent.futures import ThreadPoolExecutor
    pool = _POOL.get(k) or _POOL.setdefault(k, ThreadPoolExecutor(k, thread_name_prefix="tinytorch-conv"))
    with blas_threads(1):
        return list(pool.map(lambda n0: fn(n0, min(step, N - n0)), starts))


# %% nbgrader={"grade": false, "grade_id": "winograd-constants", "locked": true, "schema_version": 3, "solution": false}
#| export
WINOGRAD_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])   # (4, 4)
WINOGRAD_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])       # (4, 3)
WINOGRAD_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])                                 # (2, 4)
WINOGRAD_CHUNK_BYTES = 4 << 20     # the working set of one chunk of images (cache blocking)
WINOGRAD_MIN_CHANNELS = 8          # fewer input channels: im2col (the GEMMs would be too thin)


def winograd_applies(x_shape, w_shape, stride, padding) -> bool:
    """True when conv3x3_winograd computes this convolution (and is worth it)."""
    N, C, H, W = x_shape
    return (tuple(w_shape[2:]) == (3, 3) and int(stride) == 1 and int(padding) == 1
            and H % 2 == 0 and W % 2 == 0 and C >= WINOGRAD_MIN_CHANNELS)


def _images_per_chunk(N, bytes_per_image):
    return max(1, min(N, WINOGRAD_CHUNK_BYTES // max(1, bytes_per_image)))


# %% nbgrader={"grade": false, "grade_id": "winograd", "locked": false, "schema_version": 3, "solution": true}
#| export
def winograd_weights(weight):
    """U = G w GT for every (o, c) filter: weight (O, C, 3, 3) -> U (16, C, O), position p = 4a + b.

    HINT: np.einsum("ak,ockl,bl->abco", G, weight, G) with G = WINOGRAD_G, then reshape.
    """
    O, C = weight.shape[:2]
    ### BEGIN SOLUTION
    G = WINOGRAD_G.astype(weight.dtype)
    return np.einsum("ak,ockl,bl->abco", G, weight, G).reshape(16, C, O)
    ### END SOLUTION


def padded_split_columns(xh, n0, n):
    """Images n0..n0+n of a channels-last batch xh (N, H, W, C), zero-padded by 1, with the
    padded columns split into even and odd: xq (n, H+2, 2, W/2+1, C), xq[:, i, j, s] = xpad[:, i, 2s+j].

    Picking every other column of xpad (what the tile transform does 16 times) becomes one
    contiguous block of xq instead of runs of C floats. (Provided.)"""
    _, H, W, C = xh.shape
    S = W // 2
    xq = np.empty((n, H + 2, 2, S + 1, C), xh.dtype)          # (n, H+2, 2, S+1, C)
    xq[:, 0] = 0
    xq[:, H + 1] = 0
    xq[:, 1:H + 1, 0, 0] = 0                                                   # padded column 0
    xq[:, 1:H + 1, 1, S] = 0                                                   # padded column W+1
    xq[:, 1:H + 1, 1, :S] = xh[n0:n0 + n, :, 0::2]                             # padded columns 1, 3, ..., W-1
    xq[:, 1:H + 1, 0, 1:] = xh[n0:n0 + n, :, 1::2]                             # padded columns 2, 4, ..., W
    return xq


def winograd_tiles(xq, V):
    """Input transform BT d B of every 4x4 tile (stride 2) of a padded chunk.

    xq (n, 2T+2, 2, S+1, C) from padded_split_columns; V (4, 4, n, T, S, C) is written in place
    (V[a, b] is position 4a + b). Column 2s + j of the padded image is xq[:, :, j, s].
    HINTS:
      - rows first: r[a] = xq[:, a:a + 2T:2] (a view per tile row offset a = 0..3);
        R[0] = r0 - r2, R[1] = r1 + r2, R[2] = r2 - r1, R[3] = r1 - r3 (the rows of BT),
        written with np.subtract/np.add(..., out=R[i]) into R = np.empty((4, n, T, 2, S+1, C))
      - then the same four combinations of the columns 2s + b of R[a]:
        b = 0, 1, 2, 3 are R[a][:, :, 0, :S], R[a][:, :, 1, :S], R[a][:, :, 0, 1:], R[a][:, :, 1, 1:]
    """
    n, H2, _, S1, C = xq.shape
    T, S = V.shape[3], V.shape[4]
    ### BEGIN SOLUTION
    r = [xq[:, a:a + 2 * T:2] for a in range(4)]                      # 4 views (n, T, 2, S+1, C)
    R = np.empty((4, n, T, 2, S1, C), xq.dtype)
    np.subtract(r[0], r[2], out=R[0])
    np.add(r[1], r[2], out=R[1])
    np.subtract(r[2], r[1], out=R[2])
    np.subtract(r[1], r[3], out=R[3])
    for a in range(4):
        c = [R[a][:, :, 0, :S], R[a][:, :, 1, :S], R[a][:, :, 0, 1:], R[a][:, :, 1, 1:]]   # (n, T, S, C)
        np.subtract(c[0], c[2], out=V[a, 0])
        np.add(c[1], c[2], out=V[a, 1])
        np.subtract(c[2], c[1], out=V[a, 2])
        np.subtract(c[1], c[3], out=V[a, 3])
    ### END SOLUTION


def conv3x3_winograd(x, weight, bias=None):
    """3x3, stride 1, padding 1 convolution by Winograd F(2, 3), a chunk of images at a time.

    x: logical (N, C, H, W), H and W even; weight (O, C, 3, 3); bias (O,) or None. Returns a
    logical (N, O, H, W) view of new channels-last memory.
    HINTS, per chunk of n images (np.empty for every temporary, out= wherever NumPy allows):
      - winograd_tiles(padded_split_columns(channels_last(x), n0, n), V) with V (4, 4, n, T, S, C)
      - M[p] = V[p] @ U[p] for the 16 positions (np.matmul(..., out=M[p]))
      - the 2x2 output tiles: np.kron(WINOGRAD_AT, WINOGRAD_AT) (4, 16) @ M.reshape(16, -1),
        reshaped (2, 2, n, T, S, O) and transposed into out[n0:n0 + n], out (N, T, 2, S, 2, O)
    """
    N, C, H, W = x.shape
    O = weight.shape[0]
    T, S = H // 2, W // 2
    xh = channels_last(x)
    ### BEGIN SOLUTION
    U = winograd_weights(weight).astype(x.dtype, copy=False)                     # (16, C, O)
    A2 = np.kron(WINOGRAD_AT, WINOGRAD_AT).astype(x.dtype)                       # (4, 16)
    out = np.empty((N, T, 2, S, 2, O), x.dtype)
    per_image = x.itemsize * ((H + 2) * (W + 2) * C * 3 + 16 * T * S * (C + O) + 4 * T * S * O)

    def chunk(n0, n):                                                            # images n0..n0+n
        V = np.empty((16, n * T * S, C), x.dtype)                # (16, tiles, C)
        winograd_tiles(padded_split_columns(xh, n0, n), V.reshape(4, 4, n, T, S, C))
        M = np.empty((16, n * T * S, O), x.dtype)                # (16, tiles, O)
        for p in range(16):
            np.matmul(V[p], U[p], out=M[p])
        Y = np.empty((4, n * T * S * O), x.dtype)                 # (4, tiles*O)
        np.matmul(A2, M.reshape(16, -1), out=Y)
        out[n0:n0 + n] = Y.reshape(2, 2, n, T, S, O).transpose(2, 3, 0, 4, 1, 5)

    parallel_chunks(chunk, N, _images_per_chunk(N, per_image))
    out = out.reshape(N, H, W, O)
    if bias is not None:
        out += bias
    return as_nchw(out)
    ### END SOLUTION


def conv3x3_winograd_backward(grad_out, x, weight, need_dx=True):
    """(dx or None, dw) of conv3x3_winograd(x, weight). grad_out: logical (N, O, H, W).

    The transformed input V is recomputed chunk by chunk (in the cache) instead of being saved
    by the forward pass (4x the input, written to and read back from main memory).
    HINTS, per chunk of images:
      - V of the chunk as in the forward pass; the 2x2 tiles of the gradient, gt (2, 2, n, T, S, O)
      - dM = kron(AT, AT).T (16, 4) @ gt.reshape(4, -1): (16, tiles, O)
      - dU[p] += V[p].T @ dM[p]; at the end dw = GT dU G (np.einsum "ak,abco,bl->ockl")
      - dx = conv3x3_winograd(grad_out, weight flipped in both spatial axes, O and C swapped)
    """
    N, O, H, W = grad_out.shape
    C = weight.shape[1]
    T, S = H // 2, W // 2
    dt = grad_out.dtype
    ### BEGIN SOLUTION
    xh = channels_last(x)
    g6 = channels_last(grad_out).reshape(N, T, 2, S, 2, O)                       # (N, T, 2, S, 2, O)
    A2T = np.kron(WINOGRAD_AT, WINOGRAD_AT).T.astype(dt)                         # (16, 4)
    per_image = x.itemsize * ((H + 2) * (W + 2) * C * 3 + 16 * T * S * C + 20 * T * S * O)

    def chunk(n0, n):                                                            # dU of images n0..n0+n
        V = np.empty((16, n * T * S, C), x.dtype)
        winograd_tiles(padded_split_columns(xh, n0, n), V.reshape(4, 4, n, T, S, C))
        gt = np.empty((2, 2, n, T, S, O), dt)
        np.copyto(gt, g6[n0:n0 + n].transpose(2, 4, 0, 1, 3, 5))
        dM = np.empty((16, n * T * S, O), dt)
        np.matmul(A2T, gt.reshape(4, -1), out=dM.reshape(16, -1))
        return np.matmul(V.transpose(0, 2, 1), dM)                               # 16 GEMMs: (16, C, O)

    dU = sum(parallel_chunks(chunk, N, _images_per_chunk(N, per_image)))        # (16, C, O)
    G = WINOGRAD_G.astype(dt)
    dw = np.einsum("ak,abco,bl->ockl", G, dU.reshape(4, 4, C, O), G)            # (O, C, 3, 3)
    dx = None
    if need_dx:
        flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)                 # (C, O, 3, 3)
        dx = conv3x3_winograd(grad_out, flipped)
    return dx, np.ascontiguousarray(dw, dtype=weight.dtype)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-winograd", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_winograd():
    """Winograd F(2, 3) gives the seven-loop convolution and module 09's gradients."""
    r = np.random.default_rng(3)
    w1 = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    U = winograd_weights(w1)
    assert U.shape == (16, 1, 1), f"U must be (16, C, O), got {U.shape}"
    np.testing.assert_allclose(U[:, 0, 0].reshape(4, 4), WINOGRAD_G @ w1[0, 0] @ WINOGRAD_G.T)
    xh = r.standard_normal((1, 2, 2, 1))                                        # one image, C = 1
    xq = padded_split_columns(xh, 0, 1)
    assert xq.shape == (1, 4, 2, 2, 1), xq.shape
    d = np.pad(xh[0, :, :, 0], 1)                                               # the 4x4 padded tile
    np.testing.assert_array_equal(xq[0, :, :, :, 0].transpose(0, 2, 1).reshape(4, 4), d)
    V = np.zeros((4, 4, 1, 1, 1, 1))
    winograd_tiles(xq, V)
    np.testing.assert_allclose(V[:, :, 0, 0, 0, 0], WINOGRAD_BT @ d @ WINOGRAD_BT.T, atol=1e-12)
    for shape, O, dtype, tol in [((2, 8, 6, 4), 5, np.dtype(np.float64), 1e-10), ((3, 9, 8, 8), 4, np.dtype(np.float32), 1e-4)]:
        x = r.standard_normal(shape).astype(dtype)
        w = r.standard_normal((O, shape[1], 3, 3)).astype(dtype)
        b = r.standard_normal(O).astype(dtype)
        out = conv3x3_winograd(x, w, b)
        ref = conv2d_loops(x, w, b, padding=1)
        assert out.shape == ref.shape and out.dtype == dtype, f"expected {ref.shape} {dtype}, got {out.shape} {out.dtype}"
        np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)
        fn = Conv2dFunction()
        module_09(Conv2dFunction, "forward")(fn, x, w, stride=1, padding=1)
        g = r.standard_normal(ref.shape).astype(dtype)
        dx9, dw9 = module_09(Conv2dFunction, "backward")(fn, g)[:2]
        dx, dw = conv3x3_winograd_backward(g, x, w)
        assert dx.shape == x.shape and dw.shape == w.shape and dw.dtype == dtype, (dx.shape, dw.shape, dw.dtype)
        np.testing.assert_allclose(dx, dx9, rtol=tol, atol=tol, err_msg="dx")
        np.testing.assert_allclose(dw, dw9, rtol=tol, atol=tol * 10, err_msg="dw")
    assert winograd_applies((1, 8, 4, 4), (2, 8, 3, 3), 1, 1)
    assert not winograd_applies((1, 8, 5, 4), (2, 8, 3, 3), 1, 1), "odd H: im2col"
    assert not winograd_applies((1, 8, 4, 4), (2, 8, 3, 3), 2, 1), "stride 2: im2col"
    ### BEGIN HIDDEN TESTS
    out = conv3x3_winograd(np.ones((1, 8, 2, 2)), np.ones((1, 8, 3, 3)))
    np.testing.assert_allclose(out, 32)
    ### END HIDDEN TESTS


test_unit_winograd()

# %% [markdown]
# Measured on the milestone CNN's second layer at a small batch (16 images, 32 channels, 32x32),
# forward and backward, against this module's im2col kernels (fastest of five runs each):

# %%
_xw = as_nchw(_rng.standard_normal((16, 32, 32, 32)).astype(np.float32))    # (16, 32, 32, 32), NHWC memory
_ww = (_rng.standard_normal((32, 32, 3, 3)) * 0.06).astype(np.float32)
_gw = as_nchw(_rng.standard_normal((16, 32, 32, 32)).astype(np.float32))
_yi, _ci = conv2d_nhwc(_xw, _ww, None, 1, 1)
_yw = conv3x3_winograd(_xw, _ww)
np.testing.assert_allclose(_yw, _yi, rtol=1e-4, atol=1e-4)
_tw = {"im2col fwd": best_of(lambda: conv2d_nhwc(_xw, _ww, None, 1, 1), 5),
       "winograd fwd": best_of(lambda: conv3x3_winograd(_xw, _ww), 5),
       "im2col bwd": best_of(lambda: (channels_last(_gw).reshape(-1, 32).T @ _ci,
                                      conv2d_input_grad(_gw, _ww, _xw.shape, 1, 1)), 5),
       "winograd bwd": best_of(lambda: conv3x3_winograd_backward(_gw, _xw, _ww), 5)}
print(f"forward:  im2col + GEMM {_tw['im2col fwd'] * 1e3:6.2f} ms, Winograd {_tw['winograd fwd'] * 1e3:6.2f} ms "
      f"({_tw['im2col fwd'] / _tw['winograd fwd']:.2f}x)")
print(f"backward: im2col dW + transposed dx {_tw['im2col bwd'] * 1e3:6.2f} ms, Winograd {_tw['winograd bwd'] * 1e3:6.2f} ms "
      f"({_tw['im2col bwd'] / _tw['winograd bwd']:.2f}x)")
print(f"saved for backward: im2col cols {_ci.nbytes / 1e6:.1f} MB, Winograd only the input x "
      f"{_xw.nbytes / 1e6:.1f} MB")

# %% [markdown]
# ## 6. Pooling by reshape, batch norm in fewer sweeps
#
# Max pooling with a 2x2 window and stride 2 (the milestone CNN's) has non-overlapping
# windows. On channels-last memory a reshape *splits* the axes, and the four window
# positions become four strided views, no copy:
#
# ```
#   xh (N, H, W, C) -> (N, H/2, 2, W/2, 2, C)      x6[:, :, a, :, b] is window offset (a, b)
#   out = max of the 4 views                         3 calls of np.maximum, in place
#   backward: each input belongs to one window; the first offset equal to the max gets the
#   gradient (the same tie rule as module 09), written straight into its place in dx
# ```
#
# Overlapping windows (stride < kernel) keep module 09's version.
#
# Batch norm normalises each channel over `M = N*H*W` values. Channels-last, the batch is a
# `(M, C)` matrix and every per-channel statistic is a reduction over its rows (`axis=0`), the
# direction NumPy sums fastest. The backward pass needs `sum(g)` and `sum(g * xhat)` per channel
# (the second without a temporary: `np.einsum("mc,mc->c", g2, xhat2)`), then one expression
# `dx = g * s - xhat * (s * dgamma / M) - s * dbeta / M` with `s = gamma / sqrt(var + eps)`,
# written with in-place operations on one output array.

# %% nbgrader={"grade": false, "grade_id": "pool-bn-kernels", "locked": false, "schema_version": 3, "solution": true}
#| export
def max_pool_reshape(x, k):
    """Max over non-overlapping k x k windows (stride k): x (N, C, H, W) -> (out, x6).

    out (N, C, H//k, W//k) is a view of channels-last memory; x6 is the (N, Ho, k, Wo, k, C)
    view of the input the backward pass needs (rows and columns past Ho*k, Wo*k are dropped,
    as in module 09).
    HINT: x6 = channels_last(x)[:, :Ho * k, :Wo * k].reshape(N, Ho, k, Wo, k, C) is a view;
          start from a copy of x6[:, :, 0, :, 0] and np.maximum(out, x6[:, :, a, :, b], out=out).
    """
    N, C, H, W = x.shape
    Ho, Wo = H // k, W // k
    ### BEGIN SOLUTION
    x6 = channels_last(x)[:, :Ho * k, :Wo * k].reshape(N, Ho, k, Wo, k, C)   # (N, Ho, k, Wo, k, C)
    out = x6[:, :, 0, :, 0].copy()                                          # (N, Ho, Wo, C)
    for a in range(k):
        for b in range(k):
            if a or b:
                np.maximum(out, x6[:, :, a, :, b], out=out)
    return as_nchw(out), x6
    ### END SOLUTION


def max_pool_reshape_backward(grad_out, x6, out, x_shape):
    """dL/dx of max_pool_reshape: the first window offset (row-major) equal to the max wins."""
    N, Ho, k, Wo, _, C = x6.shape
    g, o = channels_last(grad_out), channels_last(out)                       # (N, Ho, Wo, C)
    cropped = x_shape[2] != Ho * k or x_shape[3] != Wo * k
    dx = (np.zeros if cropped else np.empty)((N, x_shape[2], x_shape[3], C), grad_out.dtype)
    dx6 = dx[:, :Ho * k, :Wo * k].reshape(N, Ho, k, Wo, k, C)
    ### BEGIN SOLUTION
    taken = np.zeros(o.shape, bool)
    for a in range(k):
        for b in range(k):
            won = x6[:, :, a, :, b] == o
            won &= ~taken
            taken |= won
            np.multiply(g, won, out=dx6[:, :, a, :, b])
    return as_nchw(dx)
    ### END SOLUTION


def batch_norm_stats(x):
    """Per-channel statistics of a logical (N, C, H, W) array: (mean (C,), biased var (C,), xc).

    xc = x - mean, channels-last (N, H, W, C): the forward pass scales it in place into xhat,
    so the centring sweep is done once for the variance and the normalisation together.
    HINTS: x2 = channels_last(x).reshape(-1, C) (a view when stored NHWC); the mean over axis 0
           as a matrix-vector product, np.ones(M) @ x2 / M (BLAS; 3-4x faster than x2.mean(axis=0),
           which adds row after row); xc2 = x2 - mean;
           var = np.einsum("mc,mc->c", xc2, xc2) / M (no squared temporary).
    """
    N, C, H, W = x.shape
    ### BEGIN SOLUTION
    x2 = channels_last(x).reshape(-1, C)                     # (M, C)
    mean = np.ones(x2.shape[0], x2.dtype) @ x2 / x2.shape[0]   # (C,) a GEMV
    xc = x2 - mean                                           # (M, C) the one big allocation
    var = np.einsum("mc,mc->c", xc, xc) / x2.shape[0]        # (C,)
    return mean, var.astype(x.dtype, copy=False), xc.reshape(N, H, W, C)
    ### END SOLUTION


def batch_norm_backward(grad_out, xhat, gamma, invstd, training=True):
    """(dx, dgamma, dbeta) of y = xhat * gamma + beta; xhat (N, H, W, C) channels-last."""
    N, C, H, W = grad_out.shape
    M = N * H * W
    g = channels_last(grad_out)                              # (N, H, W, C)
    ### BEGIN SOLUTION
    dbeta = np.ones(M, g.dtype) @ g.reshape(-1, C)           # (C,) the sum over rows, a GEMV
    dgamma = np.einsum("mc,mc->c", g.reshape(-1, C), xhat.reshape(-1, C))
    scale = (gamma * invstd).astype(grad_out.dtype)          # (C,)
    dx = g * scale                                           # (N, H, W, C) the one big allocation
    if training:
        dx -= xhat * (scale * dgamma / M)
        dx -= scale * dbeta / M
    return as_nchw(dx), dgamma, dbeta
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-pool-bn", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_pool_bn():
    """Reshape pooling and the batch-norm kernels agree with module 09's Functions."""
    x = np.array([[1, 3, 2, 0], [6, 2, 4, 2], [8, 1, 0, 9], [4, 5, 3, 6]], np.float32).reshape(1, 1, 4, 4)
    out, x6 = max_pool_reshape(x, 2)
    assert out.shape == (1, 1, 2, 2), out.shape
    np.testing.assert_array_equal(out[0, 0], [[6, 4], [8, 9]])
    r = np.random.default_rng(0)
    for shape in [(2, 3, 6, 6), (2, 2, 7, 5)]:
        xx = r.permutation(np.prod(shape)).reshape(shape).astype(np.float32) / 10
        xx[0, 0, 0, :2] = 99.0                                     # a tie: the first offset wins
        fn = MaxPool2dFunction()
        ref = module_09(MaxPool2dFunction, "forward")(fn, xx, kernel_size=2)
        o, x6 = max_pool_reshape(xx, 2)
        np.testing.assert_array_equal(o, ref)
        g = r.standard_normal(ref.shape).astype(np.float32)
        np.testing.assert_array_equal(max_pool_reshape_backward(g, x6, o, xx.shape),
                                      module_09(MaxPool2dFunction, "backward")(fn, g)[0])
    xb = (r.standard_normal((4, 3, 5, 5)) * 3 + 1).astype(np.float32)
    mean, var, xc = batch_norm_stats(xb)
    np.testing.assert_allclose(mean, xb.mean(axis=(0, 2, 3)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var, xb.var(axis=(0, 2, 3)), rtol=1e-4)
    np.testing.assert_allclose(xc, channels_last(xb) - mean, rtol=1e-5, atol=1e-6)
    assert xc.shape == (4, 5, 5, 3) and var.dtype == np.float32, (xc.shape, var.dtype)
    gamma, beta = r.standard_normal(3).astype(np.float32), r.standard_normal(3).astype(np.float32)
    for training in (True, False):
        fn = BatchNorm2dFunction()
        module_09(BatchNorm2dFunction, "forward")(fn, xb, gamma, beta, mean=mean, var=var, eps=1e-5, training=training)
        g = r.standard_normal(xb.shape).astype(np.float32)
        want = module_09(BatchNorm2dFunction, "backward")(fn, g)
        invstd = (1 / np.sqrt(var + 1e-5)).astype(np.float32)
        xhat = (channels_last(xb) - mean) * invstd
        got = batch_norm_backward(g, xhat, gamma, invstd, training)
        for a, b, name in zip(got, want, ("dx", "dgamma", "dbeta")):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=f"{name}, training={training}")
    ### BEGIN HIDDEN TESTS
    np.testing.assert_array_equal(max_pool_reshape(np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2), 2)[0], 3)
    ### END HIDDEN TESTS


test_unit_pool_bn()

# %% [markdown]
# ## 7. The switch: module 09's layers run your kernels
#
# Your kernels must not become a second `Conv2d`. The layers stay module 09's: the same
# `Conv2d`, `MaxPool2d` and `BatchNorm2d` classes, the same parameters, checkpoints and
# `Function` names that module 14's profiler reports. What changes is the body of their
# `Function`s' `forward` and `backward`, exactly as module 05 replaced `Tensor`'s methods:
#
# ```
#   Conv2dFunction.forward / backward     -> conv3x3_winograd and its backward (3x3, stride 1,
#                                            >= 8 channels), else conv2d_nhwc, g2.T @ cols,
#                                            conv2d_input_grad
#   MaxPool2dFunction.forward / backward  -> max_pool_reshape (stride == kernel), else 09's
#   BatchNorm2d.forward (statistics)      -> batch_norm_stats (its x - mean becomes xhat)
#   BatchNorm2dFunction.forward/backward  -> channels-last normalise, batch_norm_backward
# ```
#
# `enable_acceleration()` installs them (each keeps the replaced method's name, docstring and
# signature; `method.__wrapped__` is module 09's, which `inspect.unwrap` finds), then checks a
# tiny convolution, pooling and batch norm, forward and backward, against module 09's own
# methods. If your kernels are incomplete or wrong it puts module 09's back and warns, so a
# half-finished module 18 never breaks a working CNN. `tinytorch/__init__.py` calls it once
# this module is exported; `disable_acceleration()` and `with accelerated(False):` switch back
# (to measure, or to debug). The glue below is provided: read it to see which kernel serves
# which method.

# %% nbgrader={"grade": false, "grade_id": "dispatch", "locked": true, "schema_version": 3, "solution": false}
#| export
def _conv_forward(self, x, weight, bias=None, stride=1, padding=0):
    _check_input(x, "Conv2d", weight.shape[1])
    self.stride, self.padding = int(stride), int(padding)
    self.x_shape = x.shape
    self.has_bias = bias is not None
    self.winograd = winograd_applies(x.shape, weight.shape, self.stride, self.padding)
    if self.winograd:
        out, saved = conv3x3_winograd(x, weight, bias), x       # saved: the input itself
    else:
        out, saved = conv2d_nhwc(x, weight, bias, self.stride, self.padding)   # saved: cols
    self.save_for_backward(saved, weight)
    return out


def _conv_backward(self, grad_out):
    cols, weight = self.saved
    O, C, KH, KW = weight.shape
    needs = getattr(self, "needs_input_grad", ())
    need_dx = bool(needs[0]) if len(needs) else True
    if self.winograd:
        dx, dw = conv3x3_winograd_backward(grad_out, cols, weight, need_dx)
        if self.has_bias:
            return dx, dw, grad_out.sum(axis=(0, 2, 3)).astype(weight.dtype, copy=False)
        return dx, dw
    g2 = channels_last(grad_out).reshape(-1, O)                  # (N*L, O): a view when NHWC
    dw = (g2.T @ cols).reshape(O, KH, KW, C).transpose(0, 3, 1, 2)
    dw = np.ascontiguousarray(dw, dtype=weight.dtype)            # (O, C, KH, KW)
    dx = conv2d_input_grad(grad_out, weight, self.x_shape, self.stride, self.padding) if need_dx else None
    if self.has_bias:
        return dx, dw, g2.sum(axis=0).astype(weight.dtype, copy=False)
    return dx, dw


def _pool_forward(self, x, kernel_size=2, stride=None):
    KH, KW = _pair(kernel_size, "kernel_size")
    S = KH if stride is None else int(stride)
    self.reshaped = S == KH == KW and x.ndim == 4
    if not self.reshaped:
        return _ORIGINALS[(MaxPool2dFunction, "forward")](self, x, kernel_size, stride)
    _check_input(x, "MaxPool2d")
    self.x_shape, self.k, self.S = x.shape, (KH, KW), S
    conv_output_size(x.shape[2], KH, S), conv_output_size(x.shape[3], KW, S)   # the size check
    out, x6 = max_pool_reshape(x, S)
    self.save_for_backward(x6, out)
    return out


def _pool_backward(self, grad_out):
    if not self.reshaped:
        return _ORIGINALS[(MaxPool2dFunction, "backward")](self, grad_out)
    x6, out = self.saved
    return (max_pool_reshape_backward(grad_out, x6, out, self.x_shape),)


def _bn_layer_forward(self, x):
    _check_input(x.data, "BatchNorm2d", self.num_features)
    centered = None
    if self.training:
        mean, var, centered = batch_norm_stats(x.data)
        self.update_running_stats(mean, var, x.data.size // x.data.shape[1])   # module 09's
    else:
        mean, var = self.running_mean.data, self.running_var.data
    return BatchNorm2dFunction.apply(x, self.weight, self.bias, mean=mean, var=var,
                                     eps=self.eps, training=self.training, centered=centered)


def _bn_forward(self, x, gamma, beta, mean=None, var=None, eps=1e-5, training=True, centered=None):
    self.training = bool(training)
    invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype)          # (C,)
    if centered is not None and centered.dtype == x.dtype:       # the layer's x - mean, reused
        xhat = centered                                          # (N, H, W, C)
    else:
        xhat = channels_last(x) - mean.astype(x.dtype)
    xhat *= invstd
    y = xhat * gamma
    y += beta
    self.save_for_backward(xhat, invstd, gamma)
    return as_nchw(y)


def _bn_backward(self, grad_out):
    xhat, invstd, gamma = self.saved
    dx, dgamma, dbeta = batch_norm_backward(grad_out, xhat, gamma, invstd, self.training)
    return dx.astype(grad_out.dtype, copy=False), dgamma.astype(gamma.dtype), dbeta.astype(gamma.dtype)


_KERNELS = {(Conv2dFunction, "forward"): _conv_forward, (Conv2dFunction, "backward"): _conv_backward,
            (MaxPool2dFunction, "forward"): _pool_forward, (MaxPool2dFunction, "backward"): _pool_backward,
            (BatchNorm2d, "forward"): _bn_layer_forward,
            (BatchNorm2dFunction, "forward"): _bn_forward, (BatchNorm2dFunction, "backward"): _bn_backward}
_ORIGINALS = {key: key[0].__dict__[key[1]] for key in _KERNELS}   # module 09's methods
_INSTALLED = {}


def _install(on: bool) -> None:
    for (owner, name), fn in _KERNELS.items():
        original = _ORIGINALS[(owner, name)]
        if on:
            if (owner, name) not in _INSTALLED:
                method = _as_method(fn, owner, name, original)
                method.__wrapped__ = original                      # inspect.unwrap finds module 09's
                _INSTALLED[(owner, name)] = method
            setattr(owner, name, _INSTALLED[(owner, name)])
        else:
            setattr(owner, name, original)


def _same_as_module_09() -> bool:
    """A tiny conv -> batch norm -> max pool, forward and backward, with the installed methods
    and with module 09's, once for each conv path (Winograd; im2col with the transposed-
    convolution input gradient; im2col with the scatter); True when every value agrees."""
    r = np.random.default_rng(0)
    gamma, beta = r.standard_normal(4), r.standard_normal(4)
    for C, stride in ((WINOGRAD_MIN_CHANNELS, 1), (3, 1), (3, 2)):
        x, w = r.standard_normal((2, C, 6, 6)), r.standard_normal((4, C, 3, 3))
        results = []
        for methods in ({k: getattr(k[0], k[1]) for k in _KERNELS}, _ORIGINALS):
            call = lambda cls, name, *a, **kw: methods[(cls, name)](*a, **kw)   # noqa: E731
            conv, bn, pool = Conv2dFunction(), BatchNorm2dFunction(), MaxPool2dFunction()
            y = call(Conv2dFunction, "forward", conv, x, w, stride=stride, padding=1)
            mean, var = (batch_norm_stats(y)[:2] if methods is not _ORIGINALS
                         else (y.mean(axis=(0, 2, 3)), y.var(axis=(0, 2, 3))))
            z = call(BatchNorm2dFunction, "forward", bn, y, gamma, beta, mean=mean, var=var, training=True)
            p = call(MaxPool2dFunction, "forward", pool, z, kernel_size=2)
            g = np.linspace(-1, 1, p.size).reshape(p.shape)
            (gz,) = call(MaxPool2dFunction, "backward", pool, g)
            gy, dgamma, dbeta = call(BatchNorm2dFunction, "backward", bn, gz)
            gx, dw = call(Conv2dFunction, "backward", conv, gy)
            results.append([mean, var, p, gx, dw, dgamma, dbeta])
        if not all(np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=1e-6, atol=1e-8) for a, b in zip(*results)):
            return False
    return True


def enable_acceleration() -> bool:
    """Make module 09's Conv2d, MaxPool2d and BatchNorm2d run this module's kernels (idempotent).

    Returns True when they do; False (with a RuntimeWarning, module 09's methods restored) when
    the kernels are not complete or disagree with module 09's."""
    _install(True)
    try:
        ok = _same_as_module_09()
    except Exception:  # a stub raising NotImplementedError, or any bug: keep module 09's
        ok = False
    if not ok:
        _install(False)
        warnings.warn("enable_acceleration(): module 18's kernels are not complete yet (or disagree "
                      "with module 09's); Conv2d, MaxPool2d and BatchNorm2d keep module 09's code.",
                      RuntimeWarning, stacklevel=2)
    return ok


def disable_acceleration() -> None:
    """Put module 09's methods back."""
    _install(False)


def is_accelerated() -> bool:
    return Conv2dFunction.__dict__["forward"] is not _ORIGINALS[(Conv2dFunction, "forward")]


@contextlib.contextmanager
def accelerated(on: bool = True):
    """``with accelerated(False):`` runs module 09's kernels inside the block (True: this module's)."""
    was = is_accelerated()
    if on:
        enable_acceleration()
    else:
        disable_acceleration()
    try:
        yield
    finally:
        if was:
            enable_acceleration()
        else:
            disable_acceleration()


# %% nbgrader={"grade": true, "grade_id": "test-module", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import gradcheck
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d


def _small_cnn(seed):
    return Sequential(Conv2d(3, 8, 3, padding=1, bias=False, seed=seed), BatchNorm2d(8), ReLU(), MaxPool2d(2),
                      Conv2d(8, 8, 3, padding=1, seed=seed + 1), ReLU(), MaxPool2d(2),
                      Flatten(), Linear(8 * 2 * 2, 4, seed=seed + 2))


def test_module():
    """With the switch on, a CNN's loss and every gradient equal module 09's; gradcheck passes."""
    assert enable_acceleration(), "enable_acceleration() must succeed with complete kernels"
    assert is_accelerated() and Conv2dFunction.forward.__name__ == "forward"
    r = np.random.default_rng(0)
    x, y = Tensor(r.standard_normal((6, 3, 8, 8)).astype(np.float32)), Tensor(r.integers(0, 4, 6))
    grads = []
    for on in (False, True):
        with accelerated(on):
            net = _small_cnn(3)
            loss = CrossEntropyLoss()(net(x), y)
            loss.backward()
            grads.append([float(loss.data)] + [p.grad.data for p in net.parameters()])
    assert is_accelerated(), "accelerated() must restore the state it found"
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    gradcheck(lambda x, w, b: Conv2dFunction.apply(x, w, b, stride=1, padding=1),
              *(Tensor(r.standard_normal(s), dtype=np.float64) for s in ((2, 2, 4, 4), (3, 2, 3, 3), (3,))))
    gradcheck(lambda x: MaxPool2dFunction.apply(x, kernel_size=2),
              Tensor(r.permutation(2 * 2 * 4 * 4).reshape(2, 2, 4, 4) / 10.0, dtype=np.float64))
    ### BEGIN HIDDEN TESTS
    with accelerated(False):
        assert not is_accelerated()
    ### END HIDDEN TESTS


test_module()

# %% [markdown]
# ## 8. Systems measurement: the CNN training step, before and after
#
# The milestone-4 network (five conv-BN-ReLU blocks, three max-pools, one Linear) for one
# training step (forward, loss, backward, SGD with momentum) on a small batch, with module 09's
# kernels and with yours, alternating so that a busy moment of the machine hits both:

# %%
from tinytorch.core.optimizers import SGD


def _milestone_cnn(seed=0):
    blocks, cin = [], 3
    for i, cout in enumerate((32, 32, None, 64, 64, None, 128, None)):
        if cout is None:
            blocks.append(MaxPool2d(2))
        else:
            blocks += [Conv2d(cin, cout, 3, padding=1, bias=False, seed=seed + i), BatchNorm2d(cout), ReLU()]
            cin = cout
    return Sequential(*blocks, Flatten(), Linear(128 * 4 * 4, 10, seed=seed))


_cnn = _milestone_cnn()
_opt = SGD(_cnn.parameters(), lr=0.01, momentum=0.9)
_xb = Tensor(_rng.standard_normal((16, 3, 32, 32)).astype(np.float32))        # (16, 3, 32, 32)
_yb = Tensor(_rng.integers(0, 10, 16))


def _train_step():
    loss = CrossEntropyLoss()(_cnn(_xb), _yb)
    _opt.zero_grad()
    loss.backward()
    _opt.step()


for on in (False, True):                                                      # warm-up, both
    with accelerated(on):
        _train_step()
_times = {False: [], True: []}
for _round in range(4):
    for on in ((False, True) if _round % 2 == 0 else (True, False)):
        with accelerated(on):
            _times[on].append(best_of(_train_step, 1))
_t09, _t18 = np.median(_times[False]), np.median(_times[True])
print(f"milestone CNN, batch 16, one training step (median of 4 interleaved rounds): "
      f"module 09 {_t09 * 1e3:.0f} ms, module 18 {_t18 * 1e3:.0f} ms -> {_t09 / _t18:.2f}x faster")

# %% [markdown]
# `benchmarks/cnn_train.py` measures the full-size step (batch 128) against PyTorch in the same
# run, and `benchmarks/acceleration.py` every kernel against module 09's, both with module 19's
# interleaved `compare` (results in `benchmarks/results/`).
#
# ## 9. BLAS threads on a small machine
#
# OpenBLAS splits a large matrix product over threads; NumPy's element-wise operations run on
# one. On a two-core machine the second core can at best halve the GEMMs, and only when nobody
# else is using it. `blas_threads(n)` (provided with the Winograd code in section 5; it asks
# NumPy's OpenBLAS through `ctypes`, and does nothing where that library is not found) sets the
# count for a block. With two BLAS threads your Winograd convolutions also split their chunks
# over two Python threads (`parallel_chunks`), so their transforms, not only their GEMMs, use
# the second core:

# %%
_a = _rng.standard_normal((512, 512)).astype(np.float32)
_t_threads = {}
for n in (1, 2):
    with blas_threads(n) as got:
        _t_threads[n] = best_of(lambda: _a @ _a, 5)
        _t_threads[f"step{n}"] = best_of(_train_step, 2)
    print(f"BLAS threads {n} (in effect: {got}): (512, 512) @ (512, 512) {_t_threads[n] * 1e3:.2f} ms, "
          f"CNN step batch 16 {_t_threads[f'step{n}'] * 1e3:.0f} ms (wall clock)")
print(f"second thread: GEMM {_t_threads[1] / _t_threads[2]:.2f}x, whole step "
      f"{_t_threads['step1'] / _t_threads['step2']:.2f}x (the load average now: {os.getloadavg()[0]:.1f} "
      f"on {os.cpu_count()} cores)")

# %% [markdown]
# The GEMM gains from the second thread only if the core is free (the load average tells you);
# the step gains less (Amdahl: what is left single-threaded, pooling, batch norm, ReLU, the first
# layer's im2col and the Python of the graph, stays on one core). On a shared machine one thread is often the faster choice.

# %% [markdown]
# ## Reflect
#
# 1. **Roofline.** Your (256, 256) product ran at some GFLOP/s and the 32 MiB write at some
#    GB/s. A softmax of (64, 256) float32 does about 5 FLOPs per element. Is it compute- or
#    memory-bound? What speed-up can fusing two of its sweeps give at most?
# 2. **im2col's memory.** The second layer's `cols` at batch 128 is 131,072 x 288 float32: how
#    many MB? It lives from the forward pass to the backward one. What would it cost to
#    recompute it in the backward pass instead, and when is that trade worth making?
# 3. **Transposed convolution.** Why does the scatter (`col2im`) path need `dcols`, an array
#    KH*KW times the input, while the transposed convolution's `im2col` of the gradient is the
#    same size? Both are one GEMM: which extra sweeps over memory does the transposed version
#    save? Why does it not work as written for stride 2?
# 4. **Winograd.** F(2, 3) does 2.25x fewer multiplies than im2col, yet the whole-batch NumPy
#    version was slower. Count the bytes its transforms write for the second layer (V, M, the
#    row pass) against im2col's `cols`, and explain why cache blocking turned the loss into a
#    gain. Why does the backward pass recompute `V` instead of saving it? Why is F(4, 3)
#    (6x6 tiles, 4x fewer multiplies) riskier in float32?
# 5. **Threads.** With the second core free, your GEMM got faster by the factor you measured.
#    Using your step's split between GEMMs and everything else, what is Amdahl's bound for the
#    whole step with two threads? Why can one thread be faster on a machine shared with other
#    programs?
