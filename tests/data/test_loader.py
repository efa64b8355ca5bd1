"""DataLoader, TensorDataset and the batch transforms: properties over many shapes and seeds."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.tensor import Tensor
from tinytorch.data.loader import (
    Compose,
    DataLoader,
    Dataset,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    TensorDataset,
    default_collate,
)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 50), bs=st.integers(1, 20), drop_last=st.booleans(), shuffle=st.booleans(),
       seed=st.integers(0, 2**32))
def test_every_sample_once_per_epoch(n, bs, drop_last, shuffle, seed):
    y = np.arange(n, dtype=np.int64)
    loader = DataLoader(TensorDataset(y), batch_size=bs, drop_last=drop_last, shuffle=shuffle, seed=seed)
    batches = [b[0].data for b in loader]
    assert len(batches) == len(loader)
    expected_len = n // bs if drop_last else -(-n // bs)
    assert len(loader) == expected_len
    seen = np.concatenate(batches) if batches else np.array([], dtype=np.int64)
    if drop_last:
        assert all(len(b) == bs for b in batches)
        assert len(seen) == (n // bs) * bs and len(set(seen.tolist())) == len(seen)
    else:
        assert sorted(seen.tolist()) == y.tolist()
        if not shuffle:
            assert seen.tolist() == y.tolist()


class ListDataset(Dataset):
    """A dataset without __getitems__: the loader must fetch one by one and collate."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((2, 2), i, dtype=np.float32), i


def test_per_sample_datasets_are_collated():
    loader = DataLoader(ListDataset(7), batch_size=3, shuffle=True, seed=1)
    xs, ys = zip(*[(x.data, y.data) for x, y in loader])
    assert [len(y) for y in ys] == [3, 3, 1]
    y = np.concatenate(ys)
    assert sorted(y.tolist()) == list(range(7))
    np.testing.assert_array_equal(np.concatenate(xs)[:, 0, 0], y)  # images stay paired with labels
    assert np.concatenate(xs).dtype == np.float32


def test_batches_are_tensors_with_kept_dtypes():
    x = np.zeros((10, 4), dtype=np.float64)  # float64 data becomes float32 (Tensor's rule)
    y = np.arange(10, dtype=np.int64)
    xb, yb = next(iter(DataLoader(TensorDataset(x, y), batch_size=4)))
    assert isinstance(xb, Tensor) and xb.dtype == np.float32 and yb.dtype == np.int64
    img = np.zeros((10, 28, 28), dtype=np.uint8)
    (ib,) = next(iter(DataLoader(TensorDataset(img), batch_size=4)))
    assert ib.dtype == np.uint8, "uint8 images stay uint8 until a Normalize"


def test_shuffle_is_a_function_of_seed_and_epoch():
    ds = TensorDataset(np.arange(1000))
    a, b = DataLoader(ds, shuffle=True, seed=5), DataLoader(ds, shuffle=True, seed=5)
    orders = [a.order(e) for e in range(4)]
    assert len({o.tobytes() for o in orders}) == 4
    for e in range(4):
        np.testing.assert_array_equal(b.order(e), orders[e])
    c = DataLoader(ds, shuffle=True)  # no seed: still a different order per epoch
    assert not np.array_equal(c.order(0), c.order(1))


def test_bad_arguments():
    ds = TensorDataset(np.arange(4))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            DataLoader(ds, batch_size=bad)
    with pytest.raises(ValueError, match=r"\[3, 2\]"):
        TensorDataset(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="std"):
        Normalize(0.5, 0.0)
    with pytest.raises(ValueError, match="p must be"):
        RandomHorizontalFlip(1.5)
    with pytest.raises(ValueError, match="shape"):
        RandomCrop(2)(np.zeros((4, 4)))


def test_default_collate_errors_name_the_field():
    with pytest.raises(ValueError, match="field 1"):
        default_collate([(np.zeros(2), np.zeros(3)), (np.zeros(2), np.zeros(4))])
    with pytest.raises(ValueError, match="numbers of fields"):
        default_collate([(1, 2), (1,)])


@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 6), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
       pad=st.integers(0, 3), seed=st.integers(0, 1000), data=st.data())
def test_random_crop_is_a_window_of_the_padded_image(b, c, h, w, pad, seed, data):
    sh = data.draw(st.integers(1, h + 2 * pad))
    sw = data.draw(st.integers(1, w + 2 * pad))
    x = np.random.default_rng(seed).integers(1, 255, (b, c, h, w)).astype(np.uint8)
    out = RandomCrop((sh, sw), padding=pad, seed=seed)(x)
    assert out.shape == (b, c, sh, sw) and out.dtype == np.uint8
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    for i in range(b):
        assert any(np.array_equal(out[i], padded[i, :, r:r + sh, q:q + sw])
                   for r in range(h + 2 * pad - sh + 1) for q in range(w + 2 * pad - sw + 1))


def test_crop_offsets_cover_the_range():
    x = (np.arange(36, dtype=np.float32) + 1).reshape(1, 6, 6).repeat(400, axis=0)  # (400, 6, 6), no zeros
    out = RandomCrop(6, padding=1, seed=0)(x)
    # a zero (padding) row or column on a side tells which way the window moved: 3 x 3 offsets
    sides = {((o[0] == 0).all(), (o[-1] == 0).all(), (o[:, 0] == 0).all(), (o[:, -1] == 0).all()) for o in out}
    assert len(sides) == 9, sides


def test_cifar_style_pipeline_end_to_end():
    x = np.random.default_rng(0).integers(0, 256, (64, 3, 32, 32)).astype(np.uint8)
    y = np.arange(64) % 10
    aug = Compose([RandomCrop(32, padding=4, seed=0), RandomHorizontalFlip(seed=1),
                   Normalize([0.49, 0.48, 0.45], [0.25, 0.24, 0.26])])
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, seed=0, transform=aug)
    xb, yb = next(iter(loader))
    assert xb.shape == (16, 3, 32, 32) and xb.dtype == np.float32 and yb.shape == (16,)
    assert np.isfinite(xb.data).all()
    assert -3 < float(xb.data.mean()) < 3


def test_normalize_keeps_float32_and_does_not_modify_input():
    x = np.full((2, 3, 4, 4), 200, dtype=np.uint8)
    before = x.copy()
    out = Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])(x)
    np.testing.assert_array_equal(x, before)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, (200 / 255 - 0.5) / 0.5, rtol=1e-6)
    f = np.ones((3, 5), dtype=np.float32)
    assert Normalize(0.0, 2.0)(f).dtype == np.float32
