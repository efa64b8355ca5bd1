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
# # Module 09: Convolutions and Pooling
#
# A dense layer looks at a 32x32 colour image as 3,072 unrelated numbers. It does not
# know that pixel (5, 7) sits next to pixel (5, 8), so it must learn every local pattern
# again at every position, with its own weights. A convolution slides one small filter
# over the whole image: the same 3x3 weights detect an edge in the top-left corner and
# in the bottom-right one. That single idea (local connectivity plus weight sharing) is
# why CNNs beat MLPs on images with a hundred times fewer parameters, and it is what you
# build here: `Conv2d` (first as seven honest loops, then as one big matrix multiply),
# `MaxPool2d`, `AvgPool2d`, `Flatten` and `BatchNorm2d`, every one with a forward and
# a backward pass that the autograd engine of module 05 can chain.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far                  you build now                 this unlocks
#   ------------                  -------------                 ------------
#   01 Tensor  (matmul, reshape)  09 Conv2d (7 loops -> im2col)  milestone 4: CNN vs MLP,
#   05 autograd (Function)  --->  09 MaxPool2d, AvgPool2d  --->   CIFAR-10 >= 75%
#   03 Module, Linear             09 Flatten, BatchNorm2d        14 profiling a CNN
#   02/04 activations, losses
#   06 SGD, 07 training loop                                     15 quantized Conv
#   08 DataLoader (CIFAR-10)                                     18 faster kernels
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp core.spatial
#| export
#| namespace tinytorch.nn Conv2d MaxPool2d AvgPool2d Flatten BatchNorm2d
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinytorch.core.autograd import Function
from tinytorch.core.layers import Module
from tinytorch.core.tensor import Tensor, default_rng


