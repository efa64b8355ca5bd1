"""Write tests/foundation/golden/foundation.npz from PyTorch (run once, when torch is installed).

    .venv/bin/python tests/foundation/make_golden_foundation.py

The fixture lets test_golden.py compare modules 02-04 (and their gradients once module 05
exists) against PyTorch on machines without torch. Stored per case: the inputs, an
upstream gradient R, the forward output and d(sum(out * R))/d(input) from torch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

OUT = Path(__file__).resolve().parent / "golden" / "foundation.npz"

ACTIVATIONS = {
    "relu": lambda x: F.relu(x),
    "sigmoid": lambda x: torch.sigmoid(x),
    "tanh": lambda x: torch.tanh(x),
    "gelu": lambda x: F.gelu(x, approximate="tanh"),
    "softmax_last": lambda x: F.softmax(x, dim=-1),
    "softmax_first": lambda x: F.softmax(x, dim=0),
    "log_softmax_last": lambda x: F.log_softmax(x, dim=-1),
}


def inputs(rng):
    plain = rng.standard_normal((4, 6)).astype(np.float32) * 3
    extreme = np.array([[-1e4, -100.0, -1.0, 0.0, 1.0, 100.0], [1e4, 1e4, -1e4, 3.0, 3.0, -3.0]],
                       dtype=np.float32)
    cube = rng.standard_normal((2, 3, 5)).astype(np.float32)
    return {"plain": plain, "extreme": extreme, "cube": cube}


def grad_of(fn, *arrays, upstream):
    ts = [torch.tensor(a, requires_grad=np.issubdtype(a.dtype, np.floating)) for a in arrays]
    out = fn(*ts)
    out.backward(torch.tensor(upstream))
    return out.detach().numpy(), [t.grad.numpy() if t.grad is not None else None for t in ts]


def main():
    rng = np.random.default_rng(1958)
    arrays = {}
    for xname, x in inputs(rng).items():
        for aname, fn in ACTIVATIONS.items():
            R = rng.standard_normal(x.shape).astype(np.float32)
            out, (gx,) = grad_of(fn, x, upstream=R)
            key = f"act__{aname}__{xname}"
            arrays.update({key + "__x": x, key + "__R": R, key + "__out": out, key + "__gx": gx})

    # losses: (name, predictions, targets)
    logits = rng.standard_normal((8, 5)).astype(np.float32) * 4
    big = np.array([[1e4, -1e4, 0.0], [0.0, 0.0, 1e4], [5.0, 5.0, 5.0]], dtype=np.float32)
    probs = rng.uniform(0.01, 0.99, size=(6, 1)).astype(np.float32)
    edge = np.array([0.0, 1.0, 0.5, 1e-9], dtype=np.float32)
    cases = {
        "mse": (lambda p, t: F.mse_loss(p, t), rng.standard_normal((5, 3)).astype(np.float32),
                rng.standard_normal((5, 3)).astype(np.float32)),
        "bce": (lambda p, t: F.binary_cross_entropy(p, t), probs,
                rng.integers(0, 2, size=(6, 1)).astype(np.float32)),
        "bce_edge": (lambda p, t: F.binary_cross_entropy(p.clamp(1e-7, 1 - 1e-7), t), edge,
                     np.array([0.0, 1.0, 1.0, 0.0], dtype=np.float32)),
        "ce": (lambda z, t: F.cross_entropy(z, t), logits, rng.integers(0, 5, size=8).astype(np.int64)),
        "ce_big": (lambda z, t: F.cross_entropy(z, t), big, np.array([1, 2, 0], dtype=np.int64)),
    }
    for name, (fn, p, t) in cases.items():
        out, (gp, _) = grad_of(fn, p, t, upstream=np.float32(1.0))
        key = f"loss__{name}"
        arrays.update({key + "__p": p, key + "__t": t, key + "__out": out, key + "__gp": gp})

    # Linear: TinyTorch stores W as (in, out); torch.nn.functional.linear wants (out, in)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    W = rng.uniform(-0.5, 0.5, size=(3, 2)).astype(np.float32)
    b = rng.uniform(-0.5, 0.5, size=(2,)).astype(np.float32)
    R = rng.standard_normal((4, 2)).astype(np.float32)
    out, (gx, gW, gb) = grad_of(lambda x_, W_, b_: F.linear(x_, W_.T, b_), x, W, b, upstream=R)
    arrays.update({"linear__x": x, "linear__W": W, "linear__b": b, "linear__R": R, "linear__out": out,
                   "linear__gx": gx, "linear__gW": gW, "linear__gb": gb})
    arrays["torch_version"] = np.array(torch.__version__)
    OUT.parent.mkdir(exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({len(arrays)} arrays, torch {torch.__version__})")


if __name__ == "__main__":
    main()
