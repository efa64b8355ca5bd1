# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 08: DataLoader
#
# A model is only as fast as the data you can feed it. Until now every example fit in one
# array and one step. Real training walks over tens of thousands of images, epoch after
# epoch, in shuffled mini-batches, often changing each image a little (augmentation) so the
# model cannot memorize pixels. In this module you build the pipeline that does that:
# the `Dataset` protocol, `TensorDataset`, a `DataLoader` that batches, shuffles
# reproducibly and collates into Tensors, and the batched augmentations the CIFAR-10
# milestone needs. You also get real data: TinyDigits and TinyTalks ship inside the package,
# MNIST and CIFAR-10 load from their official files. Then you measure what a batch costs in
# memory and how much of a training step is spent waiting for data.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far                you build now                     this unlocks
#   ------------                -------------                     ------------
#   01 Tensor        ----->     08 DataLoader            ----->   09 Conv2d on CIFAR-10 batches
#   07 Training loop            Dataset protocol                  milestone 4: CNN on CIFAR-10
#   (for x, y in ...:           TensorDataset                     milestone 5: TinyTalks Q and A
#      step)                    DataLoader: batch, shuffle,       every later model's batches
#                                 drop_last, collate
#                               RandomCrop, RandomHorizontalFlip,
#                                 Normalize (whole batches)
#                               given: TinyDigits, TinyTalks,
#                                 MNIST, CIFAR-10 loaders
#                                 (datasets.py, provided)
# ```
#
# The data flow of one training step:
#
# ```
#   dataset (N samples on disk or in memory)
#      |  indices for this epoch: 0..N-1, shuffled by (seed, epoch)
#      v
#   sampler  --[i0, i1, ..., i(B-1)]-->  fetch samples  -->  collate (stack)  -->  transform
#                                                                                      |
#   model step  <--  (Tensor x (B, ...), Tensor y (B,))  <----------------------------+
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp data.loader
#| export
#| namespace tinytorch.utils.data Dataset TensorDataset DataLoader default_collate
#| namespace tinytorch.transforms Normalize RandomHorizontalFlip RandomCrop Compose
from __future__ import annotations

import math
import time

import numpy as np

from tinytorch.core.tensor import Tensor

__all__ = ["Dataset", "TensorDataset", "default_collate", "DataLoader",
           "Normalize", "RandomHorizontalFlip", "RandomCrop", "Compose"]

# %% [markdown]
# ## 1. The Dataset protocol
#
# A dataset is anything that answers two questions: *how many samples?* (`len(ds)`) and
# *give me sample i* (`ds[i]`). That is all PyTorch's `torch.utils.data.Dataset` asks, and
# it is enough: the data may live in a NumPy array, in files on disk, or be generated on
# the fly. The loader never needs to know.
#
# ```
#   ds = TensorDataset(images, labels)      images (N, 28, 28), labels (N,)
#   len(ds)   -> N
#   ds[7]     -> (images[7], labels[7])     one sample: a tuple, one entry per array
# ```
#
# Fetching samples one at a time costs a Python call each: for 60,000 MNIST images that is
# 60,000 calls per epoch. When the data is already in arrays we can do better: NumPy can
# gather a whole batch with one fancy-indexing call, `images[[3, 17, 42, ...]]`. Our
# `TensorDataset` offers that as `__getitems__(indices)` (PyTorch uses the same name for
# the same idea), and the loader uses it when it exists. You will measure the difference.
#
# The base class below is provided: it only states the protocol.

# %% nbgrader={"grade": false, "grade_id": "dataset-protocol", "locked": true, "schema_version": 3, "solution": false}
#| export
class Dataset:
    """The protocol every dataset follows: ``len(ds)`` and ``ds[i]`` (a tuple of arrays).

    Subclasses override ``__len__`` and ``__getitem__``. They may also define
    ``__getitems__(indices)`` returning a whole batch as a tuple of stacked arrays; the
    DataLoader then fetches a batch in one call instead of one call per sample.
    """

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")


# %% [markdown]
# ### TensorDataset
#
# `TensorDataset(*arrays)` wraps arrays (or Tensors) that share their first dimension:
#
# ```
#   images (4000, 28, 28)  ----+
#                              +---> TensorDataset   len 4000
#   labels (4000,)         ----+     ds[i]          -> (images[i], labels[i])
#                                    ds.__getitems__([2, 9]) -> (images[[2, 9]] (2, 28, 28),
#                                                                labels[[2, 9]] (2,))
# ```
#
# If the first dimensions disagree, fail at construction with a message that names them
# (`TensorDataset: all arrays need the same first dimension, got lengths [4000, 3999]`):
# a loader that silently drops the last 1 label would pair images with the wrong labels.
# Store NumPy arrays (take `.data` of a Tensor); do not copy them.