def _pair(v, name):
    """Turn ``3`` into ``(3, 3)``; check a given pair. (Provided helper.)"""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def conv_output_size(size, kernel, stride=1, padding=0):
    """Output length of a sliding window: floor((size + 2*padding - kernel) / stride) + 1."""
    out = (size + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise ValueError(
            f"Window does not fit: input size {size} with padding {padding} is smaller "
            f"than kernel {kernel} (expected size + 2*padding >= kernel)")
    return out


def _check_input(x, name, channels=None):
    if x.ndim != 4:
        raise ValueError(f"{name} expects input of shape (N, C, H, W), got shape {x.shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name}: expected {channels} input channels, got {x.shape[1]} "
                         f"(input shape {x.shape})")


# %% [markdown]
# ## 1. What a convolution computes
#
# Input `x` has shape `(N, C, H, W)`: a batch of N images, C channels (3 for RGB), H rows,
# W columns. A filter bank `weight` has shape `(O, C, KH, KW)`: O filters, each one a
# small `C x KH x KW` block. Output pixel `(n, o, i, j)` is the dot product of filter `o`
# with the input patch whose top-left corner is at `(i*S, j*S)`, plus a bias:
#
# ```
#   input channel c (5x5), padding 0          filter (3x3)        output (3x3)
#   +----+----+----+----+----+
#   | 1  | 2  | 0  | 1  | 3  |               +---+---+---+        +----+----+----+
#   +----+----+----+----+----+               | 1 | 0 |-1 |        | -2 |  . |  . |
#   | 0  | 1  | 3  | 1  | 0  |    slide      +---+---+---+        +----+----+----+
#   +----+----+----+----+----+   ------->    | 1 | 0 |-1 |        |  . |  . |  . |
#   | 2  | 1  | 2  | 0  | 1  |               +---+---+---+        +----+----+----+
#   +----+----+----+----+----+               | 1 | 0 |-1 |        |  . |  . |  . |
#   | ...                                    +---+---+---+        +----+----+----+
#
#   out[0,0] = 1*1 + 2*0 + 0*(-1) + 0*1 + 1*0 + 3*(-1) + 2*1 + 1*0 + 2*(-1) = -2
# ```
#
# Output size along one axis, with kernel K, stride S and zero padding P:
#
# ```
#   H_out = floor((H + 2P - K) / S) + 1
#   32x32 input, K=3, P=1, S=1  ->  (32 + 2 - 3)/1 + 1 = 32   ("same" size)
#   32x32 input, K=5, P=0, S=1  ->  (32 - 5)/1 + 1     = 28
#   32x32 input, K=3, P=1, S=2  ->  floor(31/2) + 1    = 16
# ```
#
# (Deep-learning "convolution" is really cross-correlation: the filter is not flipped.
# PyTorch does the same, so our numbers match theirs.)
#
# ### The seven loops
#
# Written out plainly, a convolution is seven nested loops: batch `n`, output channel
# `o`, output row `i`, output column `j`, and for each output pixel the three loops of
# the dot product: input channel `c`, kernel row `ki`, kernel column `kj`. The number of
# multiply-accumulates (MACs) is the product of the seven loop lengths:
#
# ```
#   MACs = N * O * H_out * W_out * C * KH * KW
#   CIFAR batch (128, 3, 32, 32), 32 filters 5x5, no padding:
#        = 128 * 32 * 28 * 28 * 3 * 5 * 5 = 240,844,800  (241 million)
# ```
#
# Write it first exactly like that. It is slow, but it is obviously right, and it will
# be the *oracle* that the fast version is checked against.

# %% nbgrader={"grade": false, "grade_id": "conv2d-loops", "locked": false, "schema_version": 3, "solution": true}
#| export
def conv2d_loops(x, weight, bias=None, stride=1, padding=0):
    """2-D convolution with seven explicit loops (teaching and testing only).

    x: (N, C, H, W) array; weight: (O, C, KH, KW); bias: (O,) or None.
    Returns (N, O, H_out, W_out), same dtype as x.

    EXAMPLE: a (1, 1, 3, 3) input of ones with a (1, 1, 2, 2) filter of ones
             gives a (1, 1, 2, 2) output of fours.
    HINTS:
      - pad once with np.pad(x, ((0, 0), (0, 0), (P, P), (P, P))) before looping
      - the patch of output (i, j) starts at row i*S, column j*S of the padded input
      - loop order: n, o, i, j, then c, ki, kj for the dot product; add the bias once
    """
    x = np.asarray(x)
    weight = np.asarray(weight)
    _check_input(x, "conv2d_loops")
    N, C, H, W = x.shape
    O, Cw, KH, KW = weight.shape
    if Cw != C:
        raise ValueError(f"conv2d_loops: weight expects {Cw} input channels, got input with {C} "
                         f"(input {x.shape}, weight {weight.shape})")
    S, P = int(stride), int(padding)
    H_out = conv_output_size(H, KH, S, P)
    W_out = conv_output_size(W, KW, S, P)
    ### BEGIN SOLUTION
    xp = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))           # (N, C, H+2P, W+2P)
    out = np.zeros((N, O, H_out, W_out), dtype=x.dtype)        # (N, O, H_out, W_out)
    for n in range(N):
        for o in range(O):
            for i in range(H_out):
                for j in range(W_out):
                    acc = 0.0
                    for c in range(C):
                        for ki in range(KH):
                            for kj in range(KW):
                                acc += xp[n, c, i * S + ki, j * S + kj] * weight[o, c, ki, kj]
                    if bias is not None:
                        acc += bias[o]
                    out[n, o, i, j] = acc
    return out
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-conv2d-loops", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_conv2d_loops():
    """The seven loops compute the worked example, padding, stride and bias."""
    x = np.array([[1, 2, 0, 1, 3],
                  [0, 1, 3, 1, 0],
                  [2, 1, 2, 0, 1],
                  [1, 0, 1, 2, 2],
                  [3, 1, 0, 1, 0]], dtype=np.float32).reshape(1, 1, 5, 5)
    w = np.array([[1, 0, -1]] * 3, dtype=np.float32).reshape(1, 1, 3, 3)
    out = conv2d_loops(x, w)
    assert out.shape == (1, 1, 3, 3), f"expected (1, 1, 3, 3), got {out.shape}"
    assert out.dtype == np.float32, f"expected float32, got {out.dtype}"
    assert out[0, 0, 0, 0] == -2.0, f"expected out[0,0,0,0] = -2 (worked example), got {out[0, 0, 0, 0]}"
    # ones input, ones filter: every full window sums KH*KW*C values
    ones = conv2d_loops(np.ones((2, 3, 4, 4), np.float32), np.ones((5, 3, 3, 3), np.float32),
                        bias=np.arange(5, dtype=np.float32))
    assert ones.shape == (2, 5, 2, 2), f"expected (2, 5, 2, 2), got {ones.shape}"
    np.testing.assert_allclose(ones[0, :, 0, 0], 27 + np.arange(5))
    # padding 1 keeps the size; the corner sees only 2x2 of the 3x3 window
    padded = conv2d_loops(np.ones((1, 1, 4, 4), np.float32), np.ones((1, 1, 3, 3), np.float32), padding=1)
    assert padded.shape == (1, 1, 4, 4), f"padding=1: expected (1, 1, 4, 4), got {padded.shape}"
    assert padded[0, 0, 0, 0] == 4 and padded[0, 0, 1, 1] == 9
    # stride 2 halves the size
    strided = conv2d_loops(np.ones((1, 1, 5, 5), np.float32), np.ones((1, 1, 3, 3), np.float32), stride=2)
    assert strided.shape == (1, 1, 2, 2), f"stride=2: expected (1, 1, 2, 2), got {strided.shape}"
    ramp = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    np.testing.assert_allclose(conv2d_loops(ramp, np.ones((1, 1, 3, 3), np.float32), stride=2)[0, 0],
                               [[54, 72], [144, 162]], err_msg="stride=2: windows start at rows and columns 0 and 2")
    ### BEGIN HIDDEN TESTS
    r = np.random.default_rng(1)
    a = r.standard_normal((1, 2, 3, 3)).astype(np.float32)
    k = r.standard_normal((1, 2, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(conv2d_loops(a, k)[0, 0, 0, 0], (a[0] * k[0]).sum(), rtol=1e-5)
    ### END HIDDEN TESTS


test_unit_conv2d_loops()

# %% [markdown]
# ### How slow is slow? Count, then time
#
# The loops do one Python-level multiply-add per MAC. Python manages only about a
# million of those per second, so a single CIFAR batch through one 5x5 layer (241 million
# MACs) would take minutes. We time a small slice and let the MAC count extrapolate. The
# numbers below are measured on your machine when this cell runs.

# %%
def conv_macs(x_shape, w_shape, stride=1, padding=0):
    """Multiply-accumulates of a convolution: N * O * H_out * W_out * C * KH * KW."""
    N, C, H, W = x_shape
    O, _, KH, KW = w_shape
    return N * O * conv_output_size(H, KH, stride, padding) * conv_output_size(W, KW, stride, padding) * C * KH * KW


import time

_rng = np.random.default_rng(0)
_x_small = _rng.standard_normal((1, 3, 12, 12)).astype(np.float32)   # (1, 3, 12, 12): a tiny slice
_w_small = _rng.standard_normal((4, 3, 5, 5)).astype(np.float32)     # (4, 3, 5, 5)
_t0 = time.perf_counter()
conv2d_loops(_x_small, _w_small)
_loop_seconds = time.perf_counter() - _t0
_small_macs = conv_macs(_x_small.shape, _w_small.shape)
_cifar_macs = conv_macs((128, 3, 32, 32), (32, 3, 5, 5))
_macs_per_s = _small_macs / _loop_seconds
print(f"seven loops: {_small_macs:,} MACs in {_loop_seconds * 1e3:.1f} ms -> {_macs_per_s / 1e6:.2f} million MACs/s")
print(f"CIFAR batch (128,3,32,32) * 32 filters 5x5 = {_cifar_macs:,} MACs "
      f"-> about {_cifar_macs / _macs_per_s:.0f} s with the loops (extrapolated)")

# %% [markdown]
# ## 2. From seven loops to one matrix multiply: im2col
#
# Look again at the inner three loops: for one output pixel they take the dot product of
# a filter (C*KH*KW numbers) with one input patch (also C*KH*KW numbers). If we copy
# every patch into a column of a matrix, all output pixels become one matrix product:
#
# ```
#   input (C=1, 4x4), K=3          im2col: one column per output position (2x2 = 4)
#   +---+---+---+---+
#   | a | b | c | d |              col(0,0) col(0,1) col(1,0) col(1,1)
#   +---+---+---+---+                 a        b        e        f
#   | e | f | g | h |      --->       b        c        f        g
#   +---+---+---+---+                 c        d        g        h
#   | i | j | k | l |                 e        f        i        j       (9 rows = C*KH*KW)
#   +---+---+---+---+                 ...      ...      ...      ...
#   | m | n | o | p |                 k        l        o        p
#   +---+---+---+---+
#
#   weights (O, C*KH*KW)  @  cols (C*KH*KW, H_out*W_out)  =  out (O, H_out*W_out)
# ```
#
# NumPy can *view* every patch without copying with
# `np.lib.stride_tricks.sliding_window_view(xp, (KH, KW), axis=(2, 3))`, which has shape
# `(N, C, H', W', KH, KW)` (H', W' are the window counts with stride 1). Taking every
# S-th window implements the stride, and one `transpose` + `reshape` lays the patches
# out as columns. That reshape is the only copy: every input pixel is repeated once per
# kernel offset, so `cols` is about `KH*KW` times the input (9x for a 3x3 kernel with
# "same" padding; 25 * 28*28 / (32*32) = 19x for a 5x5 kernel on 32x32 without padding).
# That memory is the price of handing the arithmetic to BLAS.
#
# ```
#   cols[n, (c, ki, kj), (i, j)] = xp[n, c, i*S + ki, j*S + kj]
#   shapes: x (N, C, H, W) -> xp (N, C, H+2P, W+2P) -> cols (N, C*KH*KW, H_out*W_out)
# ```
#
# `col2im` is the reverse, and it is what the backward pass needs: each input pixel
# appears in up to KH*KW columns, so its gradient is the *sum* over all the columns that
# used it. Loop over the KH*KW kernel offsets (9 iterations for 3x3, not millions) and
# add a strided slice each time.

# %% nbgrader={"grade": false, "grade_id": "im2col", "locked": false, "schema_version": 3, "solution": true}
#| export
def im2col(x, kernel_size, stride=1, padding=0):
    """Lay out every (C, KH, KW) patch of x as a column.

    x: (N, C, H, W). Returns (cols, (H_out, W_out)) with cols of shape
    (N, C*KH*KW, H_out*W_out), rows ordered (c, ki, kj), columns ordered (i, j):
    cols[n, c*KH*KW + ki*KW + kj, i*W_out + j] = xpad[n, c, i*S + ki, j*S + kj].

    HINTS:
      - xp = np.pad(...) only when padding > 0 (padding 0 must not copy)
      - win = sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::S, ::S]
        has shape (N, C, H_out, W_out, KH, KW)
      - transpose to (N, C, KH, KW, H_out, W_out), then reshape (that copies once)
    """
    KH, KW = _pair(kernel_size, "kernel_size")
    S, P = int(stride), int(padding)
    N, C, H, W = x.shape
    H_out = conv_output_size(H, KH, S, P)
    W_out = conv_output_size(W, KW, S, P)
    ### BEGIN SOLUTION
    xp = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P))) if P > 0 else x    # (N, C, H+2P, W+2P)
    win = sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::S, ::S]  # (N, C, H_out, W_out, KH, KW) view
    win = win[:, :, :H_out, :W_out]
    cols = win.transpose(0, 1, 4, 5, 2, 3).reshape(N, C * KH * KW, H_out * W_out)  # one copy
    return cols, (H_out, W_out)
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "col2im", "locked": false, "schema_version": 3, "solution": true}
#| export
def col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    """Adjoint of im2col: add every column entry back onto the input pixel it came from.

    cols: (N, C*KH*KW, H_out*W_out). Returns an array of shape x_shape = (N, C, H, W).
    An input pixel used by several windows receives the sum of their entries.

    HINTS:
      - allocate dxp = zeros (N, C, H+2P, W+2P) with cols.dtype
      - view cols as (N, C, KH, KW, H_out, W_out); for each (ki, kj):
        dxp[:, :, ki:ki + S*H_out:S, kj:kj + S*W_out:S] += cols6[:, :, ki, kj]
      - strip the padding at the end
    """
    KH, KW = _pair(kernel_size, "kernel_size")
    S, P = int(stride), int(padding)
    N, C, H, W = x_shape
    H_out = conv_output_size(H, KH, S, P)
    W_out = conv_output_size(W, KW, S, P)
    ### BEGIN SOLUTION
    cols6 = cols.reshape(N, C, KH, KW, H_out, W_out)                    # (N, C, KH, KW, H_out, W_out)
    dxp = np.zeros((N, C, H + 2 * P, W + 2 * P), dtype=cols.dtype)      # (N, C, H+2P, W+2P)
    for ki in range(KH):
        for kj in range(KW):
            dxp[:, :, ki:ki + S * H_out:S, kj:kj + S * W_out:S] += cols6[:, :, ki, kj]
    if P > 0:
        return dxp[:, :, P:P + H, P:P + W]
    return dxp
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-im2col", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_im2col():
    """im2col lays out patches as in the diagram; col2im is its adjoint."""
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)   # a..p = 0..15
    cols, (ho, wo) = im2col(x, 3)
    assert (ho, wo) == (2, 2), f"expected output size (2, 2), got {(ho, wo)}"
    assert cols.shape == (1, 9, 4), f"expected cols (1, 9, 4), got {cols.shape}"
    np.testing.assert_array_equal(cols[0, :, 0], [0, 1, 2, 4, 5, 6, 8, 9, 10])   # col(0,0)
    np.testing.assert_array_equal(cols[0, :, 3], [5, 6, 7, 9, 10, 11, 13, 14, 15])  # col(1,1)
    assert cols.dtype == np.float32, f"expected float32, got {cols.dtype}"
    # stride and padding shapes
    cols2, size2 = im2col(np.ones((2, 3, 8, 8), np.float32), (3, 3), stride=2, padding=1)
    assert size2 == (4, 4) and cols2.shape == (2, 27, 16), f"got {cols2.shape}, {size2}"
    # adjoint identity: <im2col(x), c> == <x, col2im(c)> for any x, c
    r = np.random.default_rng(0)
    for (shape, k, s, p) in [((2, 3, 5, 6), (3, 2), 1, 1), ((1, 2, 7, 7), (3, 3), 2, 0), ((1, 1, 6, 6), (2, 2), 2, 1)]:
        xx = r.standard_normal(shape)
        cc, _ = im2col(xx, k, s, p)
        c = r.standard_normal(cc.shape)
        back = col2im(c, shape, k, s, p)
        assert back.shape == shape, f"col2im: expected {shape}, got {back.shape}"
        np.testing.assert_allclose((cc * c).sum(), (xx * back).sum(), rtol=1e-10)
    ### BEGIN HIDDEN TESTS
    cpad, _ = im2col(np.ones((1, 1, 2, 2), np.float32), 3, padding=1)
    np.testing.assert_array_equal(cpad[0, :, 0], [0, 0, 0, 0, 1, 1, 0, 1, 1])
    ### END HIDDEN TESTS


