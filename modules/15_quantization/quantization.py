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
# # Module 15: Quantization
#
# Every weight of your trained CNN is a float32: 4 bytes, about 7 significant digits. The
# network does not need 7 digits. Store each weight as one signed byte (256 levels) plus one
# float scale per output channel, and the model is four times smaller, with accuracy that moves
# by a fraction of a point. Run the activations as bytes too, and the multiply-adds become
# integer multiply-adds, which INT8 hardware (phone NPUs, GPU tensor cores, the VNNI
# instructions of x86 CPUs) runs two to four times faster than float32 in a quarter of the
# memory traffic. In this module you build affine INT8 quantization the way PyTorch does it
# (scale and zero-point, symmetric and asymmetric, per tensor and per channel), calibrate the
# activation ranges on a few hundred images, fold BatchNorm into the convolution before it,
# and write `QuantizedLinear` and `QuantizedConv2d` whose accumulation is *exact* integer
# arithmetic. Then you quantize the trained milestone models and measure what it costs and what
# it buys, including the uncomfortable truth that in NumPy INT8 is not faster.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far                        you build now                       this unlocks
#   ------------                        -------------                       ------------
#   01 Tensor: float32 arrays    -->    quantize_tensor: x -> q, scale,  -->  20 capstone: the
#   03 Linear, Sequential        -->      zero_point (affine INT8)             size track (4x
#   09 Conv2d, BatchNorm2d,      -->    per-channel scales, calibration        smaller models)
#      im2col                           fold_batchnorm                      milestone 6: >= 4x
#   14 load_pretrained, the      -->    int_matmul: exact accumulation         smaller, accuracy
#      trained reference models         QuantizedLinear, QuantizedConv2d       within 2 points
#                                       quantize_model(model, batches)
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp optimization.quantization
#| export
import copy

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Module, Sequential
from tinytorch.core.spatial import BatchNorm2d, Conv2d, conv_output_size, im2col
from tinytorch.core.tensor import Tensor

METHODS = ("minmax", "percentile", "mse")
EPS = np.float32(np.finfo(np.float32).eps)    # the smallest scale, as PyTorch's observers use


def _array(x) -> np.ndarray:
    """A Tensor or array-like as a float32 ndarray (the data of a Tensor, not a copy)."""
    a = x.data if isinstance(x, Tensor) else np.asarray(x)
    if a.dtype != np.float32:
        a = a.astype(np.float32)
    return a


def _along(v: np.ndarray, axis, ndim: int) -> np.ndarray:
    """A per-channel vector reshaped to broadcast along ``axis`` of an ``ndim``-D array."""
    if axis is None or np.ndim(v) == 0:
        return v
    shape = [1] * ndim
    shape[axis] = -1
    return np.reshape(v, shape)


def _check_axis(x: np.ndarray, axis):
    if axis is None:
        return None
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis must be None or an int in [{-x.ndim}, {x.ndim}) for a {x.ndim}-D array, got {axis!r}")
    return int(axis) % x.ndim

# %% [markdown]
# ## 1. Affine quantization: a ruler with 256 marks
#
# Quantization maps a real interval [lo, hi] onto the integers qmin..qmax of b bits
# (b = 8: -128..127) with two numbers, a **scale** s (real units per integer step) and a
# **zero-point** z (the integer that stands for real 0):
#
# ```
#   quantize     q = clamp(round(x / s) + z, qmin, qmax)          (an int8)
#   dequantize   x_hat = s * (q - z)                               (a float again)
#
#   real axis    lo=-0.5          0                                   hi=1.5
#                 |---------------|-----------------------------------|
#   int8 axis   -128             -64                                  127
#                s = (1.5 - (-0.5)) / 255 = 0.007843,  z = -128 - round(-0.5 / s) = -64
# ```
#
# Worked numbers: x = 0.3 gives q = round(0.3 / 0.007843) + (-64) = 38 - 64 = -26, and
# dequantizes to 0.007843 x (-26 + 64) = 0.2980: an error of 0.002, at most s / 2 for any x
# inside [lo, hi]. Outside it, x is **clipped** to the nearest end (an error that can be large).
#
# Two choices of the interval (PyTorch's `MinMaxObserver` formulas, which we follow exactly):
#
# ```
#   asymmetric (affine)   lo' = min(lo, 0), hi' = max(hi, 0)
#                         s = (hi' - lo') / (qmax - qmin),  z = qmin - round(lo' / s)
#                         uses all 256 levels: right for ReLU outputs (all >= 0)
#   symmetric             a = max(-lo', hi'),  s = a / ((qmax - qmin) / 2) = a / 127.5,  z = 0
#                         real 0 is exactly integer 0: right for weights (centred on 0),
#                         and the integer products need no zero-point correction
# ```
#
# Real 0 always lies inside the interval and maps to an exact integer (z): zero padding and
# ReLU's zeros stay exactly zero after quantization. Fewer bits (6, 4) use the same formulas
# with qmin = -2^(b-1), qmax = 2^(b-1) - 1 (the values still live in an int8 array).