# %% nbgrader={"grade": false, "grade_id": "tensor-dataset", "locked": false, "schema_version": 3, "solution": true}
#| export
class TensorDataset(Dataset):
    """A dataset over arrays sharing their first dimension; sample i is ``tuple(a[i] for a in arrays)``."""

    def __init__(self, *arrays):
        """Store the arrays (NumPy; Tensors are unwrapped with ``.data``) in ``self.arrays``.

        Raise ``ValueError`` if no array is given, if an array is 0-dimensional, or if the
        first dimensions differ (name the lengths you got).
        HINT: ``a.data if isinstance(a, Tensor) else np.asarray(a)``
        """
        ### BEGIN SOLUTION
        if not arrays:
            raise ValueError("TensorDataset needs at least one array, got none")
        self.arrays = tuple(a.data if isinstance(a, Tensor) else np.asarray(a) for a in arrays)
        if any(a.ndim == 0 for a in self.arrays):
            raise ValueError("TensorDataset: every array needs a first (sample) dimension, got a 0-d array")
        lengths = [len(a) for a in self.arrays]
        if len(set(lengths)) != 1:
            raise ValueError(f"TensorDataset: all arrays need the same first dimension, got lengths {lengths}")
        ### END SOLUTION

    def __len__(self) -> int:
        """Number of samples."""
        ### BEGIN SOLUTION
        return len(self.arrays[0])
        ### END SOLUTION

    def __getitem__(self, index):
        """One sample: ``tuple(a[index] for a in self.arrays)``."""
        ### BEGIN SOLUTION
        return tuple(a[index] for a in self.arrays)
        ### END SOLUTION

    def __getitems__(self, indices):
        """A whole batch in one NumPy call per array: ``tuple(a[indices] for a in self.arrays)``.

        ``indices`` is an int array of shape (B,); every result has B as its first dimension.
        """
        ### BEGIN SOLUTION
        indices = np.asarray(indices, dtype=np.int64)
        return tuple(a[indices] for a in self.arrays)
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-tensor-dataset", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_tensor_dataset():
    """TensorDataset: length, one sample, a batch, and clear errors."""
    x = np.arange(24, dtype=np.float32).reshape(6, 2, 2)  # (6, 2, 2)
    y = np.arange(6, dtype=np.int64)                      # (6,)
    ds = TensorDataset(x, Tensor(y))
    assert len(ds) == 6, f"expected len 6, got {len(ds)}"
    xi, yi = ds[4]
    np.testing.assert_array_equal(xi, x[4])
    assert int(yi) == 4, f"expected label 4, got {yi}"
    xb, yb = ds.__getitems__(np.array([5, 0, 3]))
    assert xb.shape == (3, 2, 2) and yb.shape == (3,), f"batch shapes {xb.shape}, {yb.shape}"
    np.testing.assert_array_equal(yb, [5, 0, 3])
    assert xb.dtype == np.float32 and yb.dtype == np.int64, "dtypes must be kept"
    try:
        TensorDataset(x, y[:5])
    except ValueError as e:
        assert "6" in str(e) and "5" in str(e), f"the error should name both lengths, got: {e}"
    else:
        raise AssertionError("mismatched lengths 6 and 5 must raise ValueError")
    assert ds.arrays[0] is x, "TensorDataset must not copy its arrays"
    ### BEGIN HIDDEN TESTS
    try:
        TensorDataset()
    except ValueError:
        pass
    else:
        raise AssertionError("TensorDataset() with no arrays must raise ValueError")
    ### END HIDDEN TESTS
    print("test_unit_tensor_dataset passed")


test_unit_tensor_dataset()

# %% [markdown]
# ## 2. Collation: from a list of samples to a batch
#
# When samples arrive one by one (a dataset without `__getitems__`), the loader holds a
# list of B tuples and must turn it into one tuple of stacked arrays. This is *collation*:
#
# ```
#   samples = [(x0, y0), (x1, y1), (x2, y2)]       x_i (28, 28), y_i a scalar
#                  |  transpose the list of tuples: zip(*samples)
#                  v
#   ((x0, x1, x2), (y0, y1, y2))
#                  |  np.stack each group along a new first axis
#                  v
#   (X (3, 28, 28), Y (3,))
# ```
#
# Every sample must have the same number of fields and each field the same shape; if not,
# raise a `ValueError` that says which field and which shapes disagree (for example
# `default_collate: field 0 has shapes (28, 28) and (27, 28)`). `np.stack` would raise too,
# but its message does not say which field of which batch.

# %% nbgrader={"grade": false, "grade_id": "default-collate", "locked": false, "schema_version": 3, "solution": true}
#| export
def default_collate(samples):
    """Stack a list of B samples (tuples of arrays or scalars) into a tuple of arrays (B, ...).

    EXAMPLE: default_collate([(np.zeros(2), 1), (np.ones(2), 0)])
             -> (array([[0., 0.], [1., 1.]]), array([1, 0]))
    HINTS: ``zip(*samples)`` groups field by field; ``np.asarray`` each value, compare
    shapes, then ``np.stack``. An empty list is an error.
    """
    ### BEGIN SOLUTION
    if len(samples) == 0:
        raise ValueError("default_collate: got an empty list of samples")
    n_fields = {len(s) for s in samples}
    if len(n_fields) != 1:
        raise ValueError(f"default_collate: samples have different numbers of fields: {sorted(n_fields)}")
    batch = []
    for f, values in enumerate(zip(*samples)):
        arrays = [v.data if isinstance(v, Tensor) else np.asarray(v) for v in values]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            a, b = sorted(shapes)[:2]
            raise ValueError(f"default_collate: field {f} has shapes {a} and {b}")
        batch.append(np.stack(arrays))
    return tuple(batch)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-default-collate", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_default_collate():
    """default_collate stacks field by field and names the field that does not fit."""
    samples = [(np.full((2, 3), i, dtype=np.float32), np.int64(i)) for i in range(4)]
    x, y = default_collate(samples)
    assert x.shape == (4, 2, 3), f"expected (4, 2, 3), got {x.shape}"
    assert y.shape == (4,), f"expected (4,), got {y.shape}"
    assert x.dtype == np.float32 and y.dtype == np.int64, f"dtypes changed: {x.dtype}, {y.dtype}"
    np.testing.assert_array_equal(y, [0, 1, 2, 3])
    np.testing.assert_array_equal(x[2], np.full((2, 3), 2))
    bad = [(np.zeros((28, 28)), 1), (np.zeros((27, 28)), 2)]
    try:
        default_collate(bad)
    except ValueError as e:
        assert "field 0" in str(e), f"the error should name the field, got: {e}"
    else:
        raise AssertionError("samples of shapes (28, 28) and (27, 28) must raise ValueError")
    ### BEGIN HIDDEN TESTS
    try:
        default_collate([])
    except ValueError:
        pass
    else:
        raise AssertionError("an empty list must raise ValueError")
    (one,) = default_collate([(1.5,), (2.5,)])
    np.testing.assert_allclose(one, [1.5, 2.5])
    ### END HIDDEN TESTS
    print("test_unit_default_collate passed")


