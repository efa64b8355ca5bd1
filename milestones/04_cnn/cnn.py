"""Milestone 4 (1998): the CNN revolution, rebuilt with your own tinytorch.

Part 1: an MLP and a CNN trained the same way on the same TinyDigits split: which sees
        digits better, and with how many parameters?
Part 2: a 160k-parameter CNN (Conv2d + BatchNorm2d + ReLU + MaxPool2d, flips and crops,
        SGD with Nesterov momentum and a one-cycle learning rate) on the real CIFAR-10:
        50,000 training and 10,000 test images. Target: test accuracy >= 75%.

Run:  python milestones/04_cnn/cnn.py             (full: TinyDigits, then CIFAR-10, ~1 h on 2 cores)
      python milestones/04_cnn/cnn.py --quick     (a few minutes: TinyDigits + a CIFAR-10 slice)
      python milestones/04_cnn/cnn.py --save cnn.npz   (save the CIFAR model: cnn.npz + cnn.json card)
CIFAR-10 comes from load_cifar10(root=...): --cifar-root DIR, else $TINYTORCH_DATA.
Only tinytorch, NumPy and the standard library are used; everything is seeded.
"""
import argparse
import os
import platform
import sys
import time


def _threads_from_argv(argv):
    """--threads N must act before NumPy loads its BLAS, so it is read here, first."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return None


from tito.machine import cpu_model, set_blas_threads  # noqa: E402

_THREADS = _threads_from_argv(sys.argv[1:])
if _THREADS:
    set_blas_threads(int(_THREADS))

import numpy as np

import tinytorch
from tinytorch.core.training import evaluate, train_epoch
from tinytorch.data.datasets import DatasetError, load_cifar10, load_tinydigits
from tinytorch.nn import BatchNorm2d, Conv2d, CrossEntropyLoss, Flatten, Linear, MaxPool2d, ReLU, Sequential
from tinytorch.optim import SGD, Adam
from tinytorch.optim.lr_scheduler import OneCycleLR
from tinytorch.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip
from tinytorch.utils.data import DataLoader, TensorDataset


def n_params(model):
    return sum(p.size for p in model.parameters())


def test_accuracy(model, loader):
    """Module 07's evaluate (eval mode, no graph) on a test loader: the accuracy."""
    return evaluate(model, CrossEntropyLoss(), loader)["accuracy"]


# ----------------------------------------------------------------------------- part 1
def as_images(x):
    """TinyDigits as float32 (N, 1, S, S) in [0, 1], whatever layout the loader returns."""
    x = np.asarray(x)
    if x.ndim == 2:                              # (N, S*S)
        s = int(round(np.sqrt(x.shape[1])))
        x = x.reshape(-1, s, s)
    if x.ndim == 3:                              # (N, S, S)
        x = x[:, None]
    x = x.astype(np.float32)
    return x / 255.0 if x.max() > 1.5 else x


