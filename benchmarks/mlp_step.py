"""Benchmark: one training step of a 784-256-128-10 MLP at batch 128, tinytorch vs PyTorch CPU.

One step = zero_grad, forward, cross-entropy, backward, Adam step. Both frameworks run in
the same process, on the same data and the same initial weights, with the same number of
BLAS/intra-op threads, interleaved in rounds so that load from other processes hits both
alike. The median step time of each is reported, and their ratio.

Run:   python benchmarks/mlp_step.py                 (1 thread, writes benchmarks/results/mlp_step.md)
       python benchmarks/mlp_step.py --threads 2
       python benchmarks/mlp_step.py --no-write      (print only)
PyTorch is optional: without it only tinytorch is timed.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys


from tito.machine import cpu_model, set_blas_threads, write_result  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="BLAS / torch threads for both (default 1)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=10, help="interleaved rounds")
    ap.add_argument("--steps", type=int, default=20, help="steps per framework per round")
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/mlp_step.md")
    args = ap.parse_args(argv)
    set_blas_threads(args.threads)

    import time

    import numpy as np

    import tinytorch
    from tinytorch.core.tensor import Tensor
    from tinytorch.core.layers import Linear, Sequential
    from tinytorch.core.activations import ReLU
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import Adam

    try:
        import torch
    except ImportError:
        torch = None

    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((args.batch, 784)).astype(np.float32)     # (B, 784)
    y_np = rng.integers(0, 10, args.batch).astype(np.int64)               # (B,)

    model = Sequential(Linear(784, 256, seed=0), ReLU(), Linear(256, 128, seed=1), ReLU(), Linear(128, 10, seed=2))
    opt = Adam(model.parameters(), lr=1e-3)
    loss_fn = CrossEntropyLoss()
    x_t, y_t = Tensor(x_np), Tensor(y_np)

    def tt_step():
        opt.zero_grad()
        loss = loss_fn(model(x_t), y_t)
        loss.backward()
        opt.step()
        return float(loss.data)

    if torch is not None:
        torch.set_num_threads(args.threads)
        lins = [layer for layer in model.layers if isinstance(layer, Linear)]
        tmodel = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                     torch.nn.ReLU(), torch.nn.Linear(128, 10))
        with torch.no_grad():
            for tl, ol in zip([m for m in tmodel if isinstance(m, torch.nn.Linear)], lins):
                tl.weight.copy_(torch.from_numpy(ol.weight.data.T.copy()))     # ours (in, out), torch (out, in)
                tl.bias.copy_(torch.from_numpy(ol.bias.data.copy()))
        topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
        tloss_fn = torch.nn.CrossEntropyLoss()
        xt, yt = torch.from_numpy(x_np), torch.from_numpy(y_np)

        def torch_step():
            topt.zero_grad(set_to_none=True)
            loss = tloss_fn(tmodel(xt), yt)
            loss.backward()
            topt.step()
            return float(loss.item())

        # differential sanity check: same weights, same data -> same first losses
        first = [(tt_step(), torch_step()) for _ in range(3)]
        for a, b in first:
            if abs(a - b) > 1e-3 * max(1.0, abs(b)):
                print(f"WARNING: losses differ: tinytorch {a:.6f} vs torch {b:.6f}")
    else:
        first = [(tt_step(), None) for _ in range(3)]

    def timed(fn, n):
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return out

    for _ in range(5):                      # warm-up
        tt_step()
        if torch is not None:
            torch_step()
    tt_times, torch_times = [], []
    cpu0 = time.process_time()
    for _ in range(args.rounds):
        tt_times += timed(tt_step, args.steps)
        if torch is not None:
            torch_times += timed(torch_step, args.steps)
    _ = time.process_time() - cpu0

    tt_med = float(np.median(tt_times)) * 1e3
    tt_min = float(np.min(tt_times)) * 1e3
    lines = [
        f"tinytorch from {tinytorch.__file__ or list(tinytorch.__path__)}",
        f"batch {args.batch}, 784-256-128-10 MLP, Adam, cross-entropy; {args.threads} thread(s); "
        f"{args.rounds} interleaved rounds x {args.steps} steps",
        f"tinytorch: median {tt_med:.2f} ms/step, min {tt_min:.2f} ms/step",
    ]
    ratio = None
    if torch is not None:
        th_med = float(np.median(torch_times)) * 1e3
        th_min = float(np.min(torch_times)) * 1e3
        ratio = tt_med / th_med
        lines.append(f"pytorch  : median {th_med:.2f} ms/step, min {th_min:.2f} ms/step (torch {torch.__version__})")
        lines.append(f"ratio tinytorch / pytorch: median {ratio:.2f}x, min {tt_min / th_min:.2f}x (target <= 2x)")
        lines.append("first three losses (tinytorch, torch): " + ", ".join(f"({a:.5f}, {b:.5f})" for a, b in first))
    else:
        lines.append("pytorch  : not installed, not timed")
    for line in lines:
        print(line)

    if not args.no_write:
        try:
            load = " ".join(f"{v:.2f}" for v in os.getloadavg())
        except OSError:
            load = "n/a"
        now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        md = [
            "# One MLP training step: tinytorch vs PyTorch (CPU)",
            "",
            f"Written by `python benchmarks/mlp_step.py --threads {args.threads}` on {now}.",
            "",
            "| machine | value |",
            "| --- | --- |",
            f"| CPU | {cpu_model()} |",
            f"| cores | {os.cpu_count()} |",
            f"| load average (1, 5, 15 min) at the end | {load} |",
            f"| Python | {platform.python_version()} |",
            f"| NumPy | {np.__version__} |",
            f"| PyTorch | {torch.__version__ if torch is not None else 'not installed'} |",
            f"| threads (BLAS and torch) | {args.threads} |",
            "",
            "| framework | median ms/step | min ms/step |",
            "| --- | --- | --- |",
            f"| tinytorch | {tt_med:.2f} | {tt_min:.2f} |",
        ]
        if torch is not None:
            md += [f"| PyTorch | {th_med:.2f} | {th_min:.2f} |", "",
                   f"Ratio tinytorch / PyTorch: **{ratio:.2f}x** (median), {tt_min / th_min:.2f}x (min). Target: <= 2x.",
                   "", "First three losses (tinytorch, torch), same weights and data: "
                   + ", ".join(f"({a:.5f}, {b:.5f})" for a, b in first)]
        md += ["", "A load average above the core count means other jobs shared the machine and the",
               "timings include waiting; the min column is then the least disturbed step.", ""]
        print(f"wrote {write_result('mlp_step', chr(10).join(md))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
