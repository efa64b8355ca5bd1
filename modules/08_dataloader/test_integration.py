"""Integration tests of module 08 on the exported package (tinytorch.* only).

The loader feeds module 07's training loop with real TinyDigits batches; the loaders of the
bundled datasets work from the package alone.
"""
import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import Adam
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import evaluate, train_epoch
from tinytorch.data.datasets import check_tinytalks_answer, load_tinydigits, load_tinytalks
from tinytorch.data.loader import Compose, DataLoader, Normalize, RandomCrop, TensorDataset


def flatten(x):
    return x.reshape(len(x), -1)  # (B, 28, 28) -> (B, 784)


def test_mlp_learns_tinydigits_from_the_dataloader():
    (x, y), (xt, yt) = load_tinydigits()
    train = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, seed=0,
                       transform=Compose([RandomCrop(28, padding=1, seed=0), Normalize(0.1307, 0.3081), flatten]))
    test = DataLoader(TensorDataset(xt, yt), batch_size=250, transform=Compose([Normalize(0.1307, 0.3081), flatten]))
    model = Sequential(Linear(784, 64, seed=0), ReLU(), Linear(64, 10, seed=1))
    opt = Adam(model.parameters(), lr=2e-3)
    loss_fn = CrossEntropyLoss()
    for _ in range(3):
        stats = train_epoch(model, opt, loss_fn, train)
    result = evaluate(model, loss_fn, test)
    assert stats["loss"] < 0.6, stats
    assert result["accuracy"] > 0.85, result
    for p in model.parameters():
        assert p.data.dtype == np.float32


def test_batches_are_tensors_and_epochs_differ():
    (x, y), _ = load_tinydigits()
    loader = DataLoader(TensorDataset(x, y), batch_size=500, shuffle=True, seed=1)
    first = [yb.data.copy() for _, yb in loader]
    second = [yb.data.copy() for _, yb in loader]
    assert all(isinstance(b, Tensor) for b in next(iter(loader)))
    assert not all(np.array_equal(a, b) for a, b in zip(first, second))
    assert np.bincount(np.concatenate(second), minlength=10).tolist() == [400] * 10


def test_tinytalks_from_the_package():
    (q, a), (qv, av), (qt, at) = load_tinytalks()
    assert len(q) + len(qv) + len(qt) > 2800
    assert not set(q) & set(qt)
    assert check_tinytalks_answer(at[0].upper() + " ", at[0])
