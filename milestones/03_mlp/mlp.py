"""Milestone 3: the 1986 MLP revival, on real handwritten digits.

Rumelhart, Hinton and Williams (1986) showed that backpropagation trains networks with
hidden layers. This script trains a 784-256-128-10 multi-layer perceptron (ReLU, Adam,
cross-entropy) with nothing but your tinytorch:

    1. TinyDigits (4,000 train / 1,000 test MNIST digits bundled in the package), seconds
    2. full MNIST (60,000 / 10,000), target: test accuracy >= 97% within 10 minutes on a
       2-core CPU. MNIST is read by ``tinytorch.data.datasets.load_mnist()`` from the
       directory named by the environment variable TINYTORCH_DATA (``$TINYTORCH_DATA/mnist``).

Run:   python milestones/03_mlp/mlp.py                  (both datasets, full run)
       python milestones/03_mlp/mlp.py --quick          (TinyDigits + 2 MNIST epochs)
       python milestones/03_mlp/mlp.py --save mlp.npz   (also save the MNIST weights and card)
       python milestones/03_mlp/mlp.py --load mlp.npz   (evaluate saved weights, no training)

Rebuilding a saved model elsewhere (mlp.npz holds the weights, no pickle; mlp.json the
architecture, the preprocessing and the card):

    from tinytorch.models.pretrained import load_pretrained
    model = load_pretrained("mlp.npz")          # or "mnist_mlp": the one shipped with tinytorch
    logits = model(model.preprocess(images))    # images: (N, 28, 28) uint8 -> (N, 10)

Needs modules 01-07, and module 08 for the dataset loaders.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

# One BLAS thread unless the caller chose otherwise: on a busy 2-core machine (load 9) a
# 784-256-128-10 training step took a median 179 ms with OpenBLAS's 2 threads (threads
# spin waiting for each other) and 15 ms with 1. Set OPENBLAS_NUM_THREADS to override.
from tito.machine import cpu_model, set_blas_threads  # noqa: E402

set_blas_threads(1, override=False)

import numpy as np  # noqa: E402  (after the thread setting, which numpy reads at import)

import tinytorch  # noqa: E402
from tinytorch.core.training import Trainer, batches, evaluate
from tinytorch.nn import CrossEntropyLoss, Linear, ReLU, Sequential
from tinytorch.optim import Adam
from tinytorch.optim.lr_scheduler import CosineAnnealingLR

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
DOWNLOAD = False   # --download: let load_mnist fetch the official files (needs internet)


def build_model(seed: int = 0, hidden=(256, 128)) -> Sequential:
    """784 -> 256 -> 128 -> 10 with ReLU: 235,146 parameters."""
    h1, h2 = hidden
    return Sequential(Linear(784, h1, seed=seed), ReLU(), Linear(h1, h2, seed=seed + 1), ReLU(),
                      Linear(h2, 10, seed=seed + 2))


def prepare(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, 784) float32, standardized with MNIST's mean and std."""
    x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)   # (N, 784)
    return (x - np.float32(MNIST_MEAN)) / np.float32(MNIST_STD)


def load(name: str):
    """((x_train, y_train), (x_test, y_test)) prepared, or None with a message."""
    try:
        from tinytorch.data import datasets
    except ImportError as e:
        print(f"[{name}] tinytorch.data.datasets is missing ({e}): complete module 08 (dataloader) first.")
        return None
    try:
        if name == "tinydigits":
            (xtr, ytr), (xte, yte) = datasets.load_tinydigits()
        else:
            (xtr, ytr), (xte, yte) = datasets.load_mnist(download=DOWNLOAD)
    except Exception as e:  # missing files, no network, bad checksum: say so and go on
        where = os.environ.get("TINYTORCH_DATA")
        hint = (f"TINYTORCH_DATA={where}" if where else "TINYTORCH_DATA is not set")
        print(f"[{name}] could not load the dataset: {type(e).__name__}: {e}\n"
              f"[{name}] {hint}; MNIST needs mnist/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte.gz there. Skipping.")
        return None
    return (prepare(xtr), np.asarray(ytr, dtype=np.int64)), (prepare(xte), np.asarray(yte, dtype=np.int64))