test_unit_im2col()

# %% [markdown]
# ## 3. Conv2d forward and backward as an autograd `Function`
#
# Forward, for the whole batch at once:
#
# ```
#   cols = im2col(x)                              # (N, C*KH*KW, L)     L = H_out*W_out
#   out  = W2 @ cols  + b                         # (O, K) @ (N, K, L) -> (N, O, L)
#          W2 = weight.reshape(O, C*KH*KW)        #  K = C*KH*KW
#   out.reshape(N, O, H_out, W_out)
# ```
#
# Backward is the same three lines read with the chain rule. With `G = dL/dout` viewed
# as `(N, O, L)`:
#
# ```
#   dL/dW2   = sum_n  G[n] @ cols[n].T            # (O, L) @ (L, K) -> (O, K), summed over the batch
#   dL/db    = G.sum(axis=(0, 2))                 # (O,)
#   dL/dcols = W2.T @ G                           # (K, O) @ (N, O, L) -> (N, K, L)
#   dL/dx    = col2im(dL/dcols)                   # (N, C, H, W): overlapping patches add up
# ```
#
# Three matrix products of the same size as the forward one: training costs about three
# times the forward MACs. We keep `cols` from the forward pass (memory for speed) so the
# backward does not rebuild it. If the input does not need a gradient (the image batch
# going into the first layer) we skip `col2im` entirely.

