"""Benchmark: training throughput (images/s) of the milestone-4 CNN, tinytorch vs PyTorch CPU.

The network is the one milestones/04_cnn/cnn.py trains on CIFAR-10 (5 conv3x3-BN-ReLU
blocks, 3 max-pools, one Linear; 160k parameters), imported from the milestone so the two
cannot drift. One step = forward, cross-entropy, backward, SGD (Nesterov momentum, weight
decay) update, at batch 128 on random CIFAR-shaped data. Timed with module 19's harness:
compare() runs tinytorch and PyTorch interleaved in the same process with the same number of
threads, and tinytorch with module 09's kernels against module 18's (the kernels
`tinytorch.optimization.acceleration` installs into Conv2d, MaxPool2d and BatchNorm2d;
`accelerated(False)` switches back for the comparison). The tinytorch step is then broken
down by op with module 14's Profiler (module 18's kernels, as the package runs them).

Run:   python benchmarks/cnn_train.py               (1 thread, writes benchmarks/results/cnn_train.md)
       python benchmarks/cnn_train.py --threads 2   (writes benchmarks/results/cnn_train_2threads.md)
       python benchmarks/cnn_train.py --no-write
"""
from __future__ import annotations

import argparse
import sys

from _report import write_result  # noqa: E402

from tito.machine import set_blas_threads  # noqa: E402


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
    ap.add_argument("--timer", choices=("cpu", "wall"), default=None,
                    help="clock (default: cpu with 1 thread, where it equals wall time on an idle machine "
                         "and is not inflated by other programs; wall with more threads)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=9, help="interleaved rounds of compare() (>= 9)")
    ap.add_argument("--inner", type=int, default=1, help="each sample: fastest of this many steps")
    ap.add_argument("--repeats", type=int, default=3, help="profiler repeats for the op breakdown")
    ap.add_argument("--plain-rounds", type=int, default=9,
                    help="interleaved rounds of module 09's kernels against module 18's (0: skip)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    set_blas_threads(args.threads)
    timer = args.timer or ("cpu" if args.threads == 1 else "wall")

    import numpy as np
    from _report import fmt_s, header, load1

    from tinytorch.benchmarking.benchmark import benchmark, compare
    from tinytorch.core.training import train_epoch
    from tinytorch.nn import CrossEntropyLoss
    from tinytorch.optim import SGD
    from tinytorch.optimization.acceleration import accelerated, is_accelerated
    from tinytorch.profiling.profiler import Profiler
    from tito.milestones import load_milestone

    load0 = load1()
    ms = load_milestone("cnn")    # the milestone's own network
    B = args.batch
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, 3, 32, 32)).astype(np.float32)     # (B, 3, 32, 32)
    y = rng.integers(0, 10, B)
    model = ms.cifar_cnn(0)
    n_params = sum(p.size for p in model.parameters())
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)
    loss_fn = CrossEntropyLoss()

    def tiny_step():
        train_epoch(model, opt, loss_fn, [(x, y)], metric=None)   # module 07's step, one batch

    torch = None
    try:
        import torch as _torch
        torch = _torch
    except ImportError:
        pass
    if torch is not None:
        torch.set_num_threads(args.threads)
        torch.manual_seed(0)
        tnet = _torch_net(torch)
        topt = torch.optim.SGD(tnet.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        tloss = torch.nn.CrossEntropyLoss()

        def torch_step():
            loss = tloss(tnet(tx), ty)
            topt.zero_grad()
            loss.backward()
            topt.step()

        res = compare(torch_step, tiny_step, names=(f"PyTorch {torch.__version__}", "tinytorch"), timer=timer,
                      rounds=args.rounds, inner=args.inner, loops=1)
        settings = [res.settings]
        rows = [("tinytorch, module 18 kernels", float(np.median(res.b))),
                (f"PyTorch {torch.__version__} CPU", float(np.median(res.a)))]
    else:
        r = benchmark(tiny_step, name="tinytorch", repeats=max(9, args.rounds), loops=1, timer=timer)
        settings, rows, res = [r.settings], [("tinytorch, module 18 kernels", r.median)], None
    assert is_accelerated(), "module 18's kernels are not installed: is modules/18 exported?"
    plain = None
    if args.plain_rounds:
        def plain_step():
            with accelerated(False):
                tiny_step()
        plain = compare(tiny_step, plain_step, names=("module 18 kernels", "module 09 kernels"), timer=timer,
                        rounds=args.plain_rounds, inner=args.inner, loops=1)
        settings.append(plain.settings)
        rows.insert(1, ("tinytorch, module 09 kernels (accelerated(False))", float(np.median(plain.b))))

    prof = Profiler(model, memory=False).run(tiny_step, warmup=0, repeats=args.repeats)
    settings.append(f"op breakdown: tinytorch.profiling.Profiler, median of {args.repeats} instrumented steps")
    lines = header("Training throughput of the milestone-4 CNN: tinytorch vs PyTorch CPU", "cnn_train.py",
                   argv or sys.argv[1:], load0, settings)
    lines += [f"Network: milestones/04_cnn/cnn.py `cifar_cnn()`, {n_params:,} parameters; batch {B}, float32; "
              "one step = forward + cross-entropy + backward + SGD (Nesterov, weight decay); "
              f"{args.threads} thread(s).", "",
              "| framework | step (median) | images/s | CIFAR-10 epoch (390 steps) |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {n} | {fmt_s(t)} | {B / t:.0f} | {390 * t / 60:.1f} min |" for n, t in rows]
    if res is not None:
        lines += ["", f"tinytorch (module 18 kernels) / PyTorch: **{res.ratio:.2f}x** (95% CI {res.ci[0]:.2f}-"
                      f"{res.ci[1]:.2f}, Mann-Whitney p = {res.p_value:.2g}), {args.threads} thread(s)."]
    if plain is not None:
        lines += ["", f"module 09 kernels / module 18 kernels: **{plain.ratio:.2f}x** (95% CI {plain.ci[0]:.2f}-"
                      f"{plain.ci[1]:.2f}, p = {plain.p_value:.2g}): the speed-up of the acceleration module."]
    step = prof.step_time()["median"]
    lines += ["", f"Where the tinytorch step goes (instrumented step {fmt_s(step)}; wall and CPU time per op, "
              "median over the profiler's repeats):", "",
              "| op | phase | calls | wall | CPU | share |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    rows = prof.op_table()
    for r in rows[:10]:
        lines.append(f"| {r['op']} | {r['phase']} | {r['calls']} | {fmt_s(r['wall']['median'])} | "
                     f"{fmt_s(r['cpu']['median'])} | {r['share'] * 100:.0f}% |")
    rest = step - sum(r["wall"]["median"] for r in rows)
    lines.append(f"| everything else (graph, optimizer, Python, other ops) | | | {fmt_s(rest)} | | "
                 f"{rest / step * 100:.0f}% |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        name = "cnn_train" if args.threads == 1 else f"cnn_train_{args.threads}threads"
        print(f"wrote {write_result(name, text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