# %% nbgrader={"grade": false, "grade_id": "qparams", "locked": false, "schema_version": 3, "solution": true}
#| export
def qrange(bits: int = 8) -> tuple:
    """(qmin, qmax) of signed ``bits``-bit integers: (-128, 127) for 8 bits."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 8:
        raise ValueError(f"bits must be an int from 2 to 8 (the values are stored in int8), got {bits!r}")
    return -(2 ** (int(bits) - 1)), 2 ** (int(bits) - 1) - 1


def qparams_from_range(lo, hi, bits: int = 8, symmetric: bool = True) -> tuple:
    """(scale float32, zero_point int32) for the real interval [lo, hi] (scalars or per-channel
    arrays), with PyTorch's MinMaxObserver formulas: the interval is widened to contain 0, and
    the scale is at least EPS.

    EXAMPLE: qparams_from_range(-0.5, 1.5, symmetric=False) -> (0.007843138, -64)
             qparams_from_range(-0.5, 1.5, symmetric=True)  -> (0.011764706, 0)
    HINT: lo' = np.minimum(lo, 0), hi' = np.maximum(hi, 0) in float32; symmetric: the larger of
          -lo' and hi' divided by np.float32((qmax - qmin) / 2), zero-point 0; asymmetric:
          (hi' - lo') / np.float32(qmax - qmin) and z = qmin - np.round(lo' / s), clipped to
          [qmin, qmax]. np.maximum(scale, EPS) before computing z.
    """
    qmin, qmax = qrange(bits)
    lo = np.minimum(np.asarray(lo, dtype=np.float32), np.float32(0))
    hi = np.maximum(np.asarray(hi, dtype=np.float32), np.float32(0))
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError("cannot quantize a range with inf or NaN: check the values for non-finite numbers")
    ### BEGIN SOLUTION
    if symmetric:
        scale = np.maximum(-lo, hi) / np.float32((qmax - qmin) / 2)
        scale = np.maximum(scale, EPS).astype(np.float32)
        zero_point = np.zeros(scale.shape, dtype=np.int32)
    else:
        scale = (hi - lo) / np.float32(qmax - qmin)
        scale = np.maximum(scale, EPS).astype(np.float32)
        zero_point = np.clip(qmin - np.round(lo / scale), qmin, qmax).astype(np.int32)
    ### END SOLUTION
    return scale, zero_point


# %% nbgrader={"grade": true, "grade_id": "test-qparams", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_qparams():
    """The worked numbers, the widening to 0, per-channel arrays and fewer bits."""
    assert qrange(8) == (-128, 127) and qrange(4) == (-8, 7)
    s, z = qparams_from_range(-0.5, 1.5, symmetric=False)
    assert s.dtype == np.float32 and z.dtype == np.int32, (s.dtype, z.dtype)
    np.testing.assert_allclose(s, 2.0 / 255, rtol=1e-6)
    assert int(z) == -64, z
    s, z = qparams_from_range(-0.5, 1.5, symmetric=True)
    np.testing.assert_allclose(s, 1.5 / 127.5, rtol=1e-6)
    assert int(z) == 0
    s, z = qparams_from_range(0.2, 1.0, symmetric=False)          # 0 must stay inside the range
    np.testing.assert_allclose(s, 1.0 / 255, rtol=1e-6)
    assert int(z) == -128, "ReLU outputs (lo = 0) use the whole range: z = qmin"
    s, z = qparams_from_range(np.array([-1.0, -2.0]), np.array([3.0, 0.5]), bits=4, symmetric=False)
    np.testing.assert_allclose(s, [4.0 / 15, 2.5 / 15], rtol=1e-6)
    np.testing.assert_array_equal(z, [-8 - round(-1.0 / (4.0 / 15)), -8 - round(-2.0 / (2.5 / 15))])
    ### BEGIN HIDDEN TESTS
    s, z = qparams_from_range(0.0, 0.0)
    assert s == EPS and z == 0
    try:
        qrange(9)
    except ValueError:
        pass
    else:
        raise AssertionError("9 bits do not fit in int8")
    ### END HIDDEN TESTS


test_unit_qparams()

# %% [markdown]
# ## 2. Quantize and dequantize, per tensor or per channel
#
# `quantize_tensor` chooses the range of `x` (section 4 has three ways; min-max for now) and
# quantizes it. With `axis=None` one scale covers the whole tensor; with `axis=0` of a conv
# weight (O, C, KH, KW), every output channel gets its own scale and zero-point:
#
# ```
#   per tensor:   one (s, z) for all O x C x KH x KW weights
#   per channel:  s[o], z[o] for the C x KH x KW weights of output channel o
#                 x (O, C, KH, KW)  /  s.reshape(O, 1, 1, 1)  -> broadcast along axis 0
# ```
#
# Why per channel? One channel whose weights reach 2.0 sets a per-tensor step of
# 2.0 / 127.5 = 0.0157 for every channel; a neighbour whose weights stay within +-0.05 is then
# quantized with only about 6 levels (0.05 / 0.0157 = 3 each side). With its own scale it gets
# all 255. PyTorch quantizes conv and linear weights per output channel for this reason.

# %% nbgrader={"grade": false, "grade_id": "quantize", "locked": false, "schema_version": 3, "solution": true}
#| export
def quantize_with(x, scale, zero_point, axis=None, bits: int = 8) -> np.ndarray:
    """int8 q = clamp(round(x / scale) + zero_point, qmin, qmax), with per-channel ``scale`` and
    ``zero_point`` broadcast along ``axis`` (None: scalars).

    Bit for bit PyTorch's arithmetic, so that the ties (x / s = -127.5 happens at every
    symmetric minimum) round the same way: t = x * inv + z with inv = 1 / s in float32, rounded
    half-to-even (np.round, C's nearbyint). torch.quantize_per_tensor computes t with one fused
    multiply-add (one rounding: emulated exactly in float64), torch.quantize_per_channel rounds
    x * inv to float32 before adding z.

    HINT: inv = np.float32(1) / scale; per tensor t = float32(float64(x) * float64(inv) + z);
          per channel inv and z reshaped with _along(v, axis, x.ndim), t = x * inv + z in
          float32; then np.clip(np.round(t), qmin, qmax).astype(np.int8).
    """
    x = _array(x)
    axis = _check_axis(x, axis)
    qmin, qmax = qrange(bits)
    ### BEGIN SOLUTION
    inv = np.float32(1) / np.asarray(scale, dtype=np.float32)                 # 1 / s in float32
    if axis is None:            # x * inv + z with one rounding (a fused multiply-add): exact in float64
        t = (x.astype(np.float64) * np.float64(inv) + np.float64(zero_point)).astype(np.float32)
    else:                       # x * inv, rounded to float32, then + z
        t = x * _along(inv, axis, x.ndim) + _along(np.asarray(zero_point, dtype=np.float32), axis, x.ndim)
    return np.clip(np.round(t), qmin, qmax).astype(np.int8)
    ### END SOLUTION


def dequantize(q, scale, zero_point, axis=None) -> np.ndarray:
    """float32 x_hat = scale * (q - zero_point), per channel along ``axis`` (None: scalars).

    HINT: q.astype(np.int32) - z first (int8 - int32 must not wrap), then times s, in float32.
    """
    q = np.asarray(q.data if isinstance(q, Tensor) else q)
    axis = _check_axis(q, axis)
    ### BEGIN SOLUTION
    s = _along(np.asarray(scale, dtype=np.float32), axis, q.ndim)
    z = _along(np.asarray(zero_point, dtype=np.int32), axis, q.ndim)
    return ((q.astype(np.int32) - z).astype(np.float32) * s).astype(np.float32)
    ### END SOLUTION


def quantize_tensor(x, bits: int = 8, symmetric: bool = True, axis=None, method: str = "minmax",
                    percentile: float = 99.99) -> tuple:
    """(q int8, scale float32, zero_point int32) of ``x``: the range chosen by ``method``
    ("minmax", "percentile" or "mse", section 4) over the whole tensor (``axis=None``: scalar
    scale and zero-point) or per channel along ``axis`` (1-D scale and zero-point)."""
    x = _array(x)
    if x.size == 0:
        raise ValueError("cannot quantize an empty array")
    if not np.all(np.isfinite(x)):
        raise ValueError("cannot quantize an array with inf or NaN values")
    axis = _check_axis(x, axis)
    if method == "minmax":
        lo, hi = minmax_range(x, axis)
    else:                                            # section 4's methods
        lo, hi = choose_range(x, bits=bits, symmetric=symmetric, axis=axis, method=method, percentile=percentile)
    scale, zero_point = qparams_from_range(lo, hi, bits=bits, symmetric=symmetric)
    return quantize_with(x, scale, zero_point, axis=axis, bits=bits), scale, zero_point


# %% [markdown]
# Min-max first (the other methods come in section 4; `choose_range` is the one place that
# decides). The range of each channel is the min and max of its values, which is what
# PyTorch's `MinMaxObserver` and `PerChannelMinMaxObserver` record:

# %% nbgrader={"grade": false, "grade_id": "minmax", "locked": false, "schema_version": 3, "solution": true}
#| export
def _channels(x: np.ndarray, axis) -> np.ndarray:
    """x as (channels, values) with the channel axis first ((1, size) for axis=None)."""
    if axis is None:
        return x.reshape(1, -1)
    return np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)


def minmax_range(x: np.ndarray, axis=None) -> tuple:
    """(lo, hi): the min and max of x, per channel along ``axis`` (0-d arrays for axis=None)."""
    c = _channels(x, axis)                                    # (channels, values)
    ### BEGIN SOLUTION
    lo, hi = c.min(axis=1), c.max(axis=1)                     # (channels,)
    ### END SOLUTION
    return (lo[0], hi[0]) if axis is None else (lo, hi)


# %% nbgrader={"grade": true, "grade_id": "test-quantize", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_quantize_dequantize():
    """The worked example; the round-trip error is at most s/2 inside the range; clipping."""
    x = np.array([-0.5, 0.0, 0.3, 1.5, 2.0], dtype=np.float32)
    s, z = qparams_from_range(-0.5, 1.5, symmetric=False)
    q = quantize_with(x, s, z)
    assert q.dtype == np.int8 and q.shape == (5,), (q.dtype, q.shape)
    np.testing.assert_array_equal(q, [-128, -64, -26, 127, 127])     # 2.0 is clipped
    x_hat = dequantize(q, s, z)
    assert x_hat.dtype == np.float32
    np.testing.assert_allclose(x_hat[:4], np.array([-64, 0, 38, 191]) * 2 / 255, rtol=1e-6)
    assert np.abs(x_hat[:4] - x[:4]).max() <= s / 2 + 1e-7, "inside the range the error is at most s/2"
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 50)).astype(np.float32)
    for symmetric in (True, False):
        q, s, z = quantize_tensor(w, symmetric=symmetric)
        assert q.dtype == np.int8 and s.shape == () and z.dtype == np.int32
        assert np.abs(dequantize(q, s, z) - w).max() <= s / 2 + 1e-6
    q, s, z = quantize_tensor(w, bits=8, symmetric=True)
    assert q.min() >= -128 and q.max() <= 127 and int(z) == 0
    ### BEGIN HIDDEN TESTS
    q, s, z = quantize_tensor(w, bits=4, symmetric=False)
    assert q.min() >= -8 and q.max() <= 7 and q.max() - q.min() >= 14
    ### END HIDDEN TESTS


test_unit_quantize_dequantize()


# %% nbgrader={"grade": true, "grade_id": "test-per-channel", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_per_channel():
    """One scale per channel along the axis; a small channel is quantized far better."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * np.float32(0.05)
    w[0] *= 40                                                    # one channel 40x larger
    q, s, z = quantize_tensor(w, axis=0)
    assert q.shape == w.shape and s.shape == (4,) and z.shape == (4,), (s.shape, z.shape)
    lo, hi = minmax_range(w, axis=0)
    np.testing.assert_allclose(s, np.maximum(-lo, hi) / 127.5, rtol=1e-6)
    err_channel = np.abs(dequantize(q, s, z, axis=0) - w)[1:].max()
    q1, s1, z1 = quantize_tensor(w)                                # per tensor
    err_tensor = np.abs(dequantize(q1, s1, z1) - w)[1:].max()
    assert err_channel < err_tensor / 10, (err_channel, err_tensor)
    wl = np.moveaxis(w, 0, 3).copy()                              # channels last, axis=3 or -1
    q2, s2, z2 = quantize_tensor(wl, axis=-1)
    np.testing.assert_array_equal(q2, np.moveaxis(q, 0, 3))
    np.testing.assert_allclose(s2, s)
    ### BEGIN HIDDEN TESTS
    q3, s3, z3 = quantize_tensor(w, axis=0, symmetric=False)
    assert z3.shape == (4,) and np.abs(dequantize(q3, s3, z3, axis=0) - w).max() <= s3.max() / 2 + 1e-6
    ### END HIDDEN TESTS


test_unit_per_channel()

# %% [markdown]
# ## 3. Does it match PyTorch?
#
# The formulas above are PyTorch's: `torch.ao.quantization.MinMaxObserver` (per tensor) and
# `PerChannelMinMaxObserver` choose the scale and zero-point, `torch.quantize_per_tensor` and
# `torch.quantize_per_channel` round half to even and clamp. The course's tests compare
# `quantize_tensor` with them on random tensors (live where torch is installed, against fixtures
# made by `scripts/make_golden.py` otherwise: tests/quantization). The same numbers, so a model
# quantized here could be handed to PyTorch's INT8 kernels.

# %% [markdown]
# ## 4. Calibration: which range?
#
# Weights are known: their min and max are exact. Activations are not: they depend on the
# input. **Calibration** runs a few hundred representative inputs through the float model and
# records what each layer sees. Then a range must be chosen, and min-max is not always best. A
# ReLU output is mostly small with a rare large value; min-max stretches the ruler to that one
# value and spends the 256 levels on empty space:
#
# ```
#   values   |||||||||||||||||||||||. . . . . . . . . . . . . . . . . . . . .  .   |
#            0                     1.0                                            8.0 (one outlier)
#   min-max  step = 8.0 / 255 = 0.031: every typical value is rounded coarsely
#   clip at 2.0  step = 0.0078 (4x finer); the outlier is clipped to 2.0 (one big error)
# ```
#
# Three ways to choose [lo, hi]:
#
# ```
#   minmax       the extremes seen (PyTorch's MinMaxObserver): never clips, coarse steps
#   percentile   the p-th and (100-p)-th percentiles (p = 99.99): ignores the rarest values
#   mse          try clipping ratios r = 0.30, 0.31, ..., 1.00 of the min-max range and keep the
#                one whose quantize-dequantize error sum((x - x_hat)^2) is smallest: the
#                trade-off between rounding error (small steps) and clipping error, measured
# ```
#
# With `symmetric=True` the percentile applies to |x| and the MSE search scales the symmetric
# bound; per channel, each channel is searched on its own.

# %% nbgrader={"grade": false, "grade_id": "calibration", "locked": false, "schema_version": 3, "solution": true}
#| export
MSE_RATIOS = np.linspace(0.3, 1.0, 71, dtype=np.float32)     # clipping ratios the MSE search tries


def mse_range(x: np.ndarray, axis=None, bits: int = 8, symmetric: bool = True) -> tuple:
    """(lo, hi): the min-max range shrunk by the ratio r of MSE_RATIOS whose quantization error
    sum((x - dequantize(quantize(x)))^2) is smallest, per channel along ``axis``.

    HINT: c = _channels(x, axis) (channels, values); lo, hi = its min and max per channel; for
          each r: s, z = qparams_from_range(r * lo, r * hi, ...); quantize and dequantize c with
          s[:, None] and z[:, None] (clip to qrange) and sum the squared error per channel; keep,
          per channel, the r with the smallest error (the first one on a tie).
    """
    c = _channels(x, axis)                                                # (channels, values)
    qmin, qmax = qrange(bits)
    lo, hi = c.min(axis=1), c.max(axis=1)                                 # (channels,)
    ### BEGIN SOLUTION
    best_err = np.full(len(c), np.inf)
    best_r = np.ones(len(c), dtype=np.float32)
    for r in MSE_RATIOS:
        s, z = qparams_from_range(r * lo, r * hi, bits=bits, symmetric=symmetric)    # (channels,)
        q = np.clip(np.round(c / s[:, None]) + z[:, None], qmin, qmax)
        err = (((q - z[:, None]) * s[:, None] - c) ** 2).sum(axis=1)                # (channels,)
        better = err < best_err
        best_err[better], best_r[better] = err[better], r
    lo, hi = best_r * lo, best_r * hi
    ### END SOLUTION
    return (lo[0], hi[0]) if axis is None else (lo, hi)


def percentile_range(x: np.ndarray, axis=None, symmetric: bool = True, percentile: float = 99.99) -> tuple:
    """(lo, hi) at the ``percentile``-th extremes, per channel along ``axis``; symmetric: the
    percentile of |x| as the bound on both sides."""
    if not 50 < float(percentile) <= 100:
        raise ValueError(f"percentile must be in (50, 100], got {percentile!r}")
    c = _channels(x, axis)                                                # (channels, values)
    ### BEGIN SOLUTION
    if symmetric:
        hi = np.percentile(np.abs(c), percentile, axis=1).astype(np.float32)
        lo = -hi
    else:
        lo = np.percentile(c, 100 - percentile, axis=1).astype(np.float32)
        hi = np.percentile(c, percentile, axis=1).astype(np.float32)
    ### END SOLUTION
    return (lo[0], hi[0]) if axis is None else (lo, hi)


def choose_range(x, bits: int = 8, symmetric: bool = True, axis=None, method: str = "minmax",
                 percentile: float = 99.99) -> tuple:
    """(lo, hi) of x by ``method``: "minmax", "percentile" or "mse"."""
    x = _array(x)
    axis = _check_axis(x, axis)
    if method == "minmax":
        return minmax_range(x, axis)
    if method == "percentile":
        return percentile_range(x, axis, symmetric=symmetric, percentile=percentile)
    if method == "mse":
        return mse_range(x, axis, bits=bits, symmetric=symmetric)
    raise ValueError(f"unknown calibration method {method!r}: expected one of {METHODS}")


# %% nbgrader={"grade": true, "grade_id": "test-calibration", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_calibration():
    """On ReLU-like data with rare outliers, percentile clips them; the MSE search beats both."""
    rng = np.random.default_rng(2)
    x = np.maximum(rng.standard_normal(20000), 0).astype(np.float32)
    x[:3] = [12.0, 9.0, 15.0]                                        # three rare outliers
    errors = {}
    for method in METHODS:
        q, s, z = quantize_tensor(x, symmetric=False, method=method)
        errors[method] = float(((dequantize(q, s, z) - x) ** 2).sum())
    lo, hi = choose_range(x, symmetric=False, method="minmax")
    assert hi == 15.0 and lo == 0.0
    lo_p, hi_p = choose_range(x, symmetric=False, method="percentile")
    np.testing.assert_allclose(hi_p, np.percentile(x, 99.99), rtol=1e-6)
    assert hi_p < 15.0, "the 99.99th percentile of 20,000 values ignores the top two"
    assert errors["mse"] < errors["minmax"] and errors["mse"] < errors["percentile"], errors
    lo_m, hi_m = choose_range(x, symmetric=False, method="mse")
    assert 0.3 * 15 - 1e-5 <= hi_m < 15.0, hi_m
    w = rng.standard_normal((3, 100)).astype(np.float32) * np.array([[1], [5], [0.1]], np.float32)
    lo, hi = choose_range(w, axis=0, method="mse")
    assert lo.shape == (3,) and hi.shape == (3,), (lo.shape, hi.shape)
    ### BEGIN HIDDEN TESTS
    try:
        choose_range(x, method="kl")
    except ValueError as e:
        assert "kl" in str(e)
    else:
        raise AssertionError("an unknown method must raise ValueError")
    ### END HIDDEN TESTS


test_unit_calibration()

# %% [markdown]
# The three methods on the same outlier-heavy activation (measured):

# %%
rng = np.random.default_rng(0)
acts = np.maximum(rng.standard_normal(100_000), 0).astype(np.float32)   # (100000,) ReLU-like
acts[rng.integers(0, acts.size, 10)] *= 8                               # a few rare large values
for method in METHODS:
    lo, hi = choose_range(acts, symmetric=False, method=method)
    q, s, z = quantize_tensor(acts, symmetric=False, method=method)
    mse = float(((dequantize(q, s, z) - acts) ** 2).mean())
    print(f"{method:<10} range [{float(lo):.3f}, {float(hi):6.3f}]  step {float(s):.5f}  "
          f"mean squared error {mse:.3e}")

# %% [markdown]
# ## 5. Fold BatchNorm into the convolution first
#
# In eval mode BatchNorm is a fixed per-channel affine map, and a convolution is linear, so
# the two collapse into one convolution. For output channel o, with gamma, beta, the running
# mean mu and variance var:
#
# ```
#   BN(conv(x))[o] = gamma[o] * (conv(x)[o] - mu[o]) / sqrt(var[o] + eps) + beta[o]
#   k[o]  = gamma[o] / sqrt(var[o] + eps)
#   W'[o] = k[o] * W[o]                       (every weight of output channel o)
#   b'[o] = k[o] * (b[o] - mu[o]) + beta[o]   (b = 0 when the conv has no bias)
# ```
#
# Why before quantizing: quantizing W and then multiplying by k would need a separate float
# BatchNorm layer at run time, and k can be large (a channel with var = 0.01 has k = 10 gamma),
# so the *folded* weights are what must fit the int8 ruler. Per-channel scales absorb the
# different k of each channel for free. The CIFAR CNN has five Conv2d + BatchNorm2d pairs:
# folding removes five layers and 1,280 numbers, and changes no output beyond float rounding.

# %% nbgrader={"grade": false, "grade_id": "fold-bn", "locked": false, "schema_version": 3, "solution": true}
#| export
def fold_conv_bn(conv: Conv2d, bn: BatchNorm2d) -> Conv2d:
    """One Conv2d (with bias) equal to bn(conv(x)) in eval mode (computed in float64)."""
    if bn.num_features != conv.out_channels:
        raise ValueError(f"BatchNorm2d({bn.num_features}) cannot follow a Conv2d with "
                         f"{conv.out_channels} output channels")
    fused = Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                   padding=conv.padding, bias=True, seed=0)
    ### BEGIN SOLUTION
    k = bn.weight.data.astype(np.float64) / np.sqrt(bn.running_var.data.astype(np.float64) + bn.eps)   # (O,)
    b = conv.bias.data.astype(np.float64) if conv.bias is not None else 0.0
    fused.weight.data[...] = conv.weight.data * k[:, None, None, None]                                 # (O, C, KH, KW)
    fused.bias.data[...] = k * (b - bn.running_mean.data) + bn.bias.data                                # (O,)
    ### END SOLUTION
    return fused


