"""Cheap checks of milestone 4's building blocks (the training itself lives in the milestone)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tito.manifest import load_manifest
from tito.milestones import load_milestone

REPO = Path(__file__).resolve().parents[2]


def _milestone():
    return load_milestone("cnn", load_manifest(REPO))


def test_cifar_cnn_has_the_baseline_architecture():
    ms = _milestone()
    from tinytorch.core.autograd import no_grad
    from tinytorch.core.tensor import Tensor

    model = ms.cifar_cnn(0)
    # same layer sizes as the PyTorch baseline: 160,234 parameters
    assert ms.n_params(model) == 160_234, f"expected 160,234 parameters, got {ms.n_params(model):,}"
    model.eval()
    with no_grad():
        out = model(Tensor(np.zeros((2, 3, 32, 32), np.float32)))
    assert out.shape == (2, 10) and out.data.dtype == np.float32


def test_train_transform_is_module_08s_crop_flip_normalize():
    ms = _milestone()
    from tinytorch.data.loader import Compose, Normalize, RandomCrop, RandomHorizontalFlip

    x = (np.arange(64 * 3 * 32 * 32) % 251).astype(np.uint8).reshape(64, 3, 32, 32)
    mean, std = np.array([0.5, 0.4, 0.3]), np.array([0.25, 0.25, 0.25])
    t = ms.train_transform(mean, std, seed=1)
    assert isinstance(t, Compose)
    assert [type(s) for s in t.transforms] == [RandomCrop, RandomHorizontalFlip, Normalize]
    a, b = t(x), ms.train_transform(mean, std, seed=1)(x)
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)                      # seeded: deterministic
    plain = Normalize(mean, std)(x)
    assert not np.array_equal(a, plain)                      # crops and flips changed something


def test_as_images_accepts_the_tinydigits_layouts():
    ms = _milestone()
    raw = (np.arange(2 * 28 * 28) % 256).astype(np.uint8).reshape(2, 28, 28)
    for arr in (raw, raw.reshape(2, -1), raw[:, None]):
        img = ms.as_images(arr)
        assert img.shape == (2, 1, 28, 28) and img.dtype == np.float32 and img.max() <= 1.0
