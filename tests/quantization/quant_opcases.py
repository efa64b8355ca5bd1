"""PyTorch references of module 15's quantization, for the golden-fixture pipeline of
tests/opcheck: ``scripts/make_golden.py`` writes each ``FIXTURES`` entry to tests/golden/<name>.npz;
tests/quantization/test_quantization.py compares tinytorch against it (and against live torch
where it is installed).

The references: torch.ao.quantization.MinMaxObserver / PerChannelMinMaxObserver (qint8, the
quant_min/quant_max of 8 and 4 bits, symmetric and affine) for the scale and zero-point, and
torch.quantize_per_tensor / torch.quantize_per_channel (int_repr, then clamped to the bits'
range) for the integers, and the .dequantize() of those integers for the floats.
"""
from __future__ import annotations

import numpy as np

# name: (shape, channel axis or None, symmetric, bits)
CONFIGS = {
    "t_sym8": ((6, 17), None, True, 8),
    "t_aff8": ((6, 17), None, False, 8),
    "t_sym4": ((5, 9), None, True, 4),
    "t_aff4": ((5, 9), None, False, 4),
    "t_relu_aff8": ((40,), None, False, 8),           # all >= 0: the zero-point is qmin
    "t_zeros_sym8": ((3, 4), None, True, 8),          # scale = eps
    "c0_sym8": ((4, 3, 3, 3), 0, True, 8),            # a conv weight, per output channel
    "c0_aff8": ((4, 3, 3, 3), 0, False, 8),
    "c1_sym8": ((20, 7), 1, True, 8),                 # a Linear weight (in, out), per output column
    "c1_aff4": ((20, 7), 1, False, 4),
    "c1_sym4": ((20, 7), 1, True, 4),
}
SEEDS = (0, 1, 2)


def inputs(name: str, seed: int) -> np.ndarray:
    """The input of one case: normal values of a random scale and offset, ties included."""
    shape, axis, _, _ = CONFIGS[name]
    rng = np.random.default_rng(1000 * seed + sorted(CONFIGS).index(name))
    if "zeros" in name:
        return np.zeros(shape, np.float32)
    x = rng.standard_normal(shape) * rng.uniform(0.05, 4.0) + rng.uniform(-1, 1)
    if axis is not None:                                 # channels of very different ranges
        scales = rng.uniform(0.01, 3.0, shape[axis]).reshape([-1 if i == axis else 1 for i in range(len(shape))])
        x = x * scales
    if "relu" in name:
        x = np.maximum(x, 0) + 0.1
    x = x.astype(np.float32)
    x.reshape(-1)[:4] = np.round(x.reshape(-1)[:4] * 8) / 8    # a few exactly representable values
    return x


def _reference():
    import torch
    from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver

    out = {}
    for name, (_shape, axis, symmetric, bits) in CONFIGS.items():
        qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        for seed in SEEDS:
            x = inputs(name, seed)
            t = torch.from_numpy(x)
            if axis is None:
                scheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
                obs = MinMaxObserver(dtype=torch.qint8, qscheme=scheme, quant_min=qmin, quant_max=qmax)
                obs(t)
                scale, zp = obs.calculate_qparams()
                qt = torch.quantize_per_tensor(t, float(scale), int(zp), torch.qint8)
            else:
                scheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
                obs = PerChannelMinMaxObserver(ch_axis=axis, dtype=torch.qint8, qscheme=scheme,
                                               quant_min=qmin, quant_max=qmax)
                obs(t)
                scale, zp = obs.calculate_qparams()
                qt = torch.quantize_per_channel(t, scale, zp, axis, torch.qint8)
            q = torch.clamp(qt.int_repr().to(torch.int32), qmin, qmax).to(torch.int8)
            if axis is None:                            # PyTorch's dequantize of the clamped integers
                deq = torch._make_per_tensor_quantized_tensor(q, float(scale), int(zp)).dequantize()
            else:
                deq = torch._make_per_channel_quantized_tensor(q, scale.to(torch.float64), zp, axis).dequantize()
            key = f"{name}.{seed}"
            out[key + ".x"] = x
            out[key + ".scale"] = scale.numpy().astype(np.float32).reshape(() if axis is None else (-1,))
            out[key + ".zero_point"] = zp.numpy().astype(np.int32).reshape(() if axis is None else (-1,))
            out[key + ".q"] = q.numpy()
            out[key + ".dequantized"] = deq.numpy().astype(np.float32)
    return out


FIXTURES = {"quant_observers": _reference}