test_unit_default_collate()

# %% [markdown]
# ## 3. The DataLoader
#
# The loader turns a dataset into an iterable of batches. It is PyTorch's
# `torch.utils.data.DataLoader`, and once this module is completed it is importable from
# the same place, `tinytorch.utils.data` (with `Dataset` and `TensorDataset`; the
# transforms of section 4 from `tinytorch.transforms`, torchvision's name). One epoch, N = 10 samples,
# `batch_size=4`:
#
# ```
#   order for this epoch     [4, 6, 2, 7, 3, 5, 9, 0, 8, 1]     (shuffle=True, seed=0, epoch 0)
#   batches                  [4, 6, 2, 7] [3, 5, 9, 0] [8, 1]
#   len(loader)              ceil(10 / 4) = 3        (drop_last=False: keep the short one)
#                            floor(10 / 4) = 2       (drop_last=True:  drop [8, 1])
# ```
#
# **Shuffling, reproducibly.** Each epoch must see the samples in a *different* order
# (otherwise the model sees the same sequence of batches every epoch and SGD's noise stops
# helping), but a run must be repeatable. We make the order a pure function of the seed and
# the epoch number:
#
# ```
#   order(epoch) = np.random.default_rng([seed, epoch]).permutation(N)
#   seed 0:  epoch 0 -> [4, 6, 2, 7, ...]   epoch 1 -> [9, 1, 3, 8, ...]   same seed: same lists, always
# ```
#
# The loader counts epochs itself: every `iter(loader)` (every `for` loop over it) starts
# the next epoch. `set_epoch(e)` jumps to epoch e, e.g. to resume training from a checkpoint
# with the very batches the interrupted run would have seen.
#
# **Iterator protocol.** `for x, y in loader:` calls `iter(loader)` once, then `next()` until
# `StopIteration`. Writing `__iter__` as a generator (a method with `yield`) gives you both.
#
# **Fetching and collating.** Fetch a batch with `dataset.__getitems__(indices)` when the
# dataset has it and no custom `collate` was given; otherwise fetch samples one by one
# (`dataset[i]`) and collate them (`collate`, default `default_collate`).
#
# **Transform.** If a `transform` is given, it is applied to the *first* field of every
# batch (the inputs) as a whole: `x = transform(x)` with x of shape (B, ...). Labels are left
# alone. Finally each field becomes a `Tensor` (uint8 images stay uint8, int64 labels stay
# int64; Tensor's own rules).

