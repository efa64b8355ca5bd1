"""Benchmark: training throughput (images/s) of the milestone-4 CNN, tinytorch vs PyTorch CPU.

The network is the one milestones/04_cnn/cnn.py trains on CIFAR-10 (5 conv3x3-BN-ReLU
blocks, 3 max-pools, one Linear; 160k parameters), imported from the milestone so the two
cannot drift. One step = forward, cross-entropy, backward, SGD (Nesterov momentum, weight
decay) update, at batch 128 on random CIFAR-shaped data. tinytorch and PyTorch run in the
same process with the same number of threads, interleaved in rounds so that load from
other processes hits both alike; medians are reported. The tinytorch step is also broken
down by layer type with a profiler-free timer (process CPU time).

Run:   python benchmarks/cnn_train.py               (1 thread, writes benchmarks/results/cnn_train.md)
       python benchmarks/cnn_train.py --threads 2
       python benchmarks/cnn_train.py --no-write
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys



from tito.machine import cpu_model, display_path, set_blas_threads, write_result  # noqa: E402


def _torch_net(torch):
    """The same network in PyTorch: the architecture of the reference CIFAR-10 baseline."""
    nn = torch.nn

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*block(3, 32), *block(32, 32), nn.MaxPool2d(2),        # (B, 32, 16, 16)
                         *block(32, 64), *block(64, 64), nn.MaxPool2d(2),       # (B, 64, 8, 8)
                         *block(64, 128), nn.MaxPool2d(2),                      # (B, 128, 4, 4)
                         nn.Flatten(), nn.Linear(128 * 4 * 4, 10))              # (B, 10)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=2, help="steps per framework per round")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    set_blas_threads(args.threads)

    import statistics
    import time

    import numpy as np

    import tinytorch
    from tinytorch.nn import CrossEntropyLoss
    from tinytorch.optim import SGD
    from tinytorch.core.training import train_epoch

    from tito.manifest import load_manifest

    ms = load_manifest().load_milestone("cnn")    # the milestone's own network
    B = args.batch
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, 3, 32, 32)).astype(np.float32)     # (B, 3, 32, 32)
    y = rng.integers(0, 10, B)

    model = ms.cifar_cnn(0)
    n_params = sum(p.size for p in model.parameters())
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)
    loss_fn = CrossEntropyLoss()

    def tiny_step():
        t0 = time.perf_counter()
        train_epoch(model, opt, loss_fn, [(x, y)], metric=None)   # module 07's step, one batch
        return time.perf_counter() - t0

    torch = None
    try:
        import torch as _torch
        torch = _torch
        torch.set_num_threads(args.threads)
        torch.manual_seed(0)
        tnet = _torch_net(torch)
        topt = torch.optim.SGD(tnet.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        tloss = torch.nn.CrossEntropyLoss()

        def torch_step():
            t0 = time.perf_counter()
            loss = tloss(tnet(tx), ty)
            topt.zero_grad()
            loss.backward()
            topt.step()
            return time.perf_counter() - t0
    except ImportError:
        pass

    tiny_step()                                   # warm-up (allocations, first-touch)
    if torch is not None:
        torch_step()
    tiny_t, torch_t = [], []
    load_before = os.getloadavg()[0]
    for _ in range(args.rounds):
        for _ in range(args.steps):
            tiny_t.append(tiny_step())
        if torch is not None:
            for _ in range(args.steps):
                torch_t.append(torch_step())
    load_after = os.getloadavg()[0]

    # CPU-time breakdown of one tinytorch step by Function class
    import tinytorch.core.spatial as sp
    from tinytorch.core import autograd as ag
    cpu = {}

    def wrap(cls, meth):
        orig = getattr(cls, meth)

        def timed(self, *a, **k):
            t0 = time.process_time()
            r = orig(self, *a, **k)
            key = f"{type(self).__name__}.{meth}"
            cpu[key] = cpu.get(key, 0.0) + time.process_time() - t0
            return r
        setattr(cls, meth, timed)
        return orig
    classes = [c for c in vars(sp).values() if isinstance(c, type) and issubclass(c, ag.Function)
               and c is not ag.Function]
    saved = [(c, m, wrap(c, m)) for c in classes for m in ("forward", "backward")]
    t_cpu0 = time.process_time()
    train_epoch(model, opt, loss_fn, [(x, y)], metric=None)
    step_cpu = time.process_time() - t_cpu0
    for c, m, orig in saved:
        setattr(c, m, orig)

    med = statistics.median
    tiny_med = med(tiny_t)
    lines = [
        "# Training throughput of the milestone-4 CNN: tinytorch vs PyTorch CPU",
        "",
        f"Network: milestones/04_cnn/cnn.py `cifar_cnn()`, {n_params:,} parameters; batch {B}, float32; "
        "one step = forward + cross-entropy + backward + SGD (Nesterov, weight decay).",
        "",
        f"- command: `python benchmarks/cnn_train.py --threads {args.threads}`",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores, threads used {args.threads}, "
        f"numpy {np.__version__}, python {platform.python_version()}",
        f"- tinytorch: {display_path(tinytorch.__file__)}",
        f"- date: {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- load average (1 min) before/after: {load_before:.1f} / {load_after:.1f} "
        f"(above ~{os.cpu_count()} the cores are shared with other jobs and wall times inflate)",
        f"- median over {args.rounds} interleaved rounds of {args.steps} steps each",
        "",
        "| framework | step (median) | images/s | vs PyTorch | CIFAR-10 epoch (390 steps) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    ref = med(torch_t) if torch_t else None
    rows = [("tinytorch (NumPy)", tiny_med)]
    if ref:
        rows.append((f"PyTorch {torch.__version__} CPU", ref))
    for name, t in rows:
        ratio = f"{t / ref:.1f}x" if ref else "n/a"
        lines.append(f"| {name} | {t * 1e3:.0f} ms | {B / t:.0f} | {ratio} | {390 * t / 60:.1f} min |")
    lines += ["", f"tinytorch CPU time of one step: {step_cpu * 1e3:.0f} ms "
              f"(wall-clock with the machine to itself would be about this at 1 thread). "
              f"Where it goes (process CPU time):", "",
              "| op | CPU ms | share |", "| --- | ---: | ---: |"]
    for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {k} | {v * 1e3:.0f} | {v / step_cpu * 100:.0f}% |")
    rest = step_cpu - sum(cpu.values())
    lines.append(f"| everything else (Linear, ReLU, loss, optimizer, graph) | {rest * 1e3:.0f} | "
                 f"{rest / step_cpu * 100:.0f}% |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        print(f"wrote {write_result('cnn_train', text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