def fold_batchnorm(model: Sequential) -> Sequential:
    """A new Sequential where every Conv2d directly followed by a BatchNorm2d is one Conv2d with
    bias (eval-mode statistics); every other layer is copied. ``model`` is not changed."""
    if not isinstance(model, Sequential):
        raise TypeError(f"fold_batchnorm expects a Sequential, got {type(model).__name__}")
    layers, i = [], 0
    while i < len(model.layers):
        layer = model.layers[i]
        nxt = model.layers[i + 1] if i + 1 < len(model.layers) else None
        if isinstance(layer, Conv2d) and isinstance(nxt, BatchNorm2d):
            layers.append(fold_conv_bn(layer, nxt))
            i += 2
        else:
            layers.append(copy.deepcopy(layer))
            i += 1
    return Sequential(*layers).eval()


# %% nbgrader={"grade": true, "grade_id": "test-fold-bn", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_fold_batchnorm():
    """The folded model computes the eval-mode output, has no BatchNorm left, leaves the input alone."""
    from tinytorch.core.activations import ReLU
    rng = np.random.default_rng(3)
    model = Sequential(Conv2d(3, 4, 3, padding=1, bias=False, seed=1), BatchNorm2d(4), ReLU(),
                       Conv2d(4, 5, 3, bias=True, seed=2), BatchNorm2d(5))
    for bn in (model.layers[1], model.layers[4]):                   # trained-looking statistics
        C = bn.num_features
        bn.weight.data[...] = rng.uniform(0.5, 2, C)
        bn.bias.data[...] = rng.standard_normal(C)
        bn.running_mean.data[...] = rng.standard_normal(C)
        bn.running_var.data[...] = rng.uniform(0.01, 3, C)
    model.eval()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    x = Tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))
    folded = fold_batchnorm(model)
    assert [type(m).__name__ for m in folded.layers] == ["Conv2d", "ReLU", "Conv2d"]
    assert folded.layers[0].bias is not None
    with no_grad():
        want, got = model(x).data, folded(x).data
    assert got.shape == (2, 5, 6, 6) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=f"fold_batchnorm changed the input model's {k}")
    ### BEGIN HIDDEN TESTS
    plain = Sequential(Conv2d(3, 2, 1, seed=0), ReLU())
    assert [type(m).__name__ for m in fold_batchnorm(plain).layers] == ["Conv2d", "ReLU"]
    ### END HIDDEN TESTS


