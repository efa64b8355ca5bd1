"""Cheap checks of milestone 4's building blocks (the training itself lives in the milestone)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tito.manifest import load_manifest

REPO = Path(__file__).resolve().parents[2]


def _milestone():
    return load_manifest(REPO).load_milestone("cnn")


def test_cifar_cnn_has_the_baseline_architecture():
    ms = _milestone()
    from tinytorch.core.tensor import Tensor
    from tinytorch.core.autograd import no_grad

    model = ms.cifar_cnn(0)
    # same layer sizes as the PyTorch baseline: 160,234 parameters
    assert ms.n_params(model) == 160_234, f"expected 160,234 parameters, got {ms.n_params(model):,}"
    model.eval()
    with no_grad():
        out = model(Tensor(np.zeros((2, 3, 32, 32), np.float32)))
    assert out.shape == (2, 10) and out.data.dtype == np.float32


def test_augment_flips_and_crops_without_changing_shape_or_dtype():
    ms = _milestone()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3, 32, 32)).astype(np.float32)
    a = ms.augment(x, np.random.default_rng(1))
    b = ms.augment(x, np.random.default_rng(1))
    assert a.shape == x.shape and a.dtype == np.float32 and a.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(a, b)                      # seeded: deterministic
    assert not np.array_equal(a, x)


def test_as_images_accepts_the_tinydigits_layouts():
    ms = _milestone()
    raw = (np.arange(2 * 28 * 28) % 256).astype(np.uint8).reshape(2, 28, 28)
    for arr in (raw, raw.reshape(2, -1), raw[:, None]):
        img = ms.as_images(arr)
        assert img.shape == (2, 1, 28, 28) and img.dtype == np.float32 and img.max() <= 1.0