# %% nbgrader={"grade": false, "grade_id": "dataloader", "locked": false, "schema_version": 3, "solution": true}
#| export
class DataLoader:
    """Iterate over a dataset in (optionally shuffled) batches of Tensors.

    DataLoader(dataset, batch_size=32, shuffle=False, drop_last=False, seed=None,
               transform=None, collate=None)
    """

    def __init__(self, dataset, batch_size: int = 32, shuffle: bool = False, drop_last: bool = False,
                 seed=None, transform=None, collate=None):
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        # No seed given: draw one now, so the order still changes per epoch and stays
        # consistent within this loader (pass a seed to make runs repeatable).
        self.seed = int(np.random.SeedSequence().entropy % (2**63)) if seed is None else int(seed)
        self.transform = transform
        self.collate = collate
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The next ``iter(loader)`` produces epoch ``epoch``'s order."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """Number of batches per epoch (see the diagram above).

        HINT: ``len(self.dataset) // B`` with drop_last, ``math.ceil(len / B)`` without.
        """
        ### BEGIN SOLUTION
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        ### END SOLUTION

    def order(self, epoch: int) -> np.ndarray:
        """Sample indices for ``epoch``: int64 array (N,), shuffled iff ``self.shuffle``.

        HINT: ``np.random.default_rng([self.seed, epoch]).permutation(n)``; ``np.arange(n)``
        when not shuffling.
        """
        ### BEGIN SOLUTION
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        return np.random.default_rng([self.seed, int(epoch)]).permutation(n).astype(np.int64)
        ### END SOLUTION

    def fetch(self, indices: np.ndarray) -> tuple:
        """The batch for ``indices`` as a tuple of NumPy arrays, each (B, ...).

        Use ``self.dataset.__getitems__`` when it exists and ``self.collate`` is None;
        otherwise fetch ``self.dataset[i]`` one by one and collate them with
        ``self.collate`` (or ``default_collate``).
        """
        ### BEGIN SOLUTION
        if self.collate is None and hasattr(self.dataset, "__getitems__"):
            return tuple(self.dataset.__getitems__(indices))
        collate = self.collate or default_collate
        return tuple(collate([self.dataset[int(i)] for i in indices]))
        ### END SOLUTION

    def __iter__(self):
        """Yield ``len(self)`` batches, each a tuple of Tensors.

        Steps: take ``self.order(self.epoch)`` and then advance ``self.epoch`` by one (so
        the next loop gets a new order); cut the order into slices of ``batch_size``
        (skip a short last slice when ``drop_last``); ``fetch`` each slice; apply
        ``self.transform`` to the first field if given; wrap every field in ``Tensor``.
        """
        ### BEGIN SOLUTION
        order = self.order(self.epoch)
        self.epoch += 1
        n, bs = len(order), self.batch_size
        for start in range(0, n, bs):
            idx = order[start:start + bs]               # (B,)
            if len(idx) < bs and self.drop_last:
                break
            batch = self.fetch(idx)                     # tuple of (B, ...) arrays
            if self.transform is not None:
                batch = (self.transform(batch[0]),) + tuple(batch[1:])
            yield tuple(Tensor(b) for b in batch)
        ### END SOLUTION

    def __repr__(self) -> str:
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed})")


# %% nbgrader={"grade": true, "grade_id": "test-dataloader-batching", "locked": true, "points": 2, "schema_version": 3, "solution": false}
from tinytorch.testing import assert_tensor


def test_unit_dataloader_batching():
    """Batches of the right size, every sample once, drop_last, Tensors out, both fetch paths."""
    x = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)   # (10, 3)
    y = np.arange(10, dtype=np.int64)                        # (10,)
    ds = TensorDataset(x, y)
    loader = DataLoader(ds, batch_size=4)
    assert len(loader) == 3, f"10 samples / 4 per batch: expected 3 batches, got {len(loader)}"
    batches = list(loader)
    assert len(batches) == 3, f"iterating gave {len(batches)} batches, expected 3"
    xb, yb = batches[0]
    assert_tensor(xb, (4, 3), np.float32, name="the first batch's inputs")
    assert_tensor(yb, (4,), np.int64, name="the first batch's labels")
    assert [b[1].shape[0] for b in batches] == [4, 4, 2], "batch sizes should be 4, 4, 2"
    np.testing.assert_array_equal(np.concatenate([b[1].data for b in batches]), y)  # in order
    assert yb.dtype == np.int64, f"labels must stay int64, got {yb.dtype}"
    dropped = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dropped) == 2 and len(list(dropped)) == 2, "drop_last=True: 2 full batches"
    # the per-sample path (a custom collate) must give the same batches
    slow = DataLoader(ds, batch_size=4, collate=default_collate)
    for (a, b), (c, d) in zip(loader, slow):
        np.testing.assert_array_equal(a.data, c.data)
        np.testing.assert_array_equal(b.data, d.data)
    # a transform sees the whole input batch, labels untouched
    doubled = DataLoader(ds, batch_size=5, transform=lambda xb: xb * 2)
    xb, yb = next(iter(doubled))
    np.testing.assert_array_equal(xb.data, x[:5] * 2)
    np.testing.assert_array_equal(yb.data, y[:5])
    ### BEGIN HIDDEN TESTS
    assert len(DataLoader(ds, batch_size=10)) == 1
    assert len(DataLoader(ds, batch_size=11, drop_last=True)) == 0
    assert list(DataLoader(ds, batch_size=11, drop_last=True)) == []
    assert len(DataLoader(ds, batch_size=1)) == 10
    ### END HIDDEN TESTS
    print("test_unit_dataloader_batching passed")


test_unit_dataloader_batching()

# %% nbgrader={"grade": true, "grade_id": "test-dataloader-shuffle", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_dataloader_shuffle():
    """Shuffle: a permutation per epoch, different across epochs, identical across runs."""
    y = np.arange(100, dtype=np.int64)
    ds = TensorDataset(y)

    def epoch_labels(loader):
        return np.concatenate([b[0].data for b in loader])

    a = DataLoader(ds, batch_size=16, shuffle=True, seed=7)
    e0, e1 = epoch_labels(a), epoch_labels(a)
    assert sorted(e0.tolist()) == y.tolist(), "an epoch must contain every sample exactly once"
    assert not np.array_equal(e0, y), "shuffle=True returned the samples in order"
    assert not np.array_equal(e0, e1), "two epochs gave the same order: use the epoch in the seed"
    b = DataLoader(ds, batch_size=16, shuffle=True, seed=7)
    np.testing.assert_array_equal(epoch_labels(b), e0)   # same seed -> same epoch 0
    np.testing.assert_array_equal(epoch_labels(b), e1)   # ... and same epoch 1
    c = DataLoader(ds, batch_size=16, shuffle=True, seed=8)
    assert not np.array_equal(epoch_labels(c), e0), "a different seed should give a different order"
    a.set_epoch(1)
    np.testing.assert_array_equal(epoch_labels(a), e1)   # set_epoch replays epoch 1
    ### BEGIN HIDDEN TESTS
    np.testing.assert_array_equal(a.order(0), DataLoader(ds, shuffle=True, seed=7).order(0))
    assert a.order(3).dtype.kind == "i"
    ### END HIDDEN TESTS
    print("test_unit_dataloader_shuffle passed")


test_unit_dataloader_shuffle()

# %% [markdown]
# The iterator protocol by hand: what a `for` loop does behind the scenes, on 10 samples
# with `batch_size=4`. Watch the epoch counter and the order change between epochs.

# %%
demo = DataLoader(TensorDataset(np.arange(10)), batch_size=4, shuffle=True, seed=0)
for epoch in range(2):
    it = iter(demo)                                  # starts epoch `epoch`; demo.epoch is now epoch + 1
    batches = []
    while True:
        try:
            batches.append(next(it)[0].data.tolist())
        except StopIteration:                        # the generator ran out: the epoch is over
            break
    print(f"epoch {epoch}: {batches}   (len(loader) = {len(demo)}, next epoch = {demo.epoch})")

# %% [markdown]
# ## 4. Augmentation, one batch at a time
#
# A CNN trained on CIFAR-10's 50,000 images memorizes them within a few epochs: training
# accuracy climbs to 100% while test accuracy stalls. Augmentation shows the model a slightly
# different version of every image every epoch, so memorizing pixels stops paying off.
# The CIFAR milestone uses the classic recipe (from the ResNet paper): pad by 4, crop a
# random 32x32 window, flip left-right half the time, then normalize each channel.
#
# ```
#   RandomCrop(4, padding=2) on a 4x4 image:
#
#   image          padded (8x8, zeros)        crop at offset (row 1, col 3)
#   a b c d        0 0 0 0 0 0 0 0
#   e f g h        0 0 0 0 0 0 0 0            . . . . . . . .
#   i j k l   -->  0 0 a b c d 0 0    -->     . . . 0 0 0 0 .      ->   0 0 0 0
#   m n o p        0 0 e f g h 0 0            . . . b c d 0 .           b c d 0
#                  0 0 i j k l 0 0            . . . f g h 0 .           f g h 0
#                  0 0 m n o p 0 0            . . . j k l 0 .           j k l 0
#                  0 0 0 0 0 0 0 0
#                  0 0 0 0 0 0 0 0            offsets are drawn per image in [0, 8 - 4]
#
#   RandomHorizontalFlip:  a b c d  ->  d c b a   (per image, with probability p)
#   Normalize:             x' = (x / 255 - mean[c]) / std[c]   (uint8 in, float32 out)
# ```
#
# **Vectorized over the batch.** A Python loop over 128 images per batch costs 128 calls to
# NumPy; on CIFAR that is 50,000 calls per epoch per transform. Instead, draw all B offsets
# at once and gather all crops with one fancy-indexing call:
#
# ```
#   oy, ox            (B,)             random offsets, one per image
#   rows = oy[:, None] + arange(S)     (B, S)   the rows image b keeps
#   cols = ox[:, None] + arange(S)     (B, S)
#   out = padded[b, c, rows, cols]     (B, C, S, S)   with b, c, rows, cols broadcast
#          index shapes: b (B,1,1,1)  c (1,C,1,1)  rows (B,1,S,1)  cols (B,1,1,S)
# ```
#
# Each random transform owns a seeded generator (`np.random.default_rng(seed)`): the same
# seed gives the same sequence of crops and flips, run after run. Transforms accept
# batches shaped (B, C, H, W) or, for grayscale, (B, H, W).
#
# **Normalize** converts to float32 (dividing uint8 images by 255 first, like torchvision's
# `ToTensor`) and then standardizes with a scalar or per-channel `mean` and `std`. It comes
# last: crops and flips on uint8 move 4x fewer bytes than on float32.

# %% nbgrader={"grade": false, "grade_id": "normalize-flip", "locked": false, "schema_version": 3, "solution": true}
#| export
class Normalize:
    """``(x / 255 - mean) / std`` for uint8 batches, ``(x - mean) / std`` for float batches; float32 out.

    ``mean`` and ``std`` are scalars, or one value per channel for (B, C, H, W) batches.
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        if self.mean.shape != self.std.shape or self.mean.ndim > 1:
            raise ValueError(f"Normalize: mean and std must be scalars or 1-D of equal length, got shapes "
                             f"{self.mean.shape} and {self.std.shape}")
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {self.std}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Return the normalized batch as float32.

        HINTS:
          - Convert to float32 with ``astype``; if ``x.dtype == np.uint8`` also divide by 255.
          - Per-channel values (``self.mean.ndim == 1``) need ``x.ndim == 4`` and
            ``len(self.mean) == x.shape[1]`` (raise ValueError naming both otherwise);
            reshape mean/std to (1, C, 1, 1) so they broadcast over (B, C, H, W).
        """
        ### BEGIN SOLUTION
        x = np.asarray(x)
        out = x.astype(np.float32)
        if x.dtype == np.uint8:
            out *= np.float32(1.0 / 255.0)
        mean, std = self.mean, self.std
        if mean.ndim == 1:
            if x.ndim != 4 or x.shape[1] != mean.size:
                raise ValueError(f"Normalize: {mean.size} per-channel values need a (B, {mean.size}, H, W) batch, "
                                 f"got shape {x.shape}")
            mean, std = mean.reshape(1, -1, 1, 1), std.reshape(1, -1, 1, 1)
        return (out - mean) / std
        ### END SOLUTION


class RandomHorizontalFlip:
    """Mirror each image of a batch left-right with probability ``p`` (seeded)."""

    def __init__(self, p: float = 0.5, seed=None):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.rng = np.random.default_rng(seed)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Return a new batch in which a random subset of images (each with probability p)
        is reversed along the last axis (width). Do not modify ``x`` in place.

        HINTS: ``flip = self.rng.random(len(x)) < self.p`` (B,); ``x[flip, ..., ::-1]``.
        """
        ### BEGIN SOLUTION
        x = np.asarray(x)
        flip = self.rng.random(len(x)) < self.p          # (B,) bool
        out = x.copy()
        out[flip] = x[flip, ..., ::-1]
        return out
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-normalize-flip", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_normalize_flip():
    """Normalize: uint8 -> float32 per channel; Flip: p=0, p=1, and a seeded mix."""
    x = np.zeros((2, 3, 2, 2), dtype=np.uint8)          # (B, C, H, W)
    x[:, 1] = 255
    out = Normalize(mean=[0.0, 0.5, 0.5], std=[1.0, 0.5, 0.25])(x)
    assert out.dtype == np.float32, f"Normalize must return float32, got {out.dtype}"
    np.testing.assert_allclose(out[0, :, 0, 0], [0.0, 1.0, -2.0], rtol=1e-6)
    f = np.arange(6, dtype=np.float32).reshape(1, 6)
    np.testing.assert_allclose(Normalize(1.0, 2.0)(f), (f - 1.0) / 2.0, rtol=1e-6)
    try:
        Normalize([0.5, 0.5], [1.0, 1.0])(x)
    except ValueError as e:
        assert "3" in str(e), f"the error should show the batch shape with 3 channels, got: {e}"
    else:
        raise AssertionError("2 channel means for a 3-channel batch must raise ValueError")

    imgs = np.arange(8 * 2 * 3).reshape(8, 2, 3)        # (B, H, W)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0, seed=0)(imgs), imgs)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0, seed=0)(imgs), imgs[..., ::-1])
    before = imgs.copy()
    mixed = RandomHorizontalFlip(p=0.5, seed=3)(imgs)
    np.testing.assert_array_equal(imgs, before)          # input untouched
    flipped = [np.array_equal(m, i[..., ::-1]) for m, i in zip(mixed, imgs)]
    kept = [np.array_equal(m, i) for m, i in zip(mixed, imgs)]
    assert all(a or b for a, b in zip(flipped, kept)), "each image is either flipped or unchanged"
    assert 0 < sum(flipped) < 8, f"p=0.5 on 8 images flipped {sum(flipped)}"
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.5, seed=3)(imgs), mixed)  # seeded
    ### BEGIN HIDDEN TESTS
    chw = np.arange(4 * 3 * 2 * 2).reshape(4, 3, 2, 2).astype(np.uint8)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(chw), chw[..., ::-1])
    ### END HIDDEN TESTS
    print("test_unit_normalize_flip passed")