test_unit_fold_batchnorm()

# %% [markdown]
# ## 6. Integer arithmetic, exactly
#
# A quantized layer computes y = x W + b with x = s_x (q_x - z_x) and W = s_w q_w (symmetric
# weights, per output channel j):
#
# ```
#   y[i, j] = s_x * s_w[j] * sum_k (q_x[i, k] - z_x) * q_w[k, j]  +  b[j]
#             \___________/   \______________________________/
#              one float         an integer accumulator: INT8 hardware computes this
#              per output        in int32 (VNNI, tensor cores, NPUs)
# ```
#
# The accumulator must be exact: it is the whole point. NumPy has integer matrix products,
# but look at what they do:

# %%
import time


def interleaved(fn_a, fn_b, rounds=9):
    """Median seconds of fn_a and fn_b and the median and range of their ratio b / a, the two
    timed alternately so that a busy machine slows both alike (module 19's compare, simplified)."""
    ta, tb = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn_a()
        t1 = time.perf_counter()
        fn_b()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
    ratios = np.array(tb) / np.array(ta)
    return float(np.median(ta)), float(np.median(tb)), float(np.median(ratios)), float(ratios.min()), float(ratios.max())


rng = np.random.default_rng(0)
a8 = rng.integers(-128, 128, (256, 256)).astype(np.int8)          # (256, 256) int8
b8 = rng.integers(-128, 128, (256, 256)).astype(np.int8)
exact = a8.astype(np.int64) @ b8.astype(np.int64)                 # the true accumulators
wrapped = a8 @ b8                                                  # int8 @ int8 -> int8
print(f"int8 @ int8 gives dtype {wrapped.dtype}: {np.mean(wrapped != exact):.1%} of the results are wrong "
      f"(they wrap modulo 256: {int(exact[0, 0])} came out as {int(wrapped[0, 0])}), and NumPy says nothing")
a32, b32 = a8.astype(np.int32), b8.astype(np.int32)
f32a, f32b = a8.astype(np.float32), b8.astype(np.float32)
assert np.array_equal(a32 @ b32, exact) and np.array_equal((f32a @ f32b).astype(np.int64), exact)
t_f, t_i, ratio, lo, hi = interleaved(lambda: f32a @ f32b, lambda: a32 @ b32)
print(f"int32 @ is exact here, but takes {t_i * 1e3:.1f} ms against {t_f * 1e3:.2f} ms for float32 @ on the "
      f"same 256 x 256 matrices: {ratio:.0f}x slower (9 interleaved runs: {lo:.0f}x to {hi:.0f}x). NumPy's "
      "integer matmul is a plain loop; float matmul is BLAS (and float32 is exact here too: see below)")

# %% [markdown]
# The way out: **integers are exact in floating point**, as long as they stay small. float32
# has a 24-bit significand, so every integer of magnitude at most 2^24 = 16,777,216 is
# representable, and a sum of two such integers is computed exactly whenever the true result
# is at most 2^24 in magnitude (it is representable, and IEEE rounding returns it). So
# BLAS's float32 matmul of integer-valued matrices is exact when every partial sum, in any
# order BLAS chooses, stays below 2^24. Every partial sum is a sum of some of the products,
# so it is bounded by the sum of all their magnitudes:
#
# ```
#   |partial sum| <= sum_k |a[i, k]| |b[k, j]| <= min( (sum_k |a[i, k]|) * max|b|,
#                                                     max|a| * (sum_k |b[k, j]|) )  =: bound
#   bound <= 2^24 = 16,777,216   -> float32 BLAS is exact
#   bound <= 2^53                -> float64 BLAS is exact (about 2x slower than float32)
# ```
#
# Worst case for INT8: |q_x - z_x| <= 255 and |q_w| <= 128, so each product is at most 32,640,
# and K products stay below 2^24 only for K <= 514. A 3x3 convolution over 64 channels has
# K = 576; the CIFAR CNN's classifier has K = 2,048: the worst case does not fit float32. But
# real data is far from the worst case (after ReLU most activations are zero, and few weights
# are near +-128), so `int_matmul` computes the bound from the operands, uses float32 when it
# holds and float64 otherwise, and asserts the float64 bound.

# %% nbgrader={"grade": false, "grade_id": "int-matmul", "locked": false, "schema_version": 3, "solution": true}
#| export
F32_EXACT = 2 ** 24     # every integer up to this magnitude is exact in float32
F64_EXACT = 2 ** 53     # ... in float64


def accumulation_bound(a: np.ndarray, b: np.ndarray) -> float:
    """An upper bound on |every partial sum| of a @ b for integer-valued a (..., M, K), b (K, N):
    min(max_i sum_k |a[i, k]| * max|b|, max|a| * max_j sum_k |b[k, j]|)."""
    abs_a, abs_b = np.abs(a), np.abs(b)
    ### BEGIN SOLUTION
    rows = float(abs_a.sum(axis=-1, dtype=np.float64).max()) * float(abs_b.max())
    cols = float(abs_a.max()) * float(abs_b.sum(axis=-2, dtype=np.float64).max())
    return min(rows, cols)
    ### END SOLUTION


