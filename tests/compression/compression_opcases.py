"""PyTorch references of module 16 (pruning masks and the distillation loss), for the golden-
fixture pipeline of tests/opcheck: ``scripts/make_golden.py`` writes ``FIXTURES`` to
tests/golden/<name>.npz; tests/compression/test_compression.py compares tinytorch against it,
so it needs no torch (and against torch itself where torch is installed).

Weights are in PyTorch's layouts: a Linear weight is (out, in) (tinytorch's is its transpose),
a Conv2d weight (out, in, kh, kw). Values have no ties, so every mask is unambiguous.
"""
from __future__ import annotations

import numpy as np

AMOUNTS = (0.3, 0.5, 0.9)
STRUCTURED = ((0.5, 1, 0), (0.5, 2, 0), (0.34, 1, 1), (0.25, 2, 1))  # amount, norm n, dim
GLOBAL_AMOUNT = 0.6
T, ALPHA = 3.0, 0.7


def _inputs():
    rng = np.random.default_rng(16)
    lin = (rng.permutation(8 * 6) + rng.uniform(0, 0.5, 48)).reshape(8, 6).astype(np.float32) / 40 - 0.6
    conv = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    student = (rng.standard_normal((5, 7)) * 2).astype(np.float32)
    teacher = (rng.standard_normal((5, 7)) * 3).astype(np.float32)
    labels = rng.integers(0, 7, 5).astype(np.int64)
    return {"lin": lin, "conv": conv, "student": student, "teacher": teacher, "labels": labels}


def _masks() -> dict:
    import torch
    import torch.nn.functional as F
    from torch.nn.utils import prune

    x = _inputs()
    out = dict(x)

    def linear():
        m = torch.nn.Linear(6, 8)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(x["lin"]))
        return m

    def conv():
        m = torch.nn.Conv2d(4, 6, 3)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(x["conv"]))
        return m

    for a in AMOUNTS:
        for name, make in (("lin", linear), ("conv", conv)):
            m = make()
            prune.l1_unstructured(m, "weight", amount=a)
            out[f"l1.{name}.{a}"] = m.weight_mask.numpy().astype(bool)
    lm, cm = linear(), conv()
    prune.global_unstructured([(lm, "weight"), (cm, "weight")], pruning_method=prune.L1Unstructured,
                              amount=GLOBAL_AMOUNT)
    out["global.lin"], out["global.conv"] = lm.weight_mask.numpy().astype(bool), cm.weight_mask.numpy().astype(bool)
    for a, n, dim in STRUCTURED:
        m = conv()
        prune.ln_structured(m, "weight", amount=a, n=n, dim=dim)
        out[f"ln.{a}.{n}.{dim}"] = m.weight_mask.numpy().astype(bool)
    s = torch.from_numpy(x["student"]).double().requires_grad_(True)
    t = torch.from_numpy(x["teacher"]).double()
    y = torch.from_numpy(x["labels"])
    loss = (ALPHA * T * T * F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean")
            + (1 - ALPHA) * F.cross_entropy(s, y))
    loss.backward()
    out["kd.loss"] = np.array(loss.item())
    out["kd.grad"] = s.grad.numpy().copy()
    return out


FIXTURES = {"compression_masks": _masks}