# %% nbgrader={"grade": false, "grade_id": "conv2d-function", "locked": false, "schema_version": 3, "solution": true}
#| export
class Conv2dFunction(Function):
    """y = conv2d(x, weight) + bias as one batched matrix multiply (im2col).

    apply(x, weight, bias, stride=1, padding=0) or apply(x, weight, stride=..., padding=...)
    x (N, C, H, W), weight (O, C, KH, KW), bias (O,) -> (N, O, H_out, W_out)
    """

    def forward(self, x, weight, bias=None, stride=1, padding=0):
        _check_input(x, "Conv2d", weight.shape[1])
        O, C, KH, KW = weight.shape
        N = x.shape[0]
        self.stride, self.padding = int(stride), int(padding)
        self.x_shape = x.shape
        self.has_bias = bias is not None
        ### BEGIN SOLUTION
        cols, (H_out, W_out) = im2col(x, (KH, KW), self.stride, self.padding)  # (N, K, L)
        w2 = weight.reshape(O, C * KH * KW)                                      # (O, K)
        out = np.matmul(w2, cols)                                                # (N, O, L)
        if bias is not None:
            out += bias.reshape(1, O, 1)
        self.save_for_backward(cols, weight)
        return out.reshape(N, O, H_out, W_out)                                   # (N, O, H_out, W_out)
        ### END SOLUTION

    def backward(self, grad_out):
        cols, weight = self.saved
        O, C, KH, KW = weight.shape
        N = grad_out.shape[0]
        needs = getattr(self, "needs_input_grad", ())   # set by apply(); empty when called directly
        need_dx = bool(needs[0]) if len(needs) else True
        ### BEGIN SOLUTION
        g = grad_out.reshape(N, O, -1)                                           # (N, O, L)
        dw = np.matmul(g, cols.transpose(0, 2, 1)).sum(axis=0)                   # (O, K)
        dw = dw.reshape(weight.shape).astype(weight.dtype, copy=False)           # (O, C, KH, KW)
        dx = None
        if need_dx:
            dcols = np.matmul(weight.reshape(O, -1).T, g)                        # (N, K, L)
            dx = col2im(dcols, self.x_shape, (KH, KW), self.stride, self.padding)  # (N, C, H, W)
        if self.has_bias:
            db = g.sum(axis=(0, 2)).astype(weight.dtype, copy=False)             # (O,)
            return dx, dw, db
        return dx, dw
        ### END SOLUTION


# %% [markdown]
# ### The `Conv2d` layer
#
# The layer owns `weight (O, C, KH, KW)` and `bias (O,)`, initialised like PyTorch's:
# uniform in `[-1/sqrt(fan_in), 1/sqrt(fan_in)]` with `fan_in = C*KH*KW`, from a seeded
# generator. Count its parameters against a dense layer on the same image:
#
# ```
#   Conv2d(3 -> 32, k=3):   32 * (3*3*3) + 32          =    896 parameters
#   Linear(32*32*3 -> 32):  3072 * 32 + 32             = 98,336 parameters   (109x more)
# ```
#
# `padding` is a number of zeros on every side, or PyTorch's words: `"valid"` (no padding)
# and `"same"` (the output keeps the input's height and width). With stride 1 the output is
# `H + 2p - K + 1`, so "same" means `p = (K - 1) / 2`: 1 for a 3x3 kernel, 2 for 5x5. An even
# kernel would need one more zero on one side than on the other, which a single `padding`
# number cannot say, so "same" asks for an odd square kernel and stride 1 (PyTorch also
# refuses "same" with a stride).

# %% nbgrader={"grade": false, "grade_id": "conv2d-layer", "locked": false, "schema_version": 3, "solution": true}
#| export
def _padding_arg(padding, kernel_size, stride) -> int:
    """An int, or PyTorch's "valid" (0) / "same" (output size = input size). (Provided helper.)"""
    if isinstance(padding, str):
        if padding == "valid":
            return 0
        if padding == "same":
            KH, KW = kernel_size
            if stride != 1 or KH != KW or KH % 2 == 0:
                raise ValueError(f"padding='same' needs stride 1 and an odd square kernel, got "
                                 f"kernel_size={kernel_size}, stride={stride}: pass an int padding instead")
            return (KH - 1) // 2
        raise ValueError(f"padding must be an int, 'same' or 'valid', got {padding!r}")
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"padding must be an int >= 0, 'same' or 'valid', got {padding!r}")
    return int(padding)