def int_matmul(a, b) -> np.ndarray:
    """a @ b for integer-valued arrays a (..., M, K) and b (K, N) (any int or float dtype),
    EXACTLY: float32 BLAS when accumulation_bound <= 2^24, float64 BLAS otherwise (asserting
    the bound <= 2^53). Returns the accumulators as a float32 or float64 array of integers.

    HINT: bound = accumulation_bound(a, b); pick the dtype; np.matmul(a.astype(dt), b.astype(dt)).
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"Shape mismatch: {a.shape} @ {b.shape}: inner dimensions {a.shape[-1]} and "
                         f"{b.shape[-2]} differ")
    if a.size == 0 or b.size == 0:
        return np.matmul(a.astype(np.float32), b.astype(np.float32))
    ### BEGIN SOLUTION
    bound = accumulation_bound(a, b)
    if bound <= F32_EXACT:
        dt = np.float32
    else:
        assert bound <= F64_EXACT, f"integer accumulation bound {bound:.3g} exceeds 2^53: not exact in float64"
        dt = np.float64
    return np.matmul(a.astype(dt, copy=False), b.astype(dt, copy=False))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-int-matmul", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_int_matmul():
    """Exact against int64 in both regimes: small sums (float32) and worst-case INT8 (float64)."""
    rng = np.random.default_rng(4)
    a = rng.integers(-255, 256, (7, 1500)).astype(np.int16)        # zero-point shifted activations
    b = rng.integers(-128, 128, (1500, 9)).astype(np.int8)
    exact = a.astype(np.int64) @ b.astype(np.int64)
    assert accumulation_bound(a, b) > 2 ** 24                       # the worst case does not fit float32
    got = int_matmul(a, b)
    assert got.shape == (7, 9) and got.dtype == np.float64, got.dtype
    np.testing.assert_array_equal(got.astype(np.int64), exact)
    small = (a % 3).astype(np.int16)                                # sparse, small values
    got = int_matmul(small, b)
    assert got.dtype == np.float32, "a bound below 2^24 must use float32 BLAS"
    np.testing.assert_array_equal(got.astype(np.int64), small.astype(np.int64) @ b.astype(np.int64))
    big = np.full((1, 4), 2 ** 20, dtype=np.int64)
    np.testing.assert_array_equal(int_matmul(big, np.full((4, 1), 2 ** 20, np.int64)).astype(np.int64),
                                  [[2 ** 42]])
    batched = rng.integers(-255, 256, (2, 3, 1500)).astype(np.int16)
    np.testing.assert_array_equal(int_matmul(batched, b).astype(np.int64),
                                  batched.astype(np.int64) @ b.astype(np.int64))
    ### BEGIN HIDDEN TESTS
    assert accumulation_bound(np.array([[1, -2]]), np.array([[3], [4]])) == 12.0   # min(3 x 4, 2 x 7)
    ### END HIDDEN TESTS


test_unit_int_matmul()

# %% [markdown]
# ## 7. Quantized layers
#
# `QuantizedLinear` stores what a deployed INT8 layer stores, and nothing else:
#
# ```
#   state_dict key      dtype     shape            what
#   weight              int8      (in, out)        q_w, symmetric (zero-point 0: not stored)
#   weight_scale        float32   (out,) or ()     s_w per output channel (or per tensor)
#   bias                float32   (out,)           b, kept in float (a few numbers)
#   input_scale         float32   ()               s_x, from calibration
#   input_zero_point    int32     ()               z_x, from calibration
# ```
#
# Forward: quantize x with (s_x, z_x), shift by z_x (int16: -128 - 127 = -255 does not fit
# int8), accumulate exactly with `int_matmul`, then one float multiply per output:
#
# ```
#   x (B, in) float32 --quantize--> q_x int8 --minus z_x--> (B, in) int16 in [-255, 255]
#   int_matmul(q_x - z_x, q_w)  -> acc (B, out), exact integers
#   y = acc * (s_x * s_w) + b   -> (B, out) float32
# ```
#
# The **weight-only** path keeps the activations in float32 and uses the int8 weights as they
# are: x @ (q_w diag(s_w)) = (x @ q_w) diag(s_w), so the scale is applied to the output and no
# float copy of W is ever stored. It needs no calibration, and it is what language models use
# (their activations have outliers that INT8 handles badly): the Shakespeare GPT below.
# The output of each layer is float32: the next layer quantizes it again with its own
# calibrated (s_x, z_x). An INT8 engine instead *requantizes* the int32 accumulator straight to
# the next layer's int8 (one multiply and shift), fusing ReLU into the clamp.

# %% nbgrader={"grade": false, "grade_id": "quantized-linear", "locked": false, "schema_version": 3, "solution": true}
#| export
def _flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


class _QuantizedLayer(Module):
    """What QuantizedLinear and QuantizedConv2d share: the int8 weight with its scales, the bias,
    and (unless weight-only) the input's calibrated scale and zero-point, all buffers."""

    def _init_buffers(self, weight_shape, channels: int, bias, bits, per_channel, weight_only):
        self.bits = int(bits)
        qrange(self.bits)                                       # validates bits
        self.per_channel = _flag(per_channel, "per_channel")
        self.weight_only = _flag(weight_only, "weight_only")
        self.register_buffer("weight", Tensor(np.zeros(weight_shape, dtype=np.int8)))
        self.register_buffer("weight_scale", Tensor(np.ones(channels if self.per_channel else (), np.float32)))
        if _flag(bias, "bias"):
            self.register_buffer("bias", Tensor(np.zeros(channels, dtype=np.float32)))
        else:
            self.bias = None
        if not self.weight_only:
            self.register_buffer("input_scale", Tensor(np.ones((), dtype=np.float32)))
            self.register_buffer("input_zero_point", Tensor(np.zeros((), dtype=np.int32)))
        self.eval()

    def _set_from_float(self, weight: np.ndarray, bias, axis: int, input_qparams, method: str):
        """Quantize a float weight (symmetric, per channel along ``axis`` or per tensor) into the buffers."""
        q, s, _ = quantize_tensor(weight, bits=self.bits, symmetric=True,
                                  axis=axis if self.per_channel else None, method=method)
        self.weight.data[...] = q
        self.weight_scale.data[...] = s
        if self.bias is not None:
            self.bias.data[...] = bias.data
        if not self.weight_only:
            if input_qparams is None:
                raise ValueError(f"{type(self).__name__} with activations needs the input's (scale, zero_point) "
                                 "from calibration, or weight_only=True")
            self.input_scale.data[...] = input_qparams[0]
            self.input_zero_point.data[...] = input_qparams[1]

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """x float32 -> q_x - z_x as int16, exact integers in [-255, 255]."""
        q = quantize_with(x, self.input_scale.data, self.input_zero_point.data, bits=self.bits)
        return q.astype(np.int16) - self.input_zero_point.data.astype(np.int16)

    def _output_scale(self) -> np.ndarray:
        """The float factor of each output channel: s_w (weight-only) or s_x * s_w."""
        s = self.weight_scale.data
        return s if self.weight_only else (self.input_scale.data * s).astype(np.float32)