test_unit_normalize_flip()

# %% nbgrader={"grade": false, "grade_id": "random-crop", "locked": false, "schema_version": 3, "solution": true}
#| export
class RandomCrop:
    """Pad each image with ``padding`` zeros on every side, then cut a random ``size`` window (seeded)."""

    def __init__(self, size, padding: int = 0, seed=None):
        self.size = (int(size), int(size)) if np.isscalar(size) else tuple(int(s) for s in size)
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"RandomCrop: size must be a positive int or (height, width), got {size!r}")
        if padding < 0:
            raise ValueError(f"RandomCrop: padding must be >= 0, got {padding}")
        self.padding = int(padding)
        self.rng = np.random.default_rng(seed)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Crop every image of a (B, C, H, W) or (B, H, W) batch; same dtype out,
        shape (B, C, sh, sw) or (B, sh, sw).

        HINTS:
          - Grayscale (B, H, W): add a channel axis, crop, remove it again.
          - ``np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))`` pads with zeros.
          - A crop larger than the padded image is a ValueError naming both sizes.
          - Offsets ``self.rng.integers(0, Hp - sh + 1, size=B)`` (same for columns), then
            one fancy-indexing gather as in the diagram above.
        """
        ### BEGIN SOLUTION
        x = np.asarray(x)
        gray = x.ndim == 3
        if gray:
            x = x[:, None]                                # (B, 1, H, W)
        if x.ndim != 4:
            raise ValueError(f"RandomCrop expects a (B, C, H, W) or (B, H, W) batch, got shape {x.shape}")
        B, C, H, W = x.shape
        p, (sh, sw) = self.padding, self.size
        if p:
            x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))  # (B, C, H+2p, W+2p)
        Hp, Wp = H + 2 * p, W + 2 * p
        if sh > Hp or sw > Wp:
            raise ValueError(f"RandomCrop: crop {(sh, sw)} is larger than the padded image {(Hp, Wp)}")
        oy = self.rng.integers(0, Hp - sh + 1, size=B)     # (B,)
        ox = self.rng.integers(0, Wp - sw + 1, size=B)     # (B,)
        rows = oy[:, None] + np.arange(sh)                  # (B, sh)
        cols = ox[:, None] + np.arange(sw)                  # (B, sw)
        out = x[np.arange(B)[:, None, None, None], np.arange(C)[None, :, None, None],
                rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, sh, sw)
        return out[:, 0] if gray else out
        ### END SOLUTION


class Compose:
    """Apply transforms in order: ``Compose([RandomCrop(32, 4), Normalize(m, s)])(x)``."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(type(t).__name__ for t in self.transforms) + "])"


