"""PyTorch references of the optimizers and schedulers (module 06), for the golden-fixture
pipeline of tests/opcheck: ``scripts/make_golden.py`` writes each ``FIXTURES`` entry to
tests/golden/<name>.npz (``--check`` says when one is stale); tests/training/test_optimizers.py
compares tinytorch against it, so it needs no torch.

For each optimizer configuration: 5 steps on a (4, 3) parameter with fixed gradients; the
parameter after every step is stored. Scheduler learning rates are stored too.
"""
from __future__ import annotations

import numpy as np

# name: (the class, in torch.optim and in tinytorch.core.optimizers alike; its arguments)
CONFIGS = {
    "sgd": ("SGD", dict(lr=0.1)),
    "sgd_momentum": ("SGD", dict(lr=0.1, momentum=0.9)),
    "sgd_nesterov_wd": ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    "sgd_wd": ("SGD", dict(lr=0.1, weight_decay=0.1)),
    "adam": ("Adam", dict(lr=0.01)),
    "adam_wd_betas": ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    "adamw": ("AdamW", dict(lr=0.01)),
    "adamw_wd": ("AdamW", dict(lr=0.03, weight_decay=0.2)),
}
STEPS = 5


def _inputs():
    rng = np.random.default_rng(1234)
    p0 = rng.standard_normal((4, 3)).astype(np.float32)
    grads = rng.standard_normal((STEPS, 4, 3)).astype(np.float32) * np.float32(3.0)
    return p0, grads


def _trajectories() -> dict:
    import torch

    p0, grads = _inputs()
    out = {"p0": p0, "grads": grads}
    for key, (cls, kw) in CONFIGS.items():
        p = torch.nn.Parameter(torch.from_numpy(p0.copy()))
        opt = getattr(torch.optim, cls)([p], **kw)
        traj = []
        for g in grads:
            p.grad = torch.from_numpy(g.copy())
            opt.step()
            traj.append(p.detach().numpy().copy())
        out[f"traj.{key}"] = np.stack(traj)

    def lrs(make, n):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=0.5)
        sched = make(opt)
        vals = [opt.param_groups[0]["lr"]]
        for _ in range(n):
            opt.step()
            sched.step()
            vals.append(opt.param_groups[0]["lr"])
        return np.array(vals, dtype=np.float64)

    out["lr.step"] = lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5), 10)
    out["lr.cosine"] = lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=8, eta_min=0.01), 8)
    out["lr.onecycle"] = lrs(lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=20,
                                                                          cycle_momentum=False), 19)
    return out


FIXTURES = {"optim_trajectories": _trajectories}