def part1_digits(epochs, seed=0):
    (xtr, ytr), (xte, yte) = load_tinydigits()
    xtr, xte = as_images(xtr), as_images(xte)   # (N, 1, S, S)
    ytr, yte = np.asarray(ytr).astype(np.int64), np.asarray(yte).astype(np.int64)
    S = xtr.shape[-1]
    print(f"TinyDigits: {len(xtr)} train / {len(xte)} test images of {S}x{S}")

    mlp = Sequential(Flatten(), Linear(S * S, 128, seed=seed), ReLU(), Linear(128, 10, seed=seed + 1))
    s2 = (S // 2) // 2
    cnn = Sequential(Conv2d(1, 16, 3, padding=1, bias=False, seed=seed), BatchNorm2d(16), ReLU(), MaxPool2d(2),
                     Conv2d(16, 32, 3, padding=1, bias=False, seed=seed + 1), BatchNorm2d(32), ReLU(), MaxPool2d(2),
                     Flatten(), Linear(32 * s2 * s2, 10, seed=seed + 2))
    test = DataLoader(TensorDataset(xte, yte), batch_size=500)
    rows = []
    for name, model in [("MLP", mlp), ("CNN", cnn)]:
        train = DataLoader(TensorDataset(xtr, ytr), batch_size=64, shuffle=True, seed=seed)
        opt = Adam(model.parameters(), lr=2e-3)
        loss_fn = CrossEntropyLoss()
        t0 = time.perf_counter()
        for ep in range(epochs):
            train_epoch(model, opt, loss_fn, train, metric=None)
        secs = time.perf_counter() - t0
        acc = test_accuracy(model, test)
        rows.append((name, n_params(model), epochs, acc, secs))
        print(f"  {name}: test accuracy {acc * 100:.2f}% after {epochs} epochs ({secs:.1f} s)", flush=True)
    return rows


# ----------------------------------------------------------------------------- part 2
def cifar_cnn(seed=0):
    """The milestone network: 5 conv blocks (conv 3x3, BN, ReLU), 3 max-pools, one Linear. 160k params."""
    def block(cin, cout, s):
        return [Conv2d(cin, cout, 3, padding=1, bias=False, seed=s), BatchNorm2d(cout), ReLU()]
    return Sequential(*block(3, 32, seed), *block(32, 32, seed + 1), MaxPool2d(2),      # (B, 32, 16, 16)
                      *block(32, 64, seed + 2), *block(64, 64, seed + 3), MaxPool2d(2),  # (B, 64, 8, 8)
                      *block(64, 128, seed + 4), MaxPool2d(2),                           # (B, 128, 4, 4)
                      Flatten(), Linear(128 * 4 * 4, 10, seed=seed + 5))                 # (B, 10)


def train_transform(mean, std, seed=0):
    """Module 08's batch transforms, torchvision's CIFAR recipe: a random 32x32 crop of each
    4-padded image, a random horizontal flip per image, then per-channel normalization."""
    return Compose([RandomCrop(32, padding=4, seed=seed), RandomHorizontalFlip(0.5, seed=seed + 1),
                    Normalize(mean, std)])


def part2_cifar(root, epochs, n_train=None, n_test=None, batch=128, save=None, seed=0, log=None, max_lr=0.1):
    log = log or (lambda *a: print(*a, flush=True))
    (xtr, ytr), (xte, yte) = load_cifar10(root=root)
    xtr = np.asarray(xtr).reshape(-1, 3, 32, 32)
    xte = np.asarray(xte).reshape(-1, 3, 32, 32)
    ytr, yte = np.asarray(ytr).astype(np.int64), np.asarray(yte).astype(np.int64)
    if n_train:
        xtr, ytr = xtr[:n_train], ytr[:n_train]
    if n_test:
        xte, yte = xte[:n_test], yte[:n_test]
    # per-channel statistics in [0, 1] units, one channel at a time (a float64 copy of the whole
    # set would need 1.2 GB)
    mean = np.array([xtr[:, c].mean(dtype=np.float64) for c in range(3)]) / 255          # (3,)
    std = np.array([xtr[:, c].astype(np.float32).std(dtype=np.float64) for c in range(3)]) / 255  # (3,)
    train = DataLoader(TensorDataset(xtr, ytr), batch_size=batch, shuffle=True, drop_last=True, seed=seed,
                       transform=train_transform(mean, std, seed))   # uint8 in, float32 (B, 3, 32, 32) out
    test = DataLoader(TensorDataset(xte, yte), batch_size=500, transform=Normalize(mean, std))
    log(f"CIFAR-10: {len(xtr)} train / {len(xte)} test images, batch {batch}, {epochs} epochs, "
        f"SGD Nesterov + one-cycle to lr {max_lr}")

    model = cifar_cnn(seed)
    log(f"model: {n_params(model):,} parameters")
    steps_per_epoch = len(train)
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sched = OneCycleLR(opt, max_lr=max_lr, total_steps=epochs * steps_per_epoch)
    loss_fn = CrossEntropyLoss()
    history = []
    t_start = time.perf_counter()
    for ep in range(epochs):
        t0 = time.perf_counter()
        losses = []

        def progress(i, loss):
            losses.append(loss)
            if (i + 1) % 50 == 0:
                el = time.perf_counter() - t0
                log(f"  epoch {ep + 1} step {i + 1}/{steps_per_epoch} loss {np.mean(losses[-50:]):.3f} "
                    f"{(i + 1) * batch / el:.0f} img/s")

        stats = train_epoch(model, opt, loss_fn, train, metric=None, scheduler=sched, on_batch=progress)
        t_train = time.perf_counter() - t0
        acc = test_accuracy(model, test)
        history.append((ep + 1, stats["loss"], acc, t_train, time.perf_counter() - t_start))
        log(f"epoch {ep + 1}: train loss {stats['loss']:.3f}  test acc {acc * 100:.2f}%  "
            f"epoch {t_train:.0f} s ({steps_per_epoch * batch / t_train:.0f} img/s)  "
            f"total {time.perf_counter() - t_start:.0f} s  load average {os.getloadavg()[0]:.1f}")
    if save:
        trained = (f"{epochs} epochs on {len(xtr):,} images, batch {batch}, one-cycle to lr {max_lr}, "
                   f"seed {seed}, {time.perf_counter() - t_start:.0f} s")
        log(f"saved the model and its card to {save_card(model, save, xte, yte, mean, std, trained)}")
    return history, n_params(model)


def time_to(history, target):
    """The line saying when the test accuracy first reached ``target`` (it is measured after
    every epoch, so the time is that epoch's end), from part2_cifar's history."""
    train_s = 0.0
    for ep, _, acc, t_train, total in history:
        train_s += t_train
        if acc >= target:
            return (f"time to {target:.0%}: {total:.0f} s (epoch {ep}, {acc * 100:.2f}%; {train_s:.0f} s of it "
                    f"training, the rest evaluating the test set after each epoch)")
    return f"time to {target:.0%}: not reached in {len(history)} epoch(s) (best {max(h[2] for h in history) * 100:.2f}%)"


def save_card(model, path, xte, yte, mean, std, trained, subset=1000, command=None):
    """save_pretrained: the weights and a card whose test accuracy is measured here on the raw
    uint8 test images through the checkpoint's own preprocess (all of them, and the first
    ``subset``)."""
    from tinytorch.models.pretrained import image_accuracy, make_preprocess, save_pretrained, today
    spec = {"type": "image", "mean": [float(m) for m in mean], "std": [float(s) for s in std]}
    model.preprocess = make_preprocess(spec)
    card = {"name": "cifar10_cnn", "milestone": 4, "dataset": "CIFAR-10",
            "split": f"test ({len(yte):,} images)", "metric": "accuracy",
            "value": image_accuracy(model, xte, yte),
            "subset": {"images": f"the first {subset} test images", "n": subset,
                       "value": image_accuracy(model, xte[:subset], yte[:subset])},
            "trained": trained,
            "command": command or "python milestones/04_cnn/cnn.py " + " ".join(sys.argv[1:]),
            "date": today()}
    return save_pretrained(model, path, card, spec)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few minutes: TinyDigits (3 epochs) + 1 epoch on a 5,000-image CIFAR-10 slice")
    ap.add_argument("--epochs", type=int, default=None, help="CIFAR-10 epochs (default 6, quick 1)")
    ap.add_argument("--cifar-root", default=None, help="directory holding cifar-10-batches-py/")
    ap.add_argument("--save", default=None, help="save the CIFAR-10 model to this .npz (+ .json card; "
                    "tinytorch.models.pretrained.load_pretrained reads it)")
    ap.add_argument("--skip-digits", action="store_true")
    ap.add_argument("--skip-cifar", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-lr", type=float, default=None,
                    help="peak of the one-cycle schedule (default 0.1; quick 0.02: its warm-up is only 12 steps)")
    ap.add_argument("--threads", default=None,
                    help="BLAS threads (1 is much faster when other jobs share the cores)")
    args = ap.parse_args(argv)

    print(f"Milestone 4: the CNN revolution, running tinytorch from {tinytorch.__file__}")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, numpy {np.__version__}, "
          f"python {platform.python_version()}, BLAS threads "
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'default')}, load average {os.getloadavg()[0]:.1f}")
    t_all = time.perf_counter()
    digit_rows = [] if args.skip_digits else part1_digits(epochs=3 if args.quick else 8, seed=args.seed)

    history, cifar_params = [], 0
    missing_data = False
    if not args.skip_cifar:
        root = args.cifar_root
        if root is None and not os.environ.get("TINYTORCH_DATA"):
            print("CIFAR-10 skipped: pass --cifar-root DIR or set TINYTORCH_DATA "
                  "(a directory with cifar-10-batches-py/)")
        else:
            epochs = args.epochs or (1 if args.quick else 6)
            max_lr = args.max_lr or (0.02 if args.quick else 0.1)
            n_train, n_test = (5_000, 1_000) if args.quick else (None, None)
            try:
                history, cifar_params = part2_cifar(root, epochs, n_train=n_train, n_test=n_test,
                                                    save=args.save, seed=args.seed, max_lr=max_lr)
            except DatasetError as e:
                print(f"CIFAR-10 skipped: {e}\nBuild the batches from the shared copy with\n"
                      f"  python $TINYTORCH_DATA/cifar10/build_cifar10_batches.py DIR\n"
                      f"and pass --cifar-root DIR (or put DIR/cifar-10-batches-py under $TINYTORCH_DATA).")
                missing_data = True

    print("\nResults")
    print(f"{'data':<12}{'model':<6}{'params':>10}{'epochs':>8}{'test acc':>10}{'time (s)':>10}")
    for name, p, ep, acc, secs in digit_rows:
        print(f"{'TinyDigits':<12}{name:<6}{p:>10,}{ep:>8}{acc * 100:>9.2f}%{secs:>10.1f}")
    if history:
        ep, _, acc, _, total = history[-1]
        label = "CIFAR slice" if args.quick else "CIFAR-10"
        print(f"{label:<12}{'CNN':<6}{cifar_params:>10,}{ep:>8}{acc * 100:>9.2f}%{total:>10.1f}")
        if not args.quick:
            verdict = "REACHED" if acc >= 0.75 else "NOT reached"
            print(f"target CIFAR-10 test accuracy >= 75%: {verdict} ({acc * 100:.2f}%)")
            print(time_to(history, 0.75))
    print(f"wall time {time.perf_counter() - t_all:.0f} s")
    return 2 if (missing_data and not args.quick) else 0


if __name__ == "__main__":
    sys.exit(main())
