"""Benchmark: one training step of a 784-256-128-10 MLP at batch 128, tinytorch vs PyTorch CPU.

One step = zero_grad, forward, cross-entropy, backward, Adam step. Both frameworks run in the
same process, on the same data and the same initial weights, with the same number of
BLAS/intra-op threads. Timed with module 19's harness: compare() runs the two interleaved
(A B, B A, ...) and reports the ratio with its 95% interval and a Mann-Whitney decision;
without PyTorch, benchmark() times tinytorch alone.

Run:   python benchmarks/mlp_step.py                 (1 thread, writes benchmarks/results/mlp_step.md)
       python benchmarks/mlp_step.py --threads 2
       python benchmarks/mlp_step.py --no-write      (print only)
"""
from __future__ import annotations

import argparse
import sys

from _report import write_result  # noqa: E402

from tito.machine import set_blas_threads  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="BLAS / torch threads for both (default 1)")
    ap.add_argument("--timer", choices=("cpu", "wall"), default=None,
                    help="clock (default: cpu with 1 thread, where it equals wall time on an idle machine "
                         "and is not inflated by other programs; wall with more threads)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=41, help="interleaved rounds of compare() (>= 9)")
    ap.add_argument("--min-time", type=float, default=0.01, help="seconds per sample (loop calibration)")
    ap.add_argument("--inner", type=int, default=3, help="each sample: fastest of this many timings")
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/mlp_step.md")
    args = ap.parse_args(argv)
    set_blas_threads(args.threads)
    timer = args.timer or ("cpu" if args.threads == 1 else "wall")

    import numpy as np
    from _report import fmt_s, header, load1

    from tinytorch.benchmarking.benchmark import benchmark, compare
    from tinytorch.core.activations import ReLU
    from tinytorch.core.layers import Linear, Sequential
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import Adam
    from tinytorch.core.tensor import Tensor

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

    load0 = load1()
    first = []
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

        first = [(tt_step(), torch_step()) for _ in range(3)]   # same weights, same data: same losses
        for a, b in first:
            if abs(a - b) > 1e-3 * max(1.0, abs(b)):
                print(f"WARNING: losses differ: tinytorch {a:.6f} vs torch {b:.6f}")
        res = compare(torch_step, tt_step, names=(f"PyTorch {torch.__version__}", "tinytorch"), timer=timer,
                      rounds=args.rounds, min_time=args.min_time, inner=args.inner)
        settings = [res.settings]
        rows = [("tinytorch (NumPy)", float(np.median(res.b))), (f"PyTorch {torch.__version__} CPU", float(np.median(res.a)))]
    else:
        r = benchmark(tt_step, name="tinytorch", repeats=max(9, args.rounds), min_time=args.min_time, timer=timer)
        settings = [r.settings]
        rows = [("tinytorch (NumPy)", r.median)]

    lines = header("One MLP training step: tinytorch vs PyTorch (CPU)", "mlp_step.py", argv or sys.argv[1:],
                   load0, settings)
    lines += [f"Batch {args.batch}, 784-256-128-10 MLP, Adam, cross-entropy; {args.threads} thread(s) for both.", "",
              "| framework | median step | steps/s |", "| --- | ---: | ---: |"]
    lines += [f"| {n} | {fmt_s(t)} | {1 / t:,.0f} |" for n, t in rows]
    if torch is not None:
        lines += ["", f"Ratio tinytorch / PyTorch: **{res.ratio:.2f}x** (95% CI {res.ci[0]:.2f}-{res.ci[1]:.2f}, "
                      f"Mann-Whitney p = {res.p_value:.2g}, {'different' if res.different else 'no significant difference'}). "
                      "Target: <= 2x.",
                  "", "First three losses (tinytorch, torch), same weights and data: "
                  + ", ".join(f"({a:.5f}, {b:.5f})" for a, b in first)]
    else:
        lines += ["", "PyTorch is not installed: tinytorch alone was timed."]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        print(f"wrote {write_result('mlp_step', text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
