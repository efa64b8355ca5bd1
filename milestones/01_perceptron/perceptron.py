"""Milestone 1 (1958): Rosenblatt's Perceptron, rebuilt with your own tinytorch.

Frank Rosenblatt's perceptron learned without gradients: it looked at one example at a
time and, only when it got the example wrong, nudged its weights toward it:

    prediction  y_hat = +1 if x @ w + b > 0 else -1
    on a mistake:  w <- w + lr * y * x,   b <- b + lr * y        (y in {-1, +1})

The perceptron convergence theorem (Novikoff, 1962) promises that on linearly separable
data this stops after at most (R / gamma)^2 mistakes, where R is the largest input norm
and gamma the margin of the best separating line. This script checks that promise with
your Tensor (01), Sigmoid (02), Linear (03) and BCELoss (04): the weights live in a
Linear(2, 1) layer, the forward pass is your Linear, and the loss is printed to watch.
No autograd: the rule above is the whole learning algorithm.

Run:  python milestones/01_perceptron/perceptron.py           (5 seeds, 400 points each)
      python milestones/01_perceptron/perceptron.py --quick   (2 seeds, 100 points each)
Target: 100% training accuracy on linearly separable data, on every seed.
Only tinytorch, NumPy and the standard library are used; everything is seeded.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np

import tinytorch
from tinytorch.core import Tensor
from tinytorch.nn import BCELoss, Linear, Sigmoid
from tito.machine import cpu_model


def tinytorch_location() -> str:
    path = getattr(tinytorch, "__file__", None)
    if path:
        return path
    return ", ".join(getattr(tinytorch, "__path__", [])) or "unknown"


# ----------------------------------------------------------------------------- data
def make_separable(n: int, seed: int, margin: float = 0.1):
    """n points in [-1, 1]^2 labelled +-1 by a random line, none closer than ``margin`` to it.

    Returns X (n, 2) float32, y (n,) float32 in {-1, +1}, and the true line (w (2,), b).
    """
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi)
    w_true = np.array([np.cos(angle), np.sin(angle)])           # unit normal
    b_true = rng.uniform(-0.3, 0.3)
    xs = []
    while sum(len(c) for c in xs) < n:
        cand = rng.uniform(-1, 1, size=(2 * n, 2))               # (2n, 2)
        dist = cand @ w_true + b_true                             # signed distance to the line
        xs.append(cand[np.abs(dist) >= margin])
    X = np.concatenate(xs)[:n].astype(np.float32)                 # (n, 2)
    y = np.where(X @ w_true + b_true > 0, 1.0, -1.0).astype(np.float32)  # (n,)
    return X, y, (w_true, b_true)


# ----------------------------------------------------------------------------- model
def predict(layer: Linear, X: Tensor) -> np.ndarray:
    """Step function on the Linear output: +1 / -1 per row."""
    z = layer(X)                                                  # (N, 1)
    return np.where(z.data[:, 0] > 0, 1.0, -1.0)                  # (N,)


def accuracy(layer: Linear, X: Tensor, y: np.ndarray) -> float:
    return float((predict(layer, X) == y).mean())


def bce(layer: Linear, X: Tensor, y: np.ndarray) -> float:
    """BCE of sigmoid(z) against {0, 1} labels: a smooth score to watch (not trained on)."""
    p = Sigmoid()(layer(X))                                       # (N, 1)
    return BCELoss()(p, Tensor(((y + 1) / 2).reshape(-1, 1).astype(np.float32))).item()


def train_perceptron(layer: Linear, X: np.ndarray, y: np.ndarray, lr: float, max_epochs: int, seed: int,
                     log=None):
    """Rosenblatt's rule, one example at a time, shuffled each epoch; stops after a clean epoch.

    Returns (epochs run, total number of updates, converged?).
    """
    rng = np.random.default_rng(seed)
    Xt = Tensor(X)
    updates = 0
    for epoch in range(1, max_epochs + 1):
        mistakes = 0
        for i in rng.permutation(len(X)):
            xi = Tensor(X[i:i + 1])                               # (1, 2)
            y_hat = 1.0 if layer(xi).data[0, 0] > 0 else -1.0     # your Linear does the forward
            if y_hat != y[i]:
                layer.weight.data[:, 0] += np.float32(lr * y[i]) * X[i]    # (2,)
                layer.bias.data[0] += np.float32(lr * y[i])
                mistakes += 1
        updates += mistakes
        if log is not None:
            log(epoch, mistakes, accuracy(layer, Xt, y), bce(layer, Xt, y))
        if mistakes == 0:
            return epoch, updates, True
    return max_epochs, updates, False


def novikoff_bound(X: np.ndarray, y: np.ndarray, w_true: np.ndarray, b_true: float) -> float:
    """(R / gamma)^2 in the augmented space [x, 1], for the true separating line."""
    Xa = np.hstack([X.astype(np.float64), np.ones((len(X), 1))])  # (N, 3)
    u = np.append(w_true, b_true)
    u = u / np.linalg.norm(u)
    gamma = float(np.min(y * (Xa @ u)))
    R = float(np.max(np.linalg.norm(Xa, axis=1)))
    return (R / gamma) ** 2


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 seeds x 100 points (seconds)")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (default 5, quick 2)")
    ap.add_argument("--points", type=int, default=None, help="training points per seed (default 400, quick 100)")
    ap.add_argument("--lr", type=float, default=1.0, help="Rosenblatt's step size (default 1.0)")
    ap.add_argument("--max-epochs", type=int, default=100)
    args = ap.parse_args(argv)
    n_seeds = args.seeds or (2 if args.quick else 5)
    n_train = args.points or (100 if args.quick else 400)
    n_test = n_train // 2

    print("Milestone 1 (1958): the Perceptron, Rosenblatt's learning rule")
    print(f"tinytorch: {tinytorch_location()}")
    print(f"machine:   {cpu_model()}, numpy {np.__version__}, python {platform.python_version()}")
    print(f"data:      {n_train} train / {n_test} test points per seed in [-1, 1]^2, margin 0.1, "
          f"{n_seeds} seed(s), lr {args.lr}\n")

    rows = []
    t_all = time.perf_counter()
    for seed in range(n_seeds):
        X, y, (w_true, b_true) = make_separable(n_train + n_test, seed)
        Xtr, ytr, Xte, yte = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
        layer = Linear(2, 1, seed=seed)                            # W (2, 1), b (1,)
        # Rosenblatt started from zero weights, and the convergence bound assumes it (from
        # zero, the step size only rescales w and b: it cannot change a single prediction).
        layer.weight.data[...] = 0.0
        layer.bias.data[...] = 0.0
        Xtr_t, Xte_t = Tensor(Xtr), Tensor(Xte)
        start_acc = accuracy(layer, Xtr_t, ytr)

        log = None
        if seed == 0:
            print(f"seed 0, epoch by epoch (start: train accuracy {start_acc:.1%}, BCE {bce(layer, Xtr_t, ytr):.4f})")
            print(f"  {'epoch':>5} | {'mistakes':>8} | {'train acc':>9} | {'BCE of sigmoid(z)':>17}")

            def log(epoch, mistakes, acc, loss):
                print(f"  {epoch:>5} | {mistakes:>8} | {acc:>9.1%} | {loss:>17.4f}")

        t0 = time.perf_counter()
        epochs, updates, converged = train_perceptron(layer, Xtr, ytr, args.lr, args.max_epochs, seed, log)
        seconds = time.perf_counter() - t0
        bound = novikoff_bound(Xtr, ytr, w_true, b_true)
        rows.append(dict(seed=seed, start=start_acc, epochs=epochs, updates=updates, bound=bound,
                         train=accuracy(layer, Xtr_t, ytr), test=accuracy(layer, Xte_t, yte),
                         converged=converged, seconds=seconds,
                         w=layer.weight.data[:, 0].copy(), b=float(layer.bias.data[0])))
        if seed == 0:
            w = rows[-1]["w"]
            print(f"  learned line: {w[0]:+.3f} x1 {w[1]:+.3f} x2 {rows[-1]['b']:+.3f} = 0   "
                  f"(true normal {w_true[0]:+.3f}, {w_true[1]:+.3f}; offset {b_true:+.3f})\n")

    print("Results (train accuracy is the milestone target; the bound is Novikoff's (R/gamma)^2)")
    header = (f"{'seed':>4} | {'acc at w=0':>10} | {'epochs':>6} | {'updates':>7} | {'bound':>7} | "
              f"{'train acc':>9} | {'test acc':>8} | {'seconds':>7}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['seed']:>4} | {r['start']:>10.1%} | {r['epochs']:>6} | {r['updates']:>7} | {r['bound']:>7.0f} | "
              f"{r['train']:>9.1%} | {r['test']:>8.1%} | {r['seconds']:>7.2f}")
    ok = all(r["converged"] and r["train"] == 1.0 for r in rows)
    within = all(r["updates"] <= r["bound"] for r in rows)
    print(f"\nupdates within the convergence bound on every seed: {'yes' if within else 'NO'}")

    # The theorem's message: the cost of learning grows like 1 / margin^2. Measured on seed 0.
    margins = (0.2, 0.05, 0.01) if args.quick else (0.2, 0.1, 0.05, 0.02, 0.01, 0.005)
    print(f"\nmargin sweep (seed 0, {n_train} points): the worst-case bound grows like 1/margin^2; "
          f"the measured updates grow too, far below it")
    print(f"{'margin':>7} | {'epochs':>6} | {'updates':>7} | {'bound':>9} | {'train acc':>9}")
    for margin in margins:
        X, y, (w_true, b_true) = make_separable(n_train, 0, margin=margin)
        layer = Linear(2, 1, seed=0)
        layer.weight.data[...] = 0.0
        layer.bias.data[...] = 0.0
        epochs, updates, converged = train_perceptron(layer, X, y, args.lr, 50 * args.max_epochs, 0)
        bound = novikoff_bound(X, y, w_true, b_true)
        ok = ok and converged and updates <= bound
        print(f"{margin:>7} | {epochs:>6} | {updates:>7} | {bound:>9.0f} | {accuracy(layer, Tensor(X), y):>9.1%}")
    total = time.perf_counter() - t_all
    print(f"\ntarget (100% train accuracy on every seed and margin): {'REACHED' if ok else 'NOT reached'} "
          f"in {total:.1f} s total")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