class QuantizedLinear(_QuantizedLayer):
    """Linear with int8 weights (in, out), y = x W + b computed as int8 x int8 -> exact integer
    accumulators (or, weight-only, float x int8). Build with ``QuantizedLinear.from_float``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bits: int = 8,
                 per_channel: bool = True, weight_only: bool = False):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        if self.in_features < 1 or self.out_features < 1:
            raise ValueError(f"QuantizedLinear needs positive sizes, got {in_features} x {out_features}")
        self._init_buffers((self.in_features, self.out_features), self.out_features, bias, bits,
                           per_channel, weight_only)

    @classmethod
    def from_float(cls, linear: Linear, input_qparams=None, bits: int = 8, per_channel: bool = True,
                   weight_only: bool = False, method: str = "minmax") -> "QuantizedLinear":
        """The quantized copy of ``linear``; ``input_qparams`` = (scale, zero_point) of its input."""
        layer = cls(linear.weight.shape[0], linear.weight.shape[1], bias=linear.bias is not None, bits=bits,
                    per_channel=per_channel, weight_only=weight_only)
        layer._set_from_float(linear.weight.data, linear.bias, 1, input_qparams, method)
        return layer

    def forward(self, x) -> Tensor:
        """x: Tensor (..., in) float32 -> Tensor (..., out) float32."""
        x = _array(x)
        if x.shape[-1] != self.in_features:
            raise ValueError(f"QuantizedLinear expected input (..., {self.in_features}), got {x.shape}")
        ### BEGIN SOLUTION
        if self.weight_only:
            acc = x @ self.weight.data.astype(np.float32)                    # (..., out) float
        else:
            acc = int_matmul(self.quantize_input(x), self.weight.data)       # (..., out) exact integers
        y = acc * self._output_scale()                                       # (..., out)
        if self.bias is not None:
            y = y + self.bias.data
        ### END SOLUTION
        return Tensor(y.astype(np.float32, copy=False))

    def __repr__(self):
        kind = "weight-only" if self.weight_only else "int8 activations"
        return (f"QuantizedLinear({self.in_features}, {self.out_features}, bias={self.bias is not None}, "
                f"bits={self.bits}, {'per-channel' if self.per_channel else 'per-tensor'}, {kind})")


# %% nbgrader={"grade": true, "grade_id": "test-quantized-linear", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_quantized_linear():
    """Integer forward = an int64 reference exactly; close to the float layer; weight-only too."""
    rng = np.random.default_rng(5)
    lin = Linear(20, 6, seed=0)
    x = rng.standard_normal((8, 20)).astype(np.float32)
    s_x, z_x = qparams_from_range(x.min(), x.max(), symmetric=False)
    ql = QuantizedLinear.from_float(lin, input_qparams=(s_x, z_x))
    sd = ql.state_dict()
    assert sd["weight"].dtype == np.int8 and sd["weight"].shape == (20, 6)
    assert sd["weight_scale"].shape == (6,) and sd["input_zero_point"].dtype == np.int32
    y = ql(Tensor(x))
    assert isinstance(y, Tensor) and y.shape == (8, 6) and y.dtype == np.float32, (type(y), y.dtype)
    qx = quantize_with(x, s_x, z_x).astype(np.int64) - int(z_x)
    acc = qx @ sd["weight"].astype(np.int64)                          # the int64 reference
    want = acc * (s_x * sd["weight_scale"]).astype(np.float64) + sd["bias"]
    np.testing.assert_allclose(y.data, want, rtol=1e-5, atol=1e-5)
    with no_grad():
        ref = lin(Tensor(x)).data
    assert np.abs(y.data - ref).max() < 0.02 * np.abs(ref).max(), np.abs(y.data - ref).max()
    wo = QuantizedLinear.from_float(lin, weight_only=True)
    assert "input_scale" not in wo.state_dict()
    w_hat = dequantize(wo.weight.data, wo.weight_scale.data, 0, axis=1)
    np.testing.assert_allclose(wo(Tensor(x)).data, x @ w_hat + lin.bias.data, rtol=1e-5, atol=1e-5)
    assert wo(Tensor(x[None])).shape == (1, 8, 6), "a (B, T, in) input keeps its leading axes"
    ### BEGIN HIDDEN TESTS
    pt = QuantizedLinear.from_float(lin, input_qparams=(s_x, z_x), per_channel=False)
    assert pt.weight_scale.data.shape == ()
    ### END HIDDEN TESTS


test_unit_quantized_linear()

# %% [markdown]
# `QuantizedConv2d` is the same layer on module 09's im2col columns. One subtlety is the
# padding: im2col pads with 0, and in the quantized domain real 0 is z_x, not 0. Shifting by
# z_x *before* im2col makes real zero the integer 0 again, so the padding is right for free:
#
# ```
#   x (N, C, H, W) --quantize, minus z_x--> (N, C, H, W) int16 --im2col--> cols (N, C*KH*KW, L)
#   int_matmul(q_w as (O, C*KH*KW), cols)   -> acc (N, O, L), exact integers
#   y = acc * (s_x * s_w[o]) + b[o]         -> (N, O, H_out, W_out) float32
# ```

# %% nbgrader={"grade": false, "grade_id": "quantized-conv", "locked": false, "schema_version": 3, "solution": true}
#| export
class QuantizedConv2d(_QuantizedLayer):
    """Conv2d with int8 weights (O, C, KH, KW) and exact integer accumulation on im2col columns
    (or, weight-only, float columns times int8 weights). Build with ``QuantizedConv2d.from_float``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride: int = 1, padding: int = 0,
                 bias: bool = True, bits: int = 8, per_channel: bool = True, weight_only: bool = False):
        super().__init__()
        shape = Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False, seed=0)
        self.in_channels, self.out_channels = shape.in_channels, shape.out_channels
        self.kernel_size, self.stride, self.padding = shape.kernel_size, shape.stride, shape.padding
        self._init_buffers((self.out_channels, self.in_channels) + self.kernel_size, self.out_channels,
                           bias, bits, per_channel, weight_only)

    @classmethod
    def from_float(cls, conv: Conv2d, input_qparams=None, bits: int = 8, per_channel: bool = True,
                   weight_only: bool = False, method: str = "minmax") -> "QuantizedConv2d":
        """The quantized copy of ``conv``; ``input_qparams`` = (scale, zero_point) of its input."""
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                    padding=conv.padding, bias=conv.bias is not None, bits=bits, per_channel=per_channel,
                    weight_only=weight_only)
        layer._set_from_float(conv.weight.data, conv.bias, 0, input_qparams, method)
        return layer

    def forward(self, x) -> Tensor:
        """x: Tensor (N, C, H, W) float32 -> Tensor (N, O, H_out, W_out) float32."""
        x = _array(x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"QuantizedConv2d expected input (N, {self.in_channels}, H, W), got {x.shape}")
        N, O = x.shape[0], self.out_channels
        H_out = conv_output_size(x.shape[2], self.kernel_size[0], self.stride, self.padding)
        W_out = conv_output_size(x.shape[3], self.kernel_size[1], self.stride, self.padding)
        w2 = self.weight.data.reshape(O, -1)                                     # (O, K) int8
        ### BEGIN SOLUTION
        if self.weight_only:
            cols, _ = im2col(x, self.kernel_size, self.stride, self.padding)     # (N, K, L) float32
            acc = np.matmul(w2.astype(np.float32), cols)                         # (N, O, L)
        else:
            cols, _ = im2col(self.quantize_input(x), self.kernel_size, self.stride, self.padding)  # (N, K, L)
            acc = int_matmul(w2, cols)                                           # (N, O, L) exact integers
        y = acc * _along(self._output_scale(), 1, 3)                             # (N, O, L)
        if self.bias is not None:
            y = y + self.bias.data.reshape(1, O, 1)
        ### END SOLUTION
        return Tensor(y.astype(np.float32, copy=False).reshape(N, O, H_out, W_out))

    def __repr__(self):
        kind = "weight-only" if self.weight_only else "int8 activations"
        return (f"QuantizedConv2d({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}, bits={self.bits}, "
                f"{'per-channel' if self.per_channel else 'per-tensor'}, {kind})")


# %% nbgrader={"grade": true, "grade_id": "test-quantized-conv", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_quantized_conv():
    """The integer convolution equals an int64 reference; padding stays real zero; close to float."""
    from tinytorch.core.spatial import conv2d_loops
    rng = np.random.default_rng(6)
    conv = Conv2d(3, 4, 3, stride=1, padding=1, seed=1)
    x = np.maximum(rng.standard_normal((2, 3, 6, 6)), 0).astype(np.float32) + np.float32(0.3)
    s_x, z_x = qparams_from_range(x.min(), x.max(), symmetric=False)
    assert int(z_x) == -128, "inputs >= 0.3: real 0 is still in the range, at qmin"
    qc = QuantizedConv2d.from_float(conv, input_qparams=(s_x, z_x))
    assert qc.weight.data.dtype == np.int8 and qc.weight_scale.data.shape == (4,)
    y = qc(Tensor(x))
    assert isinstance(y, Tensor) and y.shape == (2, 4, 6, 6) and y.dtype == np.float32
    qx = (quantize_with(x, s_x, z_x).astype(np.int64) - int(z_x)).astype(np.float64)
    acc = conv2d_loops(qx, qc.weight.data.astype(np.float64), padding=1)       # zero padding = real 0
    want = acc * (s_x * qc.weight_scale.data).astype(np.float64)[None, :, None, None] + conv.bias.data[None, :, None, None]
    np.testing.assert_allclose(y.data, want, rtol=1e-5, atol=1e-5)
    with no_grad():
        ref = conv(Tensor(x)).data
    assert np.abs(y.data - ref).max() < 0.03 * np.abs(ref).max()
    wo = QuantizedConv2d.from_float(conv, weight_only=True)
    w_hat = dequantize(wo.weight.data, wo.weight_scale.data, 0, axis=0)
    np.testing.assert_allclose(wo(Tensor(x)).data, conv2d_loops(x, w_hat, conv.bias.data, padding=1),
                               rtol=1e-4, atol=1e-5)
    ### BEGIN HIDDEN TESTS
    c2 = Conv2d(2, 3, (3, 2), stride=2, padding=1, bias=False, seed=2)
    x2 = rng.standard_normal((1, 2, 7, 5)).astype(np.float32)
    s2, z2 = qparams_from_range(x2.min(), x2.max(), symmetric=False)
    q2 = QuantizedConv2d.from_float(c2, input_qparams=(s2, z2))
    with no_grad():
        assert q2(Tensor(x2)).shape == c2(Tensor(x2)).shape
    ### END HIDDEN TESTS


test_unit_quantized_conv()

# %% [markdown]
# ## 8. Quantizing a whole model
#
# `quantize_model(model, calibration_batches)` puts it all together, on a copy:
#
# ```
#   1. fold every Conv2d + BatchNorm2d pair (a Sequential)           fold_batchnorm
#   2. run the calibration batches through the float copy, recording the input of every
#      Linear and Conv2d (at most 2^20 sampled values per layer, plus the exact min and max)
#   3. per layer: the input's (s_x, z_x) (asymmetric, per tensor, by ``method``) and the
#      weight's int8 values (symmetric, per output channel) -> QuantizedLinear / QuantizedConv2d
#   4. everything else (ReLU, pooling, Flatten, LayerNorm, Embedding) stays float
# ```
#
# The result is called like the float model (Tensor in, Tensor out), is in eval mode, and its
# `state_dict()` holds int8 weights: saved with module 14's `save_pretrained`, it loads back with
# `load_pretrained` (the layer types are known to its builder). Recording the inputs needs no
# hook mechanism: each Linear's `forward` is wrapped for the duration of calibration by an
# instance attribute, which Python looks up before the class's method.

