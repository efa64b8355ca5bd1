"""Milestone 2: the 1969 XOR crisis, and its solution.

Minsky and Papert (1969) proved that a single-layer perceptron cannot compute XOR: no
straight line separates {(0,1), (1,0)} from {(0,0), (1,1)}, so at most 3 of the 4 points
can be right (75%). A hidden layer bends the input space and two layers solve it. This
script shows both with nothing but your tinytorch:

    single layer   Linear(2, 1) -> Sigmoid                        <= 75% on every seed
    two layers     Linear(2, 8) -> Tanh -> Linear(8, 1) -> Sigmoid  100% on every seed

Run:  python milestones/02_xor/xor.py            (20 seeds, a few seconds)
      python milestones/02_xor/xor.py --quick    (5 seeds)
Needs modules 01-07 (tensor, activations, layers, losses, autograd, optimizers, training).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import tinytorch
from tinytorch.core.training import evaluate, train_epoch
from tinytorch.nn import BinaryCrossEntropyLoss, Linear, Sequential, Sigmoid, Tanh
from tinytorch.optim import Adam

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)   # (4, 2)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)               # (4, 1)


def single_layer(seed: int) -> Sequential:
    return Sequential(Linear(2, 1, seed=seed), Sigmoid())


def two_layer(seed: int, hidden: int = 8) -> Sequential:
    return Sequential(Linear(2, hidden, seed=seed), Tanh(), Linear(hidden, 1, seed=seed + 1000), Sigmoid())


def train(model, steps: int, lr: float) -> dict:
    """Full-batch training on the 4 XOR points; returns final loss and accuracy."""
    loss_fn = BinaryCrossEntropyLoss()
    opt = Adam(model.parameters(), lr=lr)
    data = [(X, Y)]
    for _ in range(steps):
        train_epoch(model, opt, loss_fn, data)
    return evaluate(model, loss_fn, data)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 seeds instead of 20")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (default 20, quick 5)")
    ap.add_argument("--steps", type=int, default=400, help="full-batch Adam steps per model")
    args = ap.parse_args(argv)
    n_seeds = args.seeds or (5 if args.quick else 20)

    print(f"Milestone 2 (XOR) running tinytorch from {tinytorch.__file__}")
    print(f"{n_seeds} seeds, {args.steps} full-batch Adam steps per model\n")
    t0 = time.perf_counter()
    rows = []
    for seed in range(n_seeds):
        single = train(single_layer(seed), args.steps, lr=0.1)
        mlp = train(two_layer(seed), args.steps, lr=0.05)
        rows.append((seed, single, mlp))
    seconds = time.perf_counter() - t0

    header = f"{'seed':>4} | {'1-layer acc':>11} {'1-layer loss':>12} | {'2-layer acc':>11} {'2-layer loss':>12}"
    print(header)
    print("-" * len(header))
    for seed, s, m in rows:
        print(f"{seed:>4} | {s['accuracy']:>10.0%} {s['loss']:>12.4f} | {m['accuracy']:>10.0%} {m['loss']:>12.4f}")
    single_best = max(s["accuracy"] for _, s, _ in rows)
    mlp_worst = min(m["accuracy"] for _, _, m in rows)
    ok_single = single_best <= 0.75
    ok_mlp = mlp_worst == 1.0
    print("-" * len(header))
    print(f"single layer: best accuracy over {n_seeds} seeds {single_best:.0%} "
          f"(target <= 75%): {'PASS' if ok_single else 'FAIL'}")
    print(f"two layers  : worst accuracy over {n_seeds} seeds {mlp_worst:.0%} "
          f"(target 100% on every seed): {'PASS' if ok_mlp else 'FAIL'}")
    print(f"time {seconds:.1f} s")
    return 0 if (ok_single and ok_mlp) else 1


if __name__ == "__main__":
    sys.exit(main())