class Conv2d(Module):
    """2-D convolution layer, NCHW like PyTorch: Conv2d(in_channels, out_channels, kernel_size)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, seed=None):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = int(stride)
        self.padding = _padding_arg(padding, self.kernel_size, self.stride)
        KH, KW = self.kernel_size
        ### BEGIN SOLUTION
        rng = default_rng(seed)
        bound = 1.0 / np.sqrt(self.in_channels * KH * KW)
        self.weight = Tensor(rng.uniform(-bound, bound, (self.out_channels, self.in_channels, KH, KW))
                             .astype(np.float32), requires_grad=True)
        self.bias = (Tensor(rng.uniform(-bound, bound, (self.out_channels,)).astype(np.float32),
                            requires_grad=True) if bias else None)
        ### END SOLUTION

    def forward(self, x):
        """x: Tensor (N, C, H, W) -> Tensor (N, O, H_out, W_out)."""
        ### BEGIN SOLUTION
        if self.bias is None:
            return Conv2dFunction.apply(x, self.weight, stride=self.stride, padding=self.padding)
        return Conv2dFunction.apply(x, self.weight, self.bias, stride=self.stride, padding=self.padding)
        ### END SOLUTION

    def __repr__(self):
        return (f"Conv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None})")


# %% nbgrader={"grade": true, "grade_id": "test-conv2d-forward", "locked": true, "points": 2, "schema_version": 3, "solution": false}
from tinytorch.testing import assert_tensor


def test_unit_conv2d_forward():
    """The vectorized Conv2d agrees with the seven-loop oracle; shapes, dtype, parameters."""
    r = np.random.default_rng(0)
    for (shape, O, k, s, p) in [((2, 3, 7, 7), 4, 3, 1, 1), ((1, 2, 8, 9), 3, (3, 2), 2, 0),
                                ((2, 1, 6, 6), 2, 5, 1, 2)]:
        x = r.standard_normal(shape).astype(np.float32)
        layer = Conv2d(shape[1], O, k, stride=s, padding=p, seed=1)
        ref = conv2d_loops(x, layer.weight.data, layer.bias.data, stride=s, padding=p)
        out = assert_tensor(layer(Tensor(x)), ref.shape, np.float32, name=f"Conv2d({shape[1]}, {O}, {k})(x)")
        np.testing.assert_allclose(out.data, ref, rtol=1e-4, atol=1e-5)
    layer = Conv2d(3, 32, 3)
    n_params = sum(p.size for p in layer.parameters())
    assert n_params == 896, f"Conv2d(3, 32, 3) should have 896 parameters, got {n_params}"
    assert layer.weight.shape == (32, 3, 3, 3), f"weight shape: expected (32, 3, 3, 3), got {layer.weight.shape}"
    assert np.abs(layer.weight.data).max() <= 1 / np.sqrt(27) + 1e-7
    np.testing.assert_array_equal(Conv2d(3, 4, 3, seed=5).weight.data, Conv2d(3, 4, 3, seed=5).weight.data)
    try:
        Conv2d(3, 4, 3)(Tensor(np.zeros((1, 2, 5, 5), np.float32)))
        raise AssertionError("a 2-channel input to Conv2d(3, ...) must raise")
    except ValueError as e:
        assert "3" in str(e) and "2" in str(e), f"the error should name expected and got: {e}"
    ### BEGIN HIDDEN TESTS
    nb = Conv2d(2, 3, 3, bias=False, seed=0)
    assert nb.bias is None and len(nb.parameters()) == 1
    xx = r.standard_normal((1, 2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(nb(Tensor(xx)).data, conv2d_loops(xx, nb.weight.data), rtol=1e-4, atol=1e-5)
    ### END HIDDEN TESTS


test_unit_conv2d_forward()

# %% [markdown]
# `padding="same"` at work: the spatial size survives, and the layer chose `padding=1` for 3x3
# and 2 for 5x5.

# %%
for k in (3, 5):
    same = Conv2d(3, 4, k, padding="same", seed=0)
    print(f"Conv2d(3, 4, {k}, padding='same'): padding={same.padding}, "
          f"(2, 3, 9, 9) -> {same(Tensor(np.zeros((2, 3, 9, 9), np.float32))).shape}")


# %% [markdown]
# ### Checking the backward pass with finite differences
#
# A gradient is right when it predicts how the loss changes. For a loss
# `L = sum(out * R)` with a fixed random `R`, nudge one weight by `+-eps` and compare
# `(L(w + eps) - L(w - eps)) / (2 eps)` with the analytic `dL/dw`. We do it in float64
# so that `eps = 1e-6` is far above rounding noise.

# %% nbgrader={"grade": true, "grade_id": "test-conv2d-backward", "locked": true, "points": 2, "schema_version": 3, "solution": false}
from tinytorch.core.autograd import gradcheck


def test_unit_conv2d_backward():
    """Conv2d gradients for x, weight and bias match central differences (float64)."""
    r = np.random.default_rng(3)
    for (shape, O, k, s, p) in [((2, 2, 5, 5), 3, 3, 1, 1), ((1, 2, 6, 7), 2, (2, 3), 2, 1)]:
        x, w, b = (Tensor(r.standard_normal(sh), dtype=np.float64)
                   for sh in (shape, (O, shape[1]) + _pair(k, "k"), (O,)))
        # module 05's gradcheck: your backward against central differences, in float64
        gradcheck(lambda x, w, b: Conv2dFunction.apply(x, w, b, stride=s, padding=p), x, w, b)
    # and through the autograd engine, from the layer
    layer = Conv2d(2, 3, 3, padding=1, seed=0)
    xt = Tensor(r.standard_normal((2, 2, 4, 4)).astype(np.float32), requires_grad=True)
    layer(xt).sum().backward()
    assert layer.weight.grad is not None and xt.grad is not None, "backward() must reach weight and input"
    assert layer.weight.grad.shape == (3, 2, 3, 3), f"expected (3, 2, 3, 3), got {layer.weight.grad.shape}"
    np.testing.assert_allclose(layer.bias.grad.data, np.full(3, 32.0), rtol=1e-5)   # 2 images * 4*4 pixels
    ### BEGIN HIDDEN TESTS
    fn = Conv2dFunction()
    fn.forward(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)))
    dxx, dww = fn.backward(np.ones((1, 1, 1, 1)))
    np.testing.assert_allclose(dxx, np.ones((1, 1, 3, 3)))
    ### END HIDDEN TESTS


test_unit_conv2d_backward()

# %% [markdown]
# ## 4. Pooling: summarise a neighbourhood
#
# Pooling shrinks the feature map and buys a little translation tolerance. It has no
# parameters. With kernel 2 and stride 2 each output is one 2x2 block of the input:
#
# ```
#   input (4x4)                max pool 2x2, stride 2     avg pool 2x2, stride 2
#   +---+---+---+---+
#   | 1 | 3 | 2 | 0 |          +---+---+                  +-----+-----+
#   +---+---+---+---+          | 6 | 4 |                  | 3.0 | 2.0 |
#   | 6 | 2 | 4 | 2 |   --->   +---+---+                  +-----+-----+
#   +---+---+---+---+          | 8 | 9 |                  | 4.5 | 4.5 |
#   | 8 | 1 | 0 | 9 |          +---+---+                  +-----+-----+
#   +---+---+---+---+
#   | 4 | 5 | 3 | 6 |
#   +---+---+---+---+
# ```
#
# Backward:
# - **max**: the gradient of each output flows only to the input that won (the argmax of
#   its window); the other three get zero. Record the winner's position in the forward.
#   We never copy the windows: loop over the K*K kernel offsets, compare a strided view
#   of the input with the running maximum, and note which offset won (one small int per
#   output). For 2x2 pooling that is 4 cheap passes instead of a (N, C, Ho, Wo, 4) copy.
# - **avg**: each of the K*K inputs gets `grad / (K*K)`.
#
# Both use the same window view as im2col, `(N, C, H_out, W_out, KH, KW)`, and the
# backward uses the same "loop over kernel offsets, add a strided slice" as col2im. The two
# layers around them (provided) differ only in the Function they apply, so a small base
# class, `_Pool2d`, holds the kernel size, the stride and the `forward`.

# %% nbgrader={"grade": false, "grade_id": "pool-functions", "locked": false, "schema_version": 3, "solution": true}
#| export
def _pool_windows(x, KH, KW, S):
    """(N, C, H, W) -> view (N, C, H_out, W_out, KH, KW) of every pooling window (no padding)."""
    H_out = conv_output_size(x.shape[2], KH, S)
    W_out = conv_output_size(x.shape[3], KW, S)
    win = sliding_window_view(x, (KH, KW), axis=(2, 3))[:, :, ::S, ::S]
    return win[:, :, :H_out, :W_out]


class MaxPool2dFunction(Function):
    """Max over each KH x KW window. apply(x, kernel_size=2, stride=None)."""

    def forward(self, x, kernel_size=2, stride=None):
        _check_input(x, "MaxPool2d")
        KH, KW = _pair(kernel_size, "kernel_size")
        S = KH if stride is None else int(stride)
        self.x_shape, self.k, self.S = x.shape, (KH, KW), S
        ### BEGIN SOLUTION
        N, C, H, W = x.shape
        Ho, Wo = conv_output_size(H, KH, S), conv_output_size(W, KW, S)
        out = x[:, :, 0:S * Ho:S, 0:S * Wo:S].copy()               # (N, C, Ho, Wo) offset (0, 0)
        arg = np.zeros((N, C, Ho, Wo), dtype=np.int8 if KH * KW < 128 else np.int32)
        for ki in range(KH):
            for kj in range(KW):
                if ki == 0 and kj == 0:
                    continue
                view = x[:, :, ki:ki + S * Ho:S, kj:kj + S * Wo:S]  # (N, C, Ho, Wo) strided view
                better = view > out                                # strict: the first maximum wins
                np.copyto(out, view, where=better)
                arg[better] = ki * KW + kj
        self.save_for_backward(arg)
        return out
        ### END SOLUTION

    def backward(self, grad_out):
        (arg,) = self.saved
        KH, KW = self.k
        S = self.S
        N, C, H, W = self.x_shape
        Ho, Wo = grad_out.shape[2:]
        ### BEGIN SOLUTION
        dx = np.zeros((N, C, H, W), dtype=grad_out.dtype)                # (N, C, H, W)
        for ki in range(KH):
            for kj in range(KW):
                won = arg == ki * KW + kj                                # (N, C, Ho, Wo) bool
                dx[:, :, ki:ki + S * Ho:S, kj:kj + S * Wo:S] += np.where(won, grad_out, 0)
        return (dx,)
        ### END SOLUTION


class AvgPool2dFunction(Function):
    """Mean over each KH x KW window. apply(x, kernel_size=2, stride=None)."""

    def forward(self, x, kernel_size=2, stride=None):
        _check_input(x, "AvgPool2d")
        KH, KW = _pair(kernel_size, "kernel_size")
        S = KH if stride is None else int(stride)
        self.x_shape, self.k, self.S = x.shape, (KH, KW), S
        ### BEGIN SOLUTION
        win = _pool_windows(x, KH, KW, S)                          # (N, C, Ho, Wo, KH, KW)
        return win.mean(axis=(-2, -1), dtype=x.dtype)              # (N, C, Ho, Wo)
        ### END SOLUTION

    def backward(self, grad_out):
        KH, KW = self.k
        S = self.S
        N, C, H, W = self.x_shape
        Ho, Wo = grad_out.shape[2:]
        ### BEGIN SOLUTION
        share = grad_out / (KH * KW)                               # (N, C, Ho, Wo)
        dx = np.zeros((N, C, H, W), dtype=grad_out.dtype)          # (N, C, H, W)
        for ki in range(KH):
            for kj in range(KW):
                dx[:, :, ki:ki + S * Ho:S, kj:kj + S * Wo:S] += share
        return (dx,)
        ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "pool-layers", "locked": true, "schema_version": 3, "solution": false}
#| export
class _Pool2d(Module):
    """What both pooling layers share: a kernel size, a stride (by default the kernel size,
    like PyTorch) and no parameters; a subclass names its ``function``."""

    function = None  # the pooling Function of the subclass

    def __init__(self, kernel_size=2, stride=None):
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size[0] if stride is None else int(stride)

    def forward(self, x):
        return self.function.apply(x, kernel_size=self.kernel_size, stride=self.stride)

    def __repr__(self):
        return f"{type(self).__name__}(kernel_size={self.kernel_size}, stride={self.stride})"


class MaxPool2d(_Pool2d):
    """MaxPool2d(kernel_size, stride=None): the maximum of each window."""

    function = MaxPool2dFunction


class AvgPool2d(_Pool2d):
    """AvgPool2d(kernel_size, stride=None): the mean of each window."""

    function = AvgPool2dFunction


# %% nbgrader={"grade": true, "grade_id": "test-pooling", "locked": true, "points": 2, "schema_version": 3, "solution": false}
from tinytorch.core.autograd import gradcheck


def test_unit_pooling():
    """Max/avg pooling reproduce the diagram; their gradients match finite differences."""
    x = np.array([[1, 3, 2, 0], [6, 2, 4, 2], [8, 1, 0, 9], [4, 5, 3, 6]], np.float32).reshape(1, 1, 4, 4)
    mx = assert_tensor(MaxPool2d(2)(Tensor(x)), (1, 1, 2, 2), np.float32, name="MaxPool2d(2)(x)")
    av = assert_tensor(AvgPool2d(2)(Tensor(x)), (1, 1, 2, 2), np.float32, name="AvgPool2d(2)(x)")
    np.testing.assert_array_equal(mx.data[0, 0], [[6, 4], [8, 9]])
    np.testing.assert_allclose(av.data[0, 0], [[3.0, 2.0], [4.5, 4.5]])
    assert mx.data.dtype == np.float32 and av.data.dtype == np.float32
    # max backward routes the gradient to the winner only
    fn = MaxPool2dFunction()
    fn.forward(x, kernel_size=2)
    (dx,) = fn.backward(np.ones((1, 1, 2, 2), np.float32))
    expected = np.zeros((4, 4), np.float32)
    for (i, j) in [(1, 0), (1, 2), (2, 0), (2, 3)]:
        expected[i, j] = 1
    np.testing.assert_array_equal(dx[0, 0], expected)
    # finite differences, overlapping windows (kernel 3, stride 2) and odd sizes
    r = np.random.default_rng(0)
    for F, k, s in [(MaxPool2dFunction, 3, 2), (AvgPool2dFunction, 3, 2), (AvgPool2dFunction, 2, None)]:
        xx = r.permutation(2 * 2 * 7 * 7).reshape(2, 2, 7, 7).astype(np.float64) / 10  # distinct values
        gradcheck(lambda x: F.apply(x, kernel_size=k, stride=s), Tensor(xx, dtype=np.float64))
    ### BEGIN HIDDEN TESTS
    assert MaxPool2d(2)(Tensor(np.zeros((2, 3, 5, 5), np.float32))).shape == (2, 3, 2, 2)
    ### END HIDDEN TESTS


test_unit_pooling()

# %% [markdown]
# ## 5. Flatten: from feature maps to a classifier
#
# After the last pooling layer a CNN hands its features to a `Linear` layer, which wants
# `(N, features)`. `Flatten` keeps the batch axis and merges the rest:
# `(128, 128, 4, 4) -> (128, 2048)`. It is a `reshape`, so autograd already knows its
# backward (reshape the gradient back); no new `Function` is needed.

# %% nbgrader={"grade": false, "grade_id": "flatten", "locked": false, "schema_version": 3, "solution": true}
#| export
class Flatten(Module):
    """Flatten(): (N, d1, d2, ...) -> (N, d1*d2*...)."""

    def forward(self, x):
        ### BEGIN SOLUTION
        return x.reshape(x.shape[0], -1)
        ### END SOLUTION

    def __repr__(self):
        return "Flatten()"


# %% nbgrader={"grade": true, "grade_id": "test-flatten", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_flatten():
    """Flatten keeps the batch axis and passes gradients back in the original shape."""
    x = Tensor(np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2), requires_grad=True)
    y = assert_tensor(Flatten()(x), (2, 12), np.float32, name="Flatten()(x)")
    np.testing.assert_array_equal(y.data[1], np.arange(12, 24))
    (y * 2).sum().backward()
    assert x.grad is not None and x.grad.shape == (2, 3, 2, 2), "gradient must come back as (2, 3, 2, 2)"
    np.testing.assert_allclose(x.grad.data, 2.0)


test_unit_flatten()

# %% [markdown]
# ## 6. Batch normalisation for feature maps
#
# Deep CNNs train much faster when every channel's activations are kept at mean 0 and
# variance 1. `BatchNorm2d` normalises each channel over the batch and both spatial axes
# (M = N*H*W values per channel), then lets the network rescale them with a learned
# `gamma` (weight) and `beta` (bias):
#
# ```
#   mean_c = mean over (n, h, w) of x[n, c, h, w]            # (C,)
#   var_c  = mean over (n, h, w) of (x - mean_c)^2           # (C,)  biased, as in the paper
#   xhat   = (x - mean_c) / sqrt(var_c + eps)                # (N, C, H, W)
#   y      = gamma_c * xhat + beta_c
# ```
#
# At test time a single image has no batch to average over, so the layer keeps running
# averages (buffers, not parameters: they are saved in `state_dict` but never receive
# gradients): `running = (1 - momentum) * running + momentum * batch_stat`, with the
# unbiased variance `var * M / (M - 1)` like PyTorch. `eval()` switches to them. The update is
# its own method, `update_running_stats`, so that any other way of computing the batch
# statistics (module 18 has a faster one) folds them in the same way.
#
# Backward in training mode (the mean and variance depend on x too), with
# `dbeta = sum(dy)` and `dgamma = sum(dy * xhat)` over (n, h, w):
#
# ```
#   dx = gamma / sqrt(var + eps) / M * (M * dy - dbeta - xhat * dgamma)
# ```
#
# In eval mode mean and variance are constants and `dx = gamma / sqrt(var + eps) * dy`.
# The layer computes the batch statistics (and updates its buffers) itself and passes
# them to the `Function`, which only normalises and differentiates.

# %% nbgrader={"grade": false, "grade_id": "batchnorm-function", "locked": false, "schema_version": 3, "solution": true}
#| export
class BatchNorm2dFunction(Function):
    """apply(x, gamma, beta, mean=..., var=..., eps=1e-5, training=True) for x (N, C, H, W)."""

    def forward(self, x, gamma, beta, mean=None, var=None, eps=1e-5, training=True):
        C = x.shape[1]
        self.training = bool(training)
        ### BEGIN SOLUTION
        shape = (1, C, 1, 1)
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype)            # (C,)
        xhat = (x - mean.reshape(shape).astype(x.dtype)) * invstd.reshape(shape)   # (N, C, H, W)
        self.save_for_backward(xhat, invstd, gamma)
        return xhat * gamma.reshape(shape) + beta.reshape(shape)       # (N, C, H, W)
        ### END SOLUTION

    def backward(self, grad_out):
        xhat, invstd, gamma = self.saved
        N, C, H, W = grad_out.shape
        M = N * H * W
        ### BEGIN SOLUTION
        shape = (1, C, 1, 1)
        dbeta = grad_out.sum(axis=(0, 2, 3))                            # (C,)
        dgamma = (grad_out * xhat).sum(axis=(0, 2, 3))                  # (C,)
        scale = (gamma * invstd).reshape(shape)                         # (1, C, 1, 1)
        if self.training:
            dx = (scale / M) * (M * grad_out - dbeta.reshape(shape) - xhat * dgamma.reshape(shape))
        else:
            dx = scale * grad_out
        return dx.astype(grad_out.dtype, copy=False), dgamma, dbeta
        ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "batchnorm-layer", "locked": false, "schema_version": 3, "solution": true}
#| export
class BatchNorm2d(Module):
    """BatchNorm2d(num_features, eps=1e-5, momentum=0.1): per-channel normalisation of (N, C, H, W)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        C = self.num_features
        self.weight = Tensor(np.ones(C, dtype=np.float32), requires_grad=True)    # gamma
        self.bias = Tensor(np.zeros(C, dtype=np.float32), requires_grad=True)     # beta
        self.register_buffer("running_mean", Tensor(np.zeros(C, dtype=np.float32)))
        self.register_buffer("running_var", Tensor(np.ones(C, dtype=np.float32)))

    def update_running_stats(self, mean, var, count):
        """Fold one batch's statistics into the running ones: mean and biased var (C,) of
        ``count`` values per channel (the variance is stored unbiased, var * M / (M - 1))."""
        ### BEGIN SOLUTION
        m = self.momentum
        self.running_mean.data[...] = (1 - m) * self.running_mean.data + m * mean
        self.running_var.data[...] = (1 - m) * self.running_var.data + m * var * (count / max(count - 1, 1))
        ### END SOLUTION

    def forward(self, x):
        """x: Tensor (N, C, H, W) -> Tensor (N, C, H, W)."""
        _check_input(x.data, "BatchNorm2d", self.num_features)
        ### BEGIN SOLUTION
        if self.training:
            data = x.data
            mean = data.mean(axis=(0, 2, 3))                                     # (C,)
            var = ((data - mean.reshape(1, -1, 1, 1)) ** 2).mean(axis=(0, 2, 3))  # (C,) biased
            self.update_running_stats(mean, var, data.shape[0] * data.shape[2] * data.shape[3])
        else:
            mean, var = self.running_mean.data, self.running_var.data
        return BatchNorm2dFunction.apply(x, self.weight, self.bias, mean=mean, var=var,
                                         eps=self.eps, training=self.training)
        ### END SOLUTION

    def __repr__(self):
        return f"BatchNorm2d({self.num_features}, eps={self.eps}, momentum={self.momentum})"


