"""MNIST and CIFAR-10 from the shared official-format files, and every way a file can be bad.

The shared MNIST train-images .gz was re-compressed (its .gz md5 differs from the official
one while the uncompressed IDX bytes are canonical): loading it checks the content, which is
why these tests pass on it.
"""
from __future__ import annotations

import gzip
import pickle
import shutil

import numpy as np
import pytest

from tinytorch.data import datasets as D

MNIST_NAMES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


@pytest.fixture(scope="module")
def mnist(data_dir):
    if not (data_dir / "mnist" / MNIST_NAMES[0]).is_file():
        pytest.skip(f"{data_dir}/mnist has no MNIST files")
    return D.load_mnist(root=data_dir)


def test_mnist_counts_shapes_dtypes(mnist):
    (x, y), (xt, yt) = mnist
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert x.dtype == np.uint8 and y.dtype == np.int64
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # MNIST's well-known first labels
    assert yt[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_mnist_through_the_environment_variable(data_dir, monkeypatch, mnist):
    monkeypatch.setenv("TINYTORCH_DATA", str(data_dir))
    (x, _), (_, yt) = D.load_mnist()
    np.testing.assert_array_equal(x[:100], mnist[0][0][:100])
    np.testing.assert_array_equal(yt, mnist[1][1])


def test_mnist_missing_gives_instructions(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYTORCH_DATA", raising=False)
    monkeypatch.setenv("TINYTORCH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(D.DatasetNotFoundError) as e:
        D.load_mnist()
    msg = str(e.value)
    for name in MNIST_NAMES:
        assert f"mnist/{name}" in msg
    assert "download=True" in msg and "TINYTORCH_DATA" in msg and str(tmp_path / "cache") in msg
    assert isinstance(e.value, FileNotFoundError)


def copy_mnist(data_dir, dest):
    (dest / "mnist").mkdir(parents=True)
    for n in MNIST_NAMES:
        shutil.copy(data_dir / "mnist" / n, dest / "mnist" / n)
    return dest / "mnist"


def test_truncated_mnist_file(data_dir, tmp_path):
    folder = copy_mnist(data_dir, tmp_path)
    blob = (folder / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(D.DatasetError, match="truncated"):
        D.load_mnist(root=tmp_path)


def test_mnist_with_wrong_content(data_dir, tmp_path):
    folder = copy_mnist(data_dir, tmp_path)
    raw = bytearray(gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[100] = (raw[100] + 1) % 10  # one label changed: a valid file, wrong data
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(D.ChecksumError, match="official MNIST"):
        D.load_mnist(root=tmp_path)


def test_mnist_recompressed_or_uncompressed_is_accepted(data_dir, tmp_path):
    folder = copy_mnist(data_dir, tmp_path)
    raw = gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(raw, compresslevel=1))
    raw_img = gzip.decompress((folder / "t10k-images-idx3-ubyte.gz").read_bytes())
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    (folder / "t10k-images-idx3-ubyte").write_bytes(raw_img)  # already uncompressed
    _, (xt, yt) = D.load_mnist(root=tmp_path)
    assert xt.shape == (10000, 28, 28) and len(yt) == 10000


def test_parse_idx_errors():
    with pytest.raises(D.DatasetError, match="not an IDX"):
        D.parse_idx(b"hello world")
    header = bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big")
    assert D.parse_idx(header + bytes(5)).shape == (5,)
    with pytest.raises(D.DatasetError, match="truncated"):
        D.parse_idx(header + bytes(4))


# -- CIFAR-10 ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cifar(cifar_root):
    return D.load_cifar10(root=cifar_root)


def test_cifar10_counts_shapes_dtypes(cifar):
    (x, y), (xt, yt) = cifar
    assert x.shape == (50000, 3, 32, 32) and xt.shape == (10000, 3, 32, 32)
    assert x.dtype == np.uint8 and y.dtype == np.int64 and yt.dtype == np.int64
    assert np.bincount(y).tolist() == [5000] * 10 and np.bincount(yt).tolist() == [1000] * 10
    assert y[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]  # CIFAR-10's canonical first labels
    assert yt[:5].tolist() == [3, 8, 8, 0, 6]


def test_cifar10_channels_are_planar_rgb(cifar, data_dir):
    """Layout check against the lossless subset (exact original pixels of some images): the
    loaded copy (decoded from JPEG) must be within a few levels of them; a wrong channel order
    or a transposition would be off by tens of levels."""
    path = data_dir / "cifar10" / "cifar10-lossless-subset.npz"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    (x, y), _ = cifar
    with np.load(path) as z:
        sub, sub_y = z["x_train"][:5].astype(np.float32), z["y_train"][:5]   # (5, 3, 32, 32)
    channel_means = x.mean(axis=(2, 3), dtype=np.float32)                      # (50000, 3)
    for img, label in zip(sub, sub_y):
        candidates = np.flatnonzero(y == label)
        near = candidates[np.argsort(np.abs(channel_means[candidates] - img.mean(axis=(1, 2))).sum(1))[:20]]
        err = min(np.abs(x[i].astype(np.float32) - img).mean() for i in near)
        assert err < 12, f"no loaded image within 12 levels of a lossless original (best {err:.1f})"


def test_cifar10_from_env_var_layout(cifar_root, monkeypatch, tmp_path):
    monkeypatch.setenv("TINYTORCH_DATA", str(cifar_root))
    monkeypatch.setenv("TINYTORCH_CACHE", str(tmp_path))
    (x, _), _ = D.load_cifar10()
    assert x.shape == (50000, 3, 32, 32)


def small_cifar_dir(tmp_path, cifar_root):
    """A copy of the batches directory made of symlinks (cheap); tests replace one file."""
    src = cifar_root / "cifar-10-batches-py"
    dest = tmp_path / "cifar-10-batches-py"
    dest.mkdir()
    for f in src.iterdir():
        (dest / f.name).symlink_to(f)
    return dest


def replace(path, data: bytes):
    path.unlink()
    path.write_bytes(data)


def test_cifar10_truncated_batch(tmp_path, cifar_root):
    dest = small_cifar_dir(tmp_path, cifar_root)
    blob = (dest / "data_batch_3").read_bytes()
    replace(dest / "data_batch_3", blob[: len(blob) // 3])
    with pytest.raises(D.DatasetError, match="data_batch_3 is truncated or corrupt"):
        D.load_cifar10(root=tmp_path)


def test_cifar10_missing_batch(tmp_path, cifar_root):
    dest = small_cifar_dir(tmp_path, cifar_root)
    (dest / "test_batch").unlink()
    with pytest.raises(D.DatasetError, match="test_batch is missing"):
        D.load_cifar10(root=tmp_path)


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_cifar10_refuses_pickles_that_run_code(tmp_path, cifar_root, capsys):
    dest = small_cifar_dir(tmp_path, cifar_root)
    replace(dest / "data_batch_1", pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2))
    with pytest.raises(D.DatasetError, match="refusing"):
        D.load_cifar10(root=tmp_path)
    assert "never run" not in capsys.readouterr().out


def test_cifar10_missing_gives_instructions(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYTORCH_DATA", raising=False)
    monkeypatch.setenv("TINYTORCH_CACHE", str(tmp_path))
    with pytest.raises(D.DatasetNotFoundError, match="cifar-10-batches-py/data_batch_1"):
        D.load_cifar10()