# %% nbgrader={"grade": false, "grade_id": "quantize-model", "locked": false, "schema_version": 3, "solution": true}
#| export
SAMPLE_CAP = 2 ** 20     # values kept per layer for the percentile and MSE searches


def _targets(module: Module, found=None) -> list:
    """(parent, attribute name, index or None, layer) of every Linear and Conv2d inside ``module``."""
    found = [] if found is None else found
    for name, value in list(vars(module).items()):
        items = list(enumerate(value)) if isinstance(value, (list, tuple)) else [(None, value)]
        for i, item in items:
            if isinstance(item, (Linear, Conv2d)):
                found.append((module, name, i, item))
            elif isinstance(item, Module):
                _targets(item, found)
    return found


def _replace(parent: Module, name: str, index, new) -> None:
    if index is None:
        setattr(parent, name, new)
        return
    seq = getattr(parent, name)
    if isinstance(seq, tuple):
        setattr(parent, name, seq[:index] + (new,) + seq[index + 1:])
    else:
        seq[index] = new


def _batches(calibration_batches) -> list:
    """The model inputs of the calibration batches (a batch may be (x, y): x is used)."""
    out = []
    for b in calibration_batches if calibration_batches is not None else ():
        out.append(b[0] if isinstance(b, (tuple, list)) else b)
    return out


def calibrate(model: Module, calibration_batches, method: str = "minmax", bits: int = 8,
              percentile: float = 99.99, seed: int = 0) -> dict:
    """Run the batches through ``model`` (no_grad, eval) and return, for every Linear and Conv2d
    (by id), the (scale, zero_point) of its input: asymmetric, per tensor, range by ``method``."""
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}: expected one of {METHODS}")
    batches = _batches(calibration_batches)
    if not batches:
        raise ValueError("quantize_model needs calibration batches (a few hundred inputs) to choose the "
                         "activations' ranges, or weight_only=True")
    rng = np.random.default_rng(seed)
    per_batch = -(-SAMPLE_CAP // len(batches))
    seen = {}
    targets = list({id(t[3]): t for t in _targets(model)}.values())    # a shared layer once
    for _, _, _, layer in targets:
        seen[id(layer)] = {"lo": np.inf, "hi": -np.inf, "samples": []}

        def record(x, _layer=layer, _forward=layer.forward):
            a = _array(x)
            rec = seen[id(_layer)]
            rec["lo"], rec["hi"] = min(rec["lo"], float(a.min())), max(rec["hi"], float(a.max()))
            flat = a.reshape(-1)
            rec["samples"].append(flat if flat.size <= per_batch else flat[rng.integers(0, flat.size, per_batch)])
            return _forward(x)
        layer.forward = record
    model.eval()
    try:
        with no_grad():
            for x in batches:
                model(x if isinstance(x, Tensor) else Tensor(x))
    finally:
        for _, _, _, layer in targets:
            layer.__dict__.pop("forward", None)
    qparams = {}
    for key, rec in seen.items():
        if not rec["samples"]:
            continue                                   # a layer the forward pass never used
        if method == "minmax":
            lo, hi = rec["lo"], rec["hi"]
        else:
            lo, hi = choose_range(np.concatenate(rec["samples"]), bits=bits, symmetric=False, method=method,
                                  percentile=percentile)
            lo, hi = max(float(lo), rec["lo"]), min(float(hi), rec["hi"])
        qparams[key] = qparams_from_range(lo, hi, bits=bits, symmetric=False)
    return qparams


def quantize_model(model: Module, calibration_batches, *, weight_only: bool = False, per_channel: bool = True,
                   method: str = "minmax", bits: int = 8, weight_method: str = "minmax",
                   percentile: float = 99.99) -> Module:
    """A quantized copy of ``model`` (``model`` is not changed): BatchNorm folded, every Linear
    and Conv2d replaced by QuantizedLinear / QuantizedConv2d with int8 weights (symmetric, per
    output channel unless ``per_channel=False``, range by ``weight_method``) and, unless
    ``weight_only``, int8 activations calibrated on ``calibration_batches`` by ``method``.
    Same forward interface, eval mode."""
    if not isinstance(model, Module):
        raise TypeError(f"quantize_model expects a Module, got {type(model).__name__}")
    qrange(bits)
    has_bn = isinstance(model, Sequential) and any(isinstance(m, BatchNorm2d) for m in model.layers)
    qmodel = fold_batchnorm(model) if has_bn else copy.deepcopy(model)
    qmodel.eval()
    targets = _targets(qmodel)
    if not targets:
        raise ValueError(f"{type(model).__name__} has no Linear or Conv2d layer to quantize")
    ### BEGIN SOLUTION
    qparams = {} if weight_only else calibrate(qmodel, calibration_batches, method=method, bits=bits,
                                               percentile=percentile)
    for parent, name, index, layer in targets:
        cls = QuantizedConv2d if isinstance(layer, Conv2d) else QuantizedLinear
        if not weight_only and id(layer) not in qparams:
            continue                                   # never ran during calibration: keep it float
        new = cls.from_float(layer, input_qparams=qparams.get(id(layer)), bits=bits, per_channel=per_channel,
                             weight_only=weight_only, method=weight_method)
        _replace(parent, name, index, new)
    ### END SOLUTION
    qmodel.eval()
    return qmodel


def quantized_shell(model: Module, bits: int = 8, per_channel: bool = True, weight_only: bool = True) -> Module:
    """``model`` (changed in place) with every Linear and Conv2d replaced by an empty quantized
    layer of the same shape: what module 14's builder loads a quantized GPT's state into."""
    for parent, name, index, layer in _targets(model):
        if isinstance(layer, Conv2d):
            new = QuantizedConv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                                  layer.padding, layer.bias is not None, bits, per_channel, weight_only)
        else:
            new = QuantizedLinear(layer.weight.shape[0], layer.weight.shape[1], layer.bias is not None, bits,
                                  per_channel, weight_only)
        _replace(parent, name, index, new)
    return model.eval()


def quantization_config(model: Module):
    """{"bits", "per_channel", "weight_only"} shared by every quantized layer of ``model``, or
    None when it has none (what module 14's describe_model records for a quantized GPT)."""
    layers = [m for m in _modules(model) if isinstance(m, _QuantizedLayer)]
    if not layers:
        return None
    configs = {(m.bits, m.per_channel, m.weight_only) for m in layers}
    if len(configs) != 1:
        raise ValueError(f"the quantized layers differ in (bits, per_channel, weight_only): {sorted(configs)}")
    bits, per_channel, weight_only = configs.pop()
    return {"bits": bits, "per_channel": per_channel, "weight_only": weight_only}


def _modules(module: Module) -> list:
    out = [module]
    for child in module.children():
        out.extend(_modules(child))
    return out


# %% nbgrader={"grade": true, "grade_id": "test-quantize-model", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_quantize_model():
    """An MLP: int8 state, same interface, predictions close to float; the input is untouched."""
    from tinytorch.core.activations import ReLU
    rng = np.random.default_rng(7)
    mlp = Sequential(Linear(12, 16, seed=0), ReLU(), Linear(16, 4, seed=1))
    calib = [Tensor(rng.standard_normal((32, 12)).astype(np.float32)) for _ in range(4)]
    before = {k: v.copy() for k, v in mlp.state_dict().items()}
    q = quantize_model(mlp, calib)
    assert [type(m).__name__ for m in q.layers] == ["QuantizedLinear", "ReLU", "QuantizedLinear"]
    assert q.training is False
    sd = q.state_dict()
    assert sd["layers.0.weight"].dtype == np.int8 and sd["layers.2.weight"].dtype == np.int8
    assert sd["layers.0.input_scale"].dtype == np.float32 and sd["layers.2.input_zero_point"].dtype == np.int32
    x = Tensor(rng.standard_normal((50, 12)).astype(np.float32))
    with no_grad():
        ref = mlp(x).data
    out = q(x)
    assert isinstance(out, Tensor) and out.shape == (50, 4) and out.dtype == np.float32
    assert np.abs(out.data - ref).max() < 0.05 * np.abs(ref).max(), np.abs(out.data - ref).max()
    assert (out.data.argmax(1) == ref.argmax(1)).mean() >= 0.9
    all_x = np.concatenate([c.data for c in calib])
    s0, z0 = qparams_from_range(all_x.min(), all_x.max(), symmetric=False)
    np.testing.assert_allclose(sd["layers.0.input_scale"], s0)   # min-max over ALL calibration batches
    for k, v in mlp.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert "input_scale" not in quantize_model(mlp, None, weight_only=True).layers[0].state_dict()
    ### BEGIN HIDDEN TESTS
    try:
        quantize_model(mlp, [])
    except ValueError as e:
        assert "calibration" in str(e)
    else:
        raise AssertionError("static quantization without calibration batches must raise ValueError")
    ### END HIDDEN TESTS


test_unit_quantize_model()