# %% nbgrader={"grade": true, "grade_id": "test-random-crop", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_random_crop():
    """RandomCrop returns real windows of the padded image, varied, seeded, any dtype."""
    B = 16
    x = (np.arange(B * 3 * 6 * 6) % 251).reshape(B, 3, 6, 6).astype(np.uint8)   # (B, C, H, W)
    out = RandomCrop(6, padding=2, seed=0)(x)
    assert out.shape == (B, 3, 6, 6), f"expected {(B, 3, 6, 6)}, got {out.shape}"
    assert out.dtype == np.uint8, f"crop must keep the dtype, got {out.dtype}"
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = []
    for b in range(B):
        hits = [(i, j) for i in range(5) for j in range(5)
                if np.array_equal(out[b], padded[b, :, i:i + 6, j:j + 6])]
        assert hits, f"image {b} is not a 6x6 window of its padded image"
        offsets.append(hits[0])
    assert len(set(offsets)) > 1, "all 16 crops used the same offset: draw one offset per image"
    np.testing.assert_array_equal(RandomCrop(6, padding=2, seed=0)(x), out)   # seeded
    np.testing.assert_array_equal(RandomCrop(6, padding=0, seed=1)(x), x)     # full size: identity
    gray = RandomCrop(4, padding=0, seed=2)(x[:, 0])                         # (B, H, W)
    assert gray.shape == (B, 4, 4), f"grayscale crop shape {gray.shape}"
    try:
        RandomCrop(9, padding=1)(x)
    except ValueError as e:
        assert "9" in str(e) and "8" in str(e), f"name crop and padded size, got: {e}"
    else:
        raise AssertionError("a 9x9 crop of an 8x8 padded image must raise ValueError")
    ### BEGIN HIDDEN TESTS
    rect = RandomCrop((3, 5), padding=1, seed=4)(x)
    assert rect.shape == (B, 3, 3, 5)
    ### END HIDDEN TESTS
    print("test_unit_random_crop passed")


test_unit_random_crop()

