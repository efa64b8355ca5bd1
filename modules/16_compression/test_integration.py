"""Integration: module 16 on the exported package and the trained milestone-4 CNN (shipped with
tinytorch, no dataset needed): structured pruning gives a smaller CNN that computes exactly what
the big one computes with those filters removed, and a 90%-pruned CNN saved sparse is a fraction
of the checkpoint's file and loads back to the same predictions."""
import os

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.spatial import BatchNorm2d, Conv2d
from tinytorch.models.pretrained import checkpoint_path, load_pretrained
from tinytorch.optimization.compression import (
    ln_structured_mask,
    load_sparse,
    magnitude_prune,
    save_sparse,
    sparsity_report,
    structured_prune,
)

IMAGES = np.random.default_rng(0).integers(0, 256, (6, 3, 32, 32), dtype=np.uint8)


def test_structured_cnn_is_the_dense_cnn_without_those_filters():
    cnn = load_pretrained("cifar10_cnn")
    small = structured_prune(cnn, 0.5, norm=1)
    assert small.num_parameters() < 0.3 * cnn.num_parameters()
    convs = [l for l in small.layers if isinstance(l, Conv2d)]
    assert [c.out_channels for c in convs] == [16, 16, 32, 32, 64]
    assert [c.in_channels for c in convs] == [3, 16, 16, 32, 32] and small.layers[-1].in_features == 1024
    zeroed = load_pretrained("cifar10_cnn")
    layers = zeroed.layers
    for i, layer in enumerate(layers):
        if isinstance(layer, Conv2d):
            keep = ln_structured_mask(cnn.layers[i].weight.data, 0.5, n=1, dim=0)[:, 0, 0, 0]
            bn = layers[i + 1]
            assert isinstance(bn, BatchNorm2d)
            bn.weight.data *= keep                           # the channel's output becomes 0
            bn.bias.data *= keep
    x = cnn.preprocess(IMAGES)
    with no_grad():
        np.testing.assert_allclose(small(x).data, zeroed(x).data, rtol=1e-4, atol=1e-4)


def test_pruned_cnn_saved_sparse_is_small_and_identical(tmp_path):
    cnn = load_pretrained("cifar10_cnn")
    magnitude_prune(cnn, 0.9, scope="global")
    assert abs(sparsity_report(cnn)[-1]["sparsity"] - 0.9) < 1e-4
    path = save_sparse(cnn, tmp_path / "cnn90.npz", values="float16",
                       preprocess={"type": "image", "mean": [0.5] * 3, "std": [0.25] * 3})
    assert os.path.getsize(path) < checkpoint_path("cifar10_cnn").stat().st_size / 8
    back = load_sparse(path)
    x = cnn.preprocess(IMAGES)
    with no_grad():
        want, got = cnn(x).data, back(x).data
    np.testing.assert_allclose(got, want, rtol=2e-2, atol=2e-2)        # float16 values
    assert (got.argmax(1) == want.argmax(1)).all()
    assert back.preprocess(IMAGES).shape == (6, 3, 32, 32)