def run(name: str, data, epochs: int, batch_size: int, lr: float, seed: int, progress: bool):
    (xtr, ytr), (xte, yte) = data
    model = build_model(seed)
    opt = Adam(model.parameters(), lr=lr)
    steps_per_epoch = -(-len(xtr) // batch_size)
    sched = CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch, eta_min=lr * 0.02)
    trainer = Trainer(model, opt, CrossEntropyLoss(), batch_scheduler=sched)
    test_batches = list(batches(xte, yte, 1000))
    print(f"[{name}] {len(xtr):,} train / {len(xte):,} test, {epochs} epochs of {steps_per_epoch} "
          f"batches of {batch_size}, Adam lr {lr} with cosine decay")
    t0 = time.perf_counter()
    trainer.fit(lambda e: batches(xtr, ytr, batch_size, shuffle=True, seed=seed * 1000 + e), epochs,
                val_data=test_batches, progress=progress, total_batches=steps_per_epoch)
    seconds = time.perf_counter() - t0
    last = trainer.history[-1]
    return model, {"dataset": name, "train_n": len(xtr), "test_n": len(xte), "epochs": epochs,
                   "train_acc": last["train"]["accuracy"], "test_acc": last["val"]["accuracy"],
                   "test_loss": last["val"]["loss"], "seconds": seconds}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="TinyDigits + 2 MNIST epochs (about a minute)")
    ap.add_argument("--dataset", choices=["tinydigits", "mnist", "both"], default="both")
    ap.add_argument("--epochs", type=int, default=None, help="MNIST epochs (default 8, quick 2)")
    ap.add_argument("--tiny-epochs", type=int, default=15, help="TinyDigits epochs")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", metavar="PATH", help="write the trained weights (.npz state dict)")
    ap.add_argument("--load", metavar="PATH", help="evaluate weights saved with --save; no training")
    ap.add_argument("--train-limit", type=int, default=None, metavar="N",
                    help="use only the first N training images (smoke tests)")
    ap.add_argument("--download", action="store_true", help="download MNIST if it is not found (needs internet)")
    ap.add_argument("--no-progress", action="store_true", help="no per-epoch lines")
    args = ap.parse_args(argv)
    global DOWNLOAD
    DOWNLOAD = args.download
    mnist_epochs = args.epochs or (2 if args.quick else 8)

    print(f"Milestone 3 (MLP) running tinytorch from {tinytorch.__file__}")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, numpy {np.__version__}, "
          f"BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS')}\n")

    if args.load:
        name = "mnist" if args.dataset in ("mnist", "both") else "tinydigits"
        data = load(name) or (load("tinydigits") if name == "mnist" else None)
        if data is None:
            return 1
        from tinytorch.models.pretrained import load_pretrained
        model = load_pretrained(args.load)                     # the .npz and its .json card
        res = evaluate(model, CrossEntropyLoss(), batches(data[1][0], data[1][1], 1000))
        print(f"{args.load}: test accuracy {res['accuracy']:.2%}, test loss {res['loss']:.4f}")
        return 0

    results, trained = [], None
    names = ["tinydigits", "mnist"] if args.dataset == "both" else [args.dataset]
    for name in names:
        data = load(name)
        if data is None:
            continue
        epochs = args.tiny_epochs if name == "tinydigits" else mnist_epochs
        if args.train_limit:
            (xtr, ytr), test = data
            data = (xtr[:args.train_limit], ytr[:args.train_limit]), test
        trained, res = run(name, data, epochs, args.batch_size, args.lr, args.seed, not args.no_progress)
        results.append(res)
        print()

    if not results:
        print("No dataset could be loaded: nothing to report.")
        return 1
    header = (f"{'dataset':<11} {'train':>7} {'test':>7} {'epochs':>6} {'train acc':>9} {'test acc':>9} "
              f"{'time (s)':>9}  target")
    print(header)
    print("-" * (len(header) + 12))
    ok = True
    for r in results:
        if r["dataset"] == "mnist":
            passed = r["test_acc"] >= 0.97 and r["seconds"] <= 600
            target = f">= 97% in 10 min: {'PASS' if passed else 'FAIL'}"
            ok = ok and (passed or args.quick)
        else:
            target = "(warm-up)"
        print(f"{r['dataset']:<11} {r['train_n']:>7,} {r['test_n']:>7,} {r['epochs']:>6} {r['train_acc']:>9.2%} "
              f"{r['test_acc']:>9.2%} {r['seconds']:>9.1f}  {target}")
    if args.save and trained is not None:
        path = save_card(trained, results[-1], args.save, argv)
        print(f"\nthe last model ({results[-1]['dataset']}) saved to {path} and its card; "
              "load it with tinytorch.models.pretrained.load_pretrained(path)")
    return 0 if ok else 1


def save_card(model, res, path, argv, subset=1000):
    """save_pretrained: the weights and a card whose numbers are measured here on the raw test
    images through the checkpoint's own preprocess (all of them, and the first ``subset``)."""
    from tinytorch.data import datasets
    from tinytorch.models.pretrained import image_accuracy, make_preprocess, save_pretrained, today
    name = res["dataset"]
    (_, _), (xte, yte) = datasets.load_mnist() if name == "mnist" else datasets.load_tinydigits()
    spec = {"type": "image", "mean": [MNIST_MEAN], "std": [MNIST_STD], "flatten": True}
    model.preprocess = make_preprocess(spec)
    card = {"name": "mnist_mlp" if name == "mnist" else "tinydigits_mlp", "milestone": 3,
            "dataset": "MNIST" if name == "mnist" else "TinyDigits",
            "split": f"test ({len(yte):,} images)", "metric": "accuracy",
            "value": image_accuracy(model, xte, yte),
            "subset": {"images": f"the first {subset} test images", "n": subset,
                       "value": image_accuracy(model, xte[:subset], yte[:subset])},
            "trained": f"{res['epochs']} epochs on {res['train_n']:,} images, {res['seconds']:.0f} s",
            "command": "python milestones/03_mlp/mlp.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "date": today()}
    return save_pretrained(model, path, card, spec)


if __name__ == "__main__":
    sys.exit(main())