# %% nbgrader={"grade": true, "grade_id": "test-batchnorm", "locked": true, "points": 2, "schema_version": 3, "solution": false}
from tinytorch.core.autograd import gradcheck


def test_unit_batchnorm():
    """BatchNorm2d normalises per channel, keeps running stats, and has correct gradients."""
    r = np.random.default_rng(0)
    x = (r.standard_normal((8, 3, 4, 4)) * np.array([1, 5, 0.1]).reshape(1, 3, 1, 1)
         + np.array([2, -1, 0]).reshape(1, 3, 1, 1)).astype(np.float32)
    bn = BatchNorm2d(3)
    y = assert_tensor(bn(Tensor(x)), x.shape, np.float32, name="BatchNorm2d(3)(x)")
    np.testing.assert_allclose(y.data.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.data.std(axis=(0, 2, 3)), 1, atol=1e-3)
    np.testing.assert_allclose(bn.running_mean.data, 0.1 * x.mean(axis=(0, 2, 3)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(bn.running_var.data, 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1), rtol=1e-4)
    names = [n for n, _ in bn.named_parameters()]
    assert len(bn.parameters()) == 2, f"only gamma and beta are parameters, got {names}"
    sd = bn.state_dict()
    assert any("running_mean" in k for k in sd), f"running_mean must be in state_dict, got {list(sd)}"
    bn.eval()
    ye = bn(Tensor(x))
    expected = (x - bn.running_mean.data.reshape(1, 3, 1, 1)) / np.sqrt(bn.running_var.data.reshape(1, 3, 1, 1) + 1e-5)
    np.testing.assert_allclose(ye.data, expected, rtol=1e-4, atol=1e-5)
    # gradients by central differences, training and eval mode (float64)
    xx = r.standard_normal((3, 2, 3, 3))
    g = r.standard_normal(2)
    b = r.standard_normal(2)
    for training in (True, False):
        rm, rv = r.standard_normal(2), r.uniform(0.5, 2, 2)

        def bn(x, gamma, beta):  # in training mode the statistics move with x
            mean, var = (x.data.mean(axis=(0, 2, 3)), x.data.var(axis=(0, 2, 3))) if training else (rm, rv)
            return BatchNorm2dFunction.apply(x, gamma, beta, mean=mean, var=var, eps=1e-5, training=training)
        gradcheck(bn, *(Tensor(a, dtype=np.float64) for a in (xx, g, b)))


test_unit_batchnorm()

# %% [markdown]
# ## 7. Putting it together: a small CNN trains
#
# The test below builds the milestone-4 shape in miniature (conv, batch norm, ReLU, pool,
# flatten, linear) and checks that one gradient step lowers the loss on a fixed batch.
# It uses `ReLU` (module 02), `Linear`/`Sequential` (module 03) and the loss from
# module 04: the pieces compose through autograd with nothing extra.

# %% nbgrader={"grade": true, "grade_id": "test-module", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_module():
    """A tiny CNN (Conv2d, BatchNorm2d, ReLU, MaxPool2d, AvgPool2d, Flatten, Linear) learns."""
    from tinytorch.core.activations import ReLU
    from tinytorch.core.layers import Linear, Sequential
    from tinytorch.core.losses import CrossEntropyLoss
    r = np.random.default_rng(0)
    x = Tensor(r.standard_normal((16, 3, 8, 8)).astype(np.float32))
    y = Tensor(r.integers(0, 4, 16))
    net = Sequential(Conv2d(3, 8, 3, padding=1, bias=False, seed=0), BatchNorm2d(8), ReLU(),
                     MaxPool2d(2), Conv2d(8, 8, 3, padding=1, seed=1), ReLU(), AvgPool2d(2),
                     Flatten(), Linear(8 * 2 * 2, 4, seed=2))
    loss_fn = CrossEntropyLoss()
    losses = []
    for _ in range(5):
        loss = loss_fn(net(x), y)
        losses.append(float(loss.data))
        for p in net.parameters():
            p.grad = None
        loss.backward()
        for p in net.parameters():
            assert p.grad is not None, "every parameter must receive a gradient"
            assert p.grad.data.dtype == np.float32, f"gradients must stay float32, got {p.grad.data.dtype}"
            p.data -= 0.1 * p.grad.data
    assert losses[-1] < losses[0], f"loss should fall over 5 steps, got {losses}"
    out = net(x)
    assert out.shape == (16, 4) and out.data.dtype == np.float32


test_module()

# %% [markdown]
# ## 8. Systems measurement: loops vs im2col, parameters, MACs
#
# All numbers below come from running the code you just wrote.

# %%
from tinytorch.core.layers import Linear

conv_layer = Conv2d(3, 32, 3)
dense_layer = Linear(32 * 32 * 3, 32)
conv_params = sum(p.size for p in conv_layer.parameters())
dense_params = sum(p.size for p in dense_layer.parameters())
print(f"Conv2d(3->32, k=3) parameters : {conv_params:>7,}")
print(f"Linear(3072->32) parameters   : {dense_params:>7,}   ({dense_params / conv_params:.1f}x more)")

# loop vs vectorized on the same small input, and the same check that they agree
_x = _rng.standard_normal((2, 3, 16, 16)).astype(np.float32)    # (2, 3, 16, 16)
_w = _rng.standard_normal((8, 3, 5, 5)).astype(np.float32)      # (8, 3, 5, 5)
_t0 = time.perf_counter()
_ref = conv2d_loops(_x, _w)
_t_loop = time.perf_counter() - _t0
_fn = Conv2dFunction()
_fn.forward(_x, _w)
_t0 = time.perf_counter()
for _ in range(20):
    _fast = Conv2dFunction().forward(_x, _w)
_t_vec = (time.perf_counter() - _t0) / 20
assert np.allclose(_fast, _ref, rtol=1e-4, atol=1e-4)
print(f"(2,3,16,16) * 8 filters 5x5 = {conv_macs(_x.shape, _w.shape):,} MACs: "
      f"loops {_t_loop * 1e3:.1f} ms, im2col {_t_vec * 1e3:.3f} ms -> {_t_loop / _t_vec:.0f}x faster")

# the CIFAR batch of the paper, vectorized: forward and backward
_xc = _rng.standard_normal((128, 3, 32, 32)).astype(np.float32)   # (128, 3, 32, 32)
_wc = _rng.standard_normal((32, 3, 5, 5)).astype(np.float32)      # (32, 3, 5, 5)
_t_f, _t_b = float("inf"), float("inf")
for _ in range(3):                                                  # best of 3: the first run pays for page faults
    _fn = Conv2dFunction()
    _t0 = time.perf_counter()
    _out = _fn.forward(_xc, _wc)                                    # (128, 32, 28, 28)
    _t_f = min(_t_f, time.perf_counter() - _t0)
    _t0 = time.perf_counter()
    _fn.backward(np.ones_like(_out))
    _t_b = min(_t_b, time.perf_counter() - _t0)
_cols_mb = _fn.saved[0].nbytes / 1e6
print(f"CIFAR batch (128,3,32,32) * 32 filters 5x5: {_cifar_macs / 1e6:.0f} M MACs; "
      f"im2col forward {_t_f * 1e3:.0f} ms ({_cifar_macs * 2 / _t_f / 1e9:.1f} GFLOP/s), "
      f"backward {_t_b * 1e3:.0f} ms; the loops would need about {_cifar_macs / _macs_per_s:.0f} s")
print(f"memory price of im2col: cols = {_cols_mb:.1f} MB vs input {_xc.nbytes / 1e6:.1f} MB "
      f"({_cols_mb / (_xc.nbytes / 1e6):.0f}x)")

# %% [markdown]
# ## The function forms: `F.conv2d`, `F.max_pool2d`, `F.avg_pool2d`
#
# The layers above own their weights; the functions take them as arguments, like PyTorch's
# (weight `(O, C, KH, KW)`, the same layout).

# %% nbgrader={"grade": false, "grade_id": "functional", "locked": true, "schema_version": 3, "solution": false}
#| export
#| namespace tinytorch.nn.functional conv2d max_pool2d avg_pool2d
def conv2d(x, weight, bias=None, stride: int = 1, padding=0) -> Tensor:
    w = weight if isinstance(weight, Tensor) else Tensor(weight)
    padding = _padding_arg(padding, w.shape[2:], int(stride))
    if bias is None:
        return Conv2dFunction.apply(x, w, stride=int(stride), padding=padding)
    return Conv2dFunction.apply(x, w, bias, stride=int(stride), padding=padding)


def max_pool2d(x, kernel_size=2, stride=None) -> Tensor:
    return MaxPool2d(kernel_size, stride)(x)


def avg_pool2d(x, kernel_size=2, stride=None) -> Tensor:
    return AvgPool2d(kernel_size, stride)(x)

# %% [markdown]
# ## Reflect
#
# 1. **Parameters vs compute.** `Conv2d(3->32, k=3)` has 896 parameters, the dense layer
#    98,336. But count MACs for one 32x32 image: the convolution does
#    `32*32*32*27 = 884,736`, the dense layer `3072*32 = 98,304`. Which layer is
#    "bigger"? What does that mean for memory-bound versus compute-bound hardware?
# 2. **The price of im2col.** Your measurement printed how much larger `cols` is than the
#    input. For a 3x3 kernel it is 9x. For the milestone network's second layer
#    (128 images, 32 channels, 32x32, 3x3 kernel) compute the size of `cols` in MB. When
#    would you rather do nine shifted matrix multiplies and skip the copy?
# 3. **Backward cost.** The backward pass runs two matrix products of the forward's size
#    plus `col2im`. Using your measured forward and backward times, what fraction of a
#    training step is convolution backward? Where would you optimise first (Amdahl)?
# 4. **Batch norm at test time.** Why must `eval()` switch BatchNorm to the running
#    statistics? What would happen to a test accuracy measured one image at a time with
#    batch statistics?
# 5. **Loops as oracle.** The seven-loop version is about a million times too slow to
#    train with. Why keep it? What kinds of bugs does comparing against it catch that a
#    finite-difference check of the fast version would not?