# %% [markdown]
# ## 5. Real datasets (provided infrastructure)
#
# Everything so far works on any arrays. Now the arrays become real. The loaders are
# provided: `datasets.py` next to this notebook (read it; you do not write it) becomes
# `tinytorch.data.datasets`, which your workspace's package has from the start.
#
# | loader | what | returns | where the files are |
# | --- | --- | --- | --- |
# | `load_tinydigits()` | 5,000 real MNIST digits, balanced, 4,000 train / 1,000 test | `x` (N, 28, 28) uint8, `y` (N,) int64 | inside the package (offline) |
# | `load_tinytalks()` | about 3,000 question/answer pairs, 5 levels, train/val/test | arrays of `str` | inside the package (offline) |
# | `load_mnist(root=None, download=False)` | 60,000 / 10,000 digits | `x` (N, 28, 28) uint8, `y` (N,) int64 | official IDX `.gz` files |
# | `load_cifar10(root=None, download=False)` | 50,000 / 10,000 colour images, 10 classes | `x` (N, 3, 32, 32) uint8, `y` (N,) int64 | official `cifar-10-batches-py/` |
#
# All image loaders return `((x_train, y_train), (x_test, y_test))` as NumPy arrays;
# `load_tinytalks()` returns `((q_train, a_train), (q_val, a_val), (q_test, a_test))`.
# Images stay uint8 (a quarter of float32's bytes) until a `Normalize` turns a batch into
# float32 at the last moment.
#
# What "production-grade" means for a data loader, and how `datasets.py` does it:
#
# ```
#   problem                              what the code does
#   -------                              ------------------
#   a bundled file got corrupted         sha256 checked at load time (checksums recorded by
#                                        scripts/data/build_*.py)
#   the user already has the files       root=..., or TINYTORCH_DATA=D holding mnist/ and
#                                        cifar-10-batches-py/, else the per-user cache
#   no internet                          an error listing exactly which files to put where
#   the connection drops at 80%          bytes go to FILE.part; the next attempt sends
#                                        "Range: bytes=<size of .part>-" and appends
#   the server sends the wrong bytes     md5 of the official archive checked BEFORE the file
#                                        gets its final name: no half-valid dataset on disk
#   a crash while writing                write to a temporary name, then os.replace (atomic)
#   a malicious pickle (CIFAR batches)   an unpickler that only accepts arrays, bytes, dicts
# ```
#
# A detail worth knowing: MNIST copies in the wild are sometimes *re-compressed*: same
# pixels, different `.gz` bytes, so the official md5 of the `.gz` fails. We therefore check
# downloads against the official `.gz` md5, and files already on disk against the sha256 of
# their *uncompressed* content, which does not depend on the compressor.

# %% nbgrader={"grade": false, "grade_id": "datasets-imports", "locked": true, "schema_version": 3, "solution": false}
from tinytorch.data.datasets import DatasetError, check_tinytalks_answer, load_mnist, load_tinydigits, load_tinytalks

# %% [markdown]
# ## 6. Real data through your loader
#
# TinyDigits ships inside the package: no download, no internet. Look at one digit as
# ASCII (ink above 128 is `#`, above 32 is `+`):

# %%
(x_train, y_train), (x_test, y_test) = load_tinydigits()
print(f"TinyDigits train {x_train.shape} {x_train.dtype}, labels {y_train.shape} {y_train.dtype}; "
      f"test {x_test.shape}")
print("train images per class:", np.bincount(y_train, minlength=10).tolist())
digit = x_train[0]                                          # (28, 28) uint8
for row in digit[4:24:2]:
    print("   " + "".join("#" if v > 128 else "+" if v > 32 else "." for v in row[2:26]))
print(f"   label: {y_train[0]}")

(q_train, a_train), (q_val, a_val), (q_test, a_test) = load_tinytalks()
print(f"\nTinyTalks: {len(q_train)} train, {len(q_val)} val, {len(q_test)} test pairs; "
      f"shared questions between train and test: {len(set(q_train) & set(q_test))}")
for q, a in zip(q_test[:3], a_test[:3]):
    print(f"   Q: {q}\n   A: {a}")
print("   check_tinytalks_answer('hello, ADA', 'Hello, Ada!') ->", check_tinytalks_answer("hello, ADA", "Hello, Ada!"))

# %% [markdown]
# The full datasets need their official files. If `TINYTORCH_DATA` points at a directory
# holding `mnist/`, MNIST loads from there; otherwise you see the exact message a learner
# without internet sees.

# %%
try:
    t0 = time.perf_counter()
    (mx_train, my_train), (mx_test, my_test) = load_mnist()
    print(f"MNIST: train {mx_train.shape}, test {mx_test.shape}, loaded and verified in "
          f"{time.perf_counter() - t0:.2f} s")
except DatasetError as e:
    print(f"{type(e).__name__}:\n{e}")

# %% [markdown]
# ## 7. Systems: what a batch costs, and where the time goes
#
# **Batch memory.** A batch is B copies of one sample's bytes. MNIST-sized images:
#
# ```
#   one image   28 * 28 = 784 values:  uint8 784 B,  float32 3,136 B
#   B = 128     uint8 100,352 B (98 KB)   float32 401,408 B (392 KB)   + labels 128 * 8 B
# ```
#
# We measure it with the Tensors the loader really produces (`memory_footprint()` from
# module 01), with and without `Normalize`:

# %%
digits = TensorDataset(x_train, y_train)
to_float = Normalize(mean=0.1307, std=0.3081)               # MNIST's pixel mean and std
print(f"{'batch':>6} | {'x uint8':>10} | {'x float32':>10} | {'y int64':>8} | float32 / uint8")
for bs in (32, 128, 512):
    xb8, yb = next(iter(DataLoader(digits, batch_size=bs)))
    xb32, _ = next(iter(DataLoader(digits, batch_size=bs, transform=to_float)))
    print(f"{bs:>6} | {xb8.memory_footprint():>10,} | {xb32.memory_footprint():>10,} | "
          f"{yb.memory_footprint():>8,} | {xb32.memory_footprint() / xb8.memory_footprint():.1f}x")

