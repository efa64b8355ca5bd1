"""Benchmark: is module 08's DataLoader fast enough for milestone 4's CIFAR-10 budget?

Milestone 4 feeds its CNN through ``DataLoader(TensorDataset(uint8 images, labels),
batch_size=128, shuffle=True, transform=Compose([RandomCrop(32, 4), RandomHorizontalFlip(),
Normalize(mean, std)]))`` (the milestone's own ``train_transform``). This measures one batch
of that loader against one training step of the milestone's network on the same batch,
interleaved by module 19's compare() so that load from other processes hits both alike (medians). The loader
is fast enough when its share of an epoch is small.

Run:   python benchmarks/loader.py            (writes benchmarks/results/loader.md)
       python benchmarks/loader.py --no-write
"""
from __future__ import annotations

import argparse
import sys

from _report import write_result  # noqa: E402

from tito.machine import set_blas_threads  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--images", type=int, default=10_000, help="size of the synthetic uint8 dataset")
    ap.add_argument("--rounds", type=int, default=9, help="interleaved rounds of compare() (>= 9)")
    ap.add_argument("--inner", type=int, default=1, help="each sample: fastest of this many timings")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    set_blas_threads(args.threads)
    timer = "cpu" if args.threads == 1 else "wall"

    import numpy as np
    from _report import fmt_s, header, load1

    from tinytorch.benchmarking.benchmark import compare
    from tinytorch.core.training import train_epoch
    from tinytorch.nn import CrossEntropyLoss
    from tinytorch.optim import SGD
    from tinytorch.utils.data import DataLoader, TensorDataset
    from tito.milestones import load_milestone

    load0 = load1()
    ms = load_milestone("cnn")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 3, 32, 32), dtype=np.uint8)      # (N, 3, 32, 32) uint8
    y = rng.integers(0, 10, args.images)
    mean, std = np.array([0.49, 0.48, 0.45]), np.array([0.25, 0.24, 0.26])
    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch, shuffle=True, drop_last=True, seed=0,
                        transform=ms.train_transform(mean, std, seed=0))
    model = ms.cifar_cnn(0)
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)
    loss_fn = CrossEntropyLoss()

    batches = iter(loader)

    def next_batch():
        nonlocal batches
        try:
            return next(batches)
        except StopIteration:
            batches = iter(loader)
            return next(batches)

    sample = next_batch()

    def step():
        train_epoch(model, opt, loss_fn, [sample], metric=None)   # module 07's step, one batch

    res = compare(next_batch, step, names=("loader batch", "training step"), timer=timer,
                  rounds=args.rounds, inner=args.inner, loops=1)
    xb = sample[0]
    lb, st = float(np.median(res.a)), float(np.median(res.b))
    lines = header("Module 08's DataLoader on milestone 4's CIFAR-10 pipeline", "loader.py",
                   argv or sys.argv[1:], load0, [res.settings])
    lines += [
        f"One batch of {args.batch}: `TensorDataset` fetch (uint8) + the milestone's `train_transform` "
        "(RandomCrop 32 with padding 4, RandomHorizontalFlip, per-channel Normalize) + wrapping as Tensors; "
        f"against one training step of `cifar_cnn()` on that batch (output {xb.shape} {xb.dtype}).",
        "",
        "| | per batch (median) | images/s | per CIFAR-10 epoch (390 batches) |",
        "| --- | ---: | ---: | ---: |",
        f"| loader batch | {fmt_s(lb)} | {args.batch / lb:,.0f} | {390 * lb:.1f} s |",
        f"| training step | {fmt_s(st)} | {args.batch / st:,.0f} | {390 * st:.0f} s |",
        "",
        f"The loader takes {lb / (lb + st) * 100:.1f}% of a training epoch (step / loader = {res.ratio:.1f}x, "
        f"95% CI {res.ci[0]:.1f}-{res.ci[1]:.1f}): "
        + ("it is not the bottleneck, and milestone 4 uses it unchanged." if lb < 0.05 * st
           else "it is a noticeable share of the epoch."),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        print(f"wrote {write_result('loader', text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