# %% [markdown]
# ## 9. The trained MNIST MLP, quantized
#
# The real test is a trained model. Module 14 ships the milestone-3 MLP (784-256-128-10); the
# course's TinyDigits set holds 1,000 images of MNIST's test set and 4,000 of its training set.
# Calibrate on 256 training images, evaluate on the 1,000 test images, and save both models with
# `save_pretrained` to compare their files (the full 10,000-image figures are in
# benchmarks/results/quantization.md):

# %%
import os
import tempfile

from tinytorch.data.datasets import load_tinydigits
from tinytorch.models.pretrained import image_accuracy, load_pretrained, save_pretrained

(train_x, _), (test_x, test_y) = load_tinydigits()
mlp = load_pretrained("mnist_mlp")
calib = [mlp.preprocess(train_x[i:i + 64]) for i in range(0, 256, 64)]          # 4 x (64, 784)
results = {}
for label, kw in (("INT8 weights + activations", {}), ("INT8 weight-only", {"weight_only": True})):
    qmlp = quantize_model(mlp, calib, **kw)
    qmlp.preprocess, qmlp.card = mlp.preprocess, mlp.card
    results[label] = qmlp
float_acc = image_accuracy(mlp, test_x, test_y)
tmp = tempfile.mkdtemp()
card = dict(mlp.card)
preprocess_spec = {"type": "image", "mean": [0.1307], "std": [0.3081], "flatten": True}
float_file = save_pretrained(mlp, os.path.join(tmp, "mlp_float.npz"), card, preprocess_spec)
print(f"float32 MLP: {float_acc:.1%} on 1,000 MNIST test images; file {os.path.getsize(float_file):,} bytes")
for label, qmlp in results.items():
    acc = image_accuracy(qmlp, test_x, test_y)
    stored = save_pretrained(qmlp, os.path.join(tmp, "mlp_q.npz"), card, preprocess_spec)
    packed = save_pretrained(qmlp, os.path.join(tmp, "mlp_qz.npz"), card, preprocess_spec, compress=True)
    print(f"{label}: {acc:.1%} ({(acc - float_acc) * 100:+.1f} points); file {os.path.getsize(stored):,} bytes "
          f"({os.path.getsize(float_file) / os.path.getsize(stored):.2f}x smaller), deflated "
          f"{os.path.getsize(packed):,} bytes ({os.path.getsize(float_file) / os.path.getsize(packed):.2f}x)")
reloaded = load_pretrained(packed)
same = np.array_equal(reloaded(mlp.preprocess(test_x[:100])).data, qmlp(mlp.preprocess(test_x[:100])).data)
print(f"load_pretrained of the INT8 file: {type(reloaded.layers[0]).__name__}, "
      f"weights {reloaded.state_dict()['layers.0.weight'].dtype}, identical outputs: {same}")

# %% [markdown]
# Two things to notice in the sizes. Each weight now takes 1 byte instead of 4, but the file
# is a little less than 4x smaller: every array of an `.npz` carries about 280 bytes of zip and
# `.npy` headers, and the quantized model has more, smaller arrays (five per layer) plus a float
# scale per output channel. Deflating the zip (`compress=True`: the headers are mostly padding,
# and trained int8 weights are concentrated near 0, so they have fewer than 8 bits of entropy)
# takes it past 4x. Both are real bytes on disk, and both are reported.

# %% [markdown]
# ## 10. Is INT8 faster? Not in NumPy
#
# Time the float MLP against the INT8 one on the same batch, interleaved, on this machine:

# %%
qmlp = results["INT8 weights + activations"]
xb = mlp.preprocess(test_x[:256])                                              # (256, 784)
with no_grad():
    t_f, t_q, ratio, lo, hi = interleaved(lambda: mlp(xb), lambda: qmlp(xb), rounds=15)
print(f"batch of 256: float32 {t_f * 1e3:.2f} ms, INT8 {t_q * 1e3:.2f} ms: INT8 takes {ratio:.2f}x the time "
      f"of float32 (15 interleaved runs: {lo:.2f}x to {hi:.2f}x)")

# %% [markdown]
# The INT8 forward is *slower* here, and that is the honest result. NumPy has no INT8 matrix
# kernel: our "integer" product is float32 (or float64) BLAS on integer-valued data, so it does
# the same arithmetic as the float model, plus the work of quantizing the input, shifting by
# the zero-point, checking the exactness bound and scaling the output. On hardware with INT8
# instructions the picture reverses:
#
# ```
#   x86 AVX-512 VNNI   vpdpbusd: 64 int8 multiply-adds into 16 int32 per instruction,
#                      4x the float32 FMAs of the same register width
#   GPU tensor cores   INT8 at 2x the FP16 rate (e.g. 624 vs 312 TOPS on an A100)
#   phone NPUs         often INT8 only: a float model does not run on them at all
#   memory             1 byte per weight: a memory-bound layer (batch 1) reads 4x fewer bytes
# ```
#
# Even there, the speed-up only appears when the whole pipeline stays in INT8 (requantizing
# between layers instead of converting to float and back, as we do). The size, on the other
# hand, is real everywhere: the file above is 4x smaller on any machine.

# %% nbgrader={"grade": true, "grade_id": "test-module", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_module():
    """A small CNN with BatchNorm, quantized, saved and loaded: int8 on disk, same outputs."""
    from tinytorch.core.activations import ReLU
    from tinytorch.core.spatial import Flatten, MaxPool2d
    rng = np.random.default_rng(8)
    cnn = Sequential(Conv2d(1, 4, 3, padding=1, bias=False, seed=0), BatchNorm2d(4), ReLU(), MaxPool2d(2),
                     Flatten(), Linear(4 * 4 * 4, 3, seed=1))
    bn = cnn.layers[1]
    bn.running_mean.data[...] = rng.standard_normal(4) * 0.1
    bn.running_var.data[...] = rng.uniform(0.5, 2, 4)
    cnn.eval()
    calib = [Tensor(rng.standard_normal((16, 1, 8, 8)).astype(np.float32)) for _ in range(3)]
    for method in METHODS:
        q = quantize_model(cnn, calib, method=method)
        assert [type(m).__name__ for m in q.layers] == ["QuantizedConv2d", "ReLU", "MaxPool2d", "Flatten",
                                                        "QuantizedLinear"], method
        x = Tensor(rng.standard_normal((5, 1, 8, 8)).astype(np.float32))
        with no_grad():
            ref = cnn(x).data
        assert np.abs(q(x).data - ref).max() < 0.1 * np.abs(ref).max(), method
    path = os.path.join(tempfile.mkdtemp(), "cnn_int8.npz")
    card = {"dataset": "random", "split": "none", "metric": "none", "value": 0.0, "command": "test", "date": "today"}
    spec = {"type": "image", "mean": [0.5], "std": [0.25]}
    save_pretrained(q, path, card, spec, compress=True)
    with np.load(path, allow_pickle=False) as z:
        assert z["layers.0.weight"].dtype == np.int8 and z["layers.4.weight"].dtype == np.int8
    back = load_pretrained(path)
    assert type(back.layers[0]).__name__ == "QuantizedConv2d" and back.training is False
    np.testing.assert_array_equal(back(x).data, q(x).data)
    ### BEGIN HIDDEN TESTS
    assert back.layers[0].bits == 8 and back.layers[0].per_channel is True
    ### END HIDDEN TESTS


test_module()

# %% [markdown]
# ## 11. Bits against accuracy
#
# Fewer bits, coarser ruler. benchmarks/quantization.py quantizes the CIFAR-10 CNN and the MNIST
# MLP at 8, 6 and 4 bits (weights only, and weights with activations) and measures the 10,000
# test images at each width:
#
# ![test accuracy against bit width](../../benchmarks/results/quantization_bits.png)
#
# Eight bits cost a fraction of a point, six bits little more; at four bits (16 levels) the
# activations, not the weights, break first, which is why 4-bit schemes in practice quantize
# weights only (GPTQ, AWQ for language models), keep activations at 8 or 16 bits, and pack two
# 4-bit weights per byte (we store them one per int8: the file does not shrink further).

# %% [markdown]
# ## Reflect
#
# 1. A ReLU layer's calibrated range is [0, 6.0]. What are s and z for asymmetric INT8, and for
#    symmetric INT8? How many of the 256 levels does each actually use for these values, and
#    what is the largest rounding error of each?
# 2. int_matmul uses float32 when sum_k |a[i, k]| * max|b| <= 2^24. For the CIFAR CNN's
#    classifier (K = 2,048), what is the worst case of that bound with INT8 operands, and why
#    did the measured bound still fit float32 on real images most of the time? What would an
#    int32 accumulator need, and when could *it* overflow?
# 3. Per-channel weight scales cost one float per output channel. For a Linear(784, 256), how
#    many bytes is that, next to the weights? Why is per-channel quantization of *activations*
#    (one scale per input feature) much harder to use in an integer matmul?
# 4. The quantized MLP's file was a little less than 4x smaller than the float one. Count the
#    arrays of each file and estimate the header bytes. How does deflating help, and why does
#    it help the int8 file more than a float32 one?
# 5. On this machine the INT8 model was slower. List every extra operation its forward does
#    compared with float32, and estimate which one costs most for a batch of 256. On a CPU with
#    VNNI, which of them would remain?