# %% [markdown]
# **Loading vs computing.** A training step waits for its batch, then computes. If loading
# takes a large share, a faster model will not make training faster (Amdahl's law, module
# 14). We time both parts of every step for one epoch over TinyDigits. The "compute" here is
# the forward matmuls of a 784-64-10 MLP written with module 01's Tensor; a real step
# (forward, backward, optimizer) costs roughly three times as much.
#
# Three pipelines:
# 1. batched fetch (`__getitems__`): one NumPy gather per batch;
# 2. per-sample fetch (`collate=default_collate`): B Python calls and a stack per batch;
# 3. batched fetch + augmentation (`RandomCrop(28, padding=2)` then `Normalize`).

# %%
def time_epoch(loader, step):
    """Seconds spent waiting for batches and seconds spent in ``step`` over one epoch."""
    load = compute = 0.0
    it = iter(loader)
    while True:
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            break
        t1 = time.perf_counter()
        step(batch)
        compute += time.perf_counter() - t1
        load += t1 - t0
    return load, compute


rng = np.random.default_rng(0)
W1 = Tensor((rng.standard_normal((784, 64)) * 0.05).astype(np.float32))    # (784, 64)
W2 = Tensor((rng.standard_normal((64, 10)) * 0.05).astype(np.float32))     # (64, 10)


def mlp_forward(batch):
    x, _ = batch
    x = Tensor(x.data.astype(np.float32, copy=False))        # uint8 -> float32 if needed
    return (x.reshape(x.shape[0], 784) @ W1) @ W2            # (B, 10)


augment = Compose([RandomCrop(28, padding=2, seed=0), Normalize(0.1307, 0.3081)])
pipelines = {
    "batched fetch": DataLoader(digits, batch_size=128, shuffle=True, seed=0),
    "per-sample fetch": DataLoader(digits, batch_size=128, shuffle=True, seed=0, collate=default_collate),
    "batched + augment": DataLoader(digits, batch_size=128, shuffle=True, seed=0, transform=augment),
}
results = {}
print(f"{'pipeline':>18} | {'load ms':>8} | {'compute ms':>10} | load share")
for name, loader in pipelines.items():
    # best of two epochs: the first one also warms up caches and NumPy's code paths
    load, comp = min((time_epoch(loader, mlp_forward) for _ in range(2)), key=sum)
    results[name] = load
    print(f"{name:>18} | {1e3 * load:>8.1f} | {1e3 * comp:>10.1f} | {100 * load / (load + comp):5.1f}%")
print(f"per-sample fetch is {results['per-sample fetch'] / results['batched fetch']:.1f}x slower to load "
      f"than batched fetch ({len(digits)} samples, batch 128)")

# %% [markdown]
# Read your numbers: how large is the loading share with per-sample fetching, and how much
# of it does one batched gather remove? Augmentation adds work on every batch: in the CIFAR
# milestone a convolution step takes far longer than this MLP's matmuls, so the same
# augmentation becomes a small share there, while here it can dominate.

# %% nbgrader={"grade": true, "grade_id": "test-module", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_module():
    """TinyDigits through the whole pipeline: one augmented, shuffled epoch, reproducible."""
    (x, y), _ = load_tinydigits()
    ds = TensorDataset(x, y)

    def make():
        aug = Compose([RandomCrop(28, padding=2, seed=1), RandomHorizontalFlip(0.5, seed=2),
                       Normalize(0.1307, 0.3081)])
        return DataLoader(ds, batch_size=100, shuffle=True, seed=3, transform=aug)

    loader = make()
    assert len(loader) == 40, f"4000 samples in batches of 100: expected 40 batches, got {len(loader)}"
    labels, first = [], None
    for xb, yb in loader:
        assert xb.shape == (100, 28, 28) and xb.dtype == np.float32, f"got {xb.shape} {xb.dtype}"
        assert np.isfinite(xb.data).all(), "normalized batch has non-finite values"
        labels.append(yb.data)
        first = xb.data if first is None else first
    labels = np.concatenate(labels)
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), np.bincount(y, minlength=10))
    x0, _ = next(iter(make()))
    np.testing.assert_array_equal(x0.data, first)         # same seeds -> same augmented batch
    print("test_module passed")


test_module()

# %% [markdown]
# ## Reflect
#
# 1. **Keep bytes small until the last moment.** CIFAR-10's 50,000 training images take
#    50,000 x 3,072 = 153.6 MB as uint8 and 614 MB as float32. Your loader keeps the
#    dataset as uint8 and converts one batch at a time. For a batch of 128 CIFAR images,
#    how many bytes does `Normalize` allocate? What would happen on an 8 GB laptop if you
#    converted all of ImageNet-1k (1.28 M images at 224 x 224 x 3) to float32 up front?
# 2. **Where the time goes.** Your measurement gave the loading share of an epoch for three
#    pipelines. Suppose the compute of a CNN step is 50x that of the MLP forward you timed.
#    What share would loading have then? Which of these would you do first if loading were
#    60% of the step: a faster model, a background thread that prepares the next batch
#    while the current one computes (prefetching), or caching decoded images? Why?
# 3. **Seeds as functions.** The order of epoch e is `permutation(rng([seed, e]))` instead of
#    one generator advancing forever. Name two things this makes easy (hint: resuming from a
#    checkpoint at epoch 7; eight workers that must each take a different slice of the same
#    permutation). What would go wrong with a single generator shared by the loader and the
#    augmentations?
# 4. **drop_last.** With 50,000 images and batch 128, the last batch holds 80 images. Why
#    might you drop it during training but never during evaluation? What does a batch of 1
#    do to a layer that normalizes over the batch?
# 5. **Trust, then verify.** A downloaded file goes to `FILE.part` and only gets its final
#    name after its checksum matches. What failure would a learner see, and when, if the
#    loader wrote straight to `FILE` and the connection dropped at 80%? Why does checking
#    the *uncompressed* content make the MNIST check robust to a re-compressed copy, and
#    what does it cost (hint: you measured the load time above)?
