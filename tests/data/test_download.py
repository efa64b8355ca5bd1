"""The download path against a real HTTP server on 127.0.0.1: good file, truncated transfer
(resumed with Range), checksum mismatch, server errors, no server; then MNIST and CIFAR-10
end to end through ``download=True`` with small stand-in files (their checksums patched in)."""
from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import socket
import tarfile

import numpy as np
import pytest

from tinytorch.data import datasets as D

PAYLOAD = bytes(range(256)) * 4000  # 1,024,000 bytes
MD5 = hashlib.md5(PAYLOAD).hexdigest()


def test_good_file(file_server, tmp_path, fast_retries):
    file_server.files["blob.bin"] = PAYLOAD
    out = D.download_file(file_server.url + "blob.bin", tmp_path / "blob.bin", md5=MD5, progress=False)
    assert out.read_bytes() == PAYLOAD
    assert not (tmp_path / "blob.bin.part").exists()
    assert file_server.requests == [("/blob.bin", None)]


def test_truncated_transfer_resumes_with_range(file_server, tmp_path, fast_retries, capsys):
    file_server.files["blob.bin"] = PAYLOAD
    file_server.mode["blob.bin"] = "truncate_once"
    out = D.download_file(file_server.url + "blob.bin", tmp_path / "blob.bin", md5=MD5, progress=True)
    assert out.read_bytes() == PAYLOAD
    assert len(file_server.requests) == 2
    assert file_server.requests[1] == ("/blob.bin", f"bytes={len(PAYLOAD) // 2}-"), file_server.requests
    assert "100.0%" in capsys.readouterr().err  # the progress bar reached the end


def test_resume_across_calls_from_a_leftover_part_file(file_server, tmp_path, fast_retries):
    file_server.files["blob.bin"] = PAYLOAD
    (tmp_path / "blob.bin.part").write_bytes(PAYLOAD[:1000])
    D.download_file(file_server.url + "blob.bin", tmp_path / "blob.bin", md5=MD5, progress=False)
    assert (tmp_path / "blob.bin").read_bytes() == PAYLOAD
    assert file_server.requests == [("/blob.bin", "bytes=1000-")]


def test_server_that_ignores_range_restarts_cleanly(file_server, tmp_path, fast_retries):
    file_server.files["blob.bin"] = PAYLOAD
    file_server.mode["blob.bin"] = "ignore_range"
    (tmp_path / "blob.bin.part").write_bytes(b"stale bytes from some other attempt")
    D.download_file(file_server.url + "blob.bin", tmp_path / "blob.bin", md5=MD5, progress=False)
    assert (tmp_path / "blob.bin").read_bytes() == PAYLOAD


def test_always_truncated_gives_up_and_keeps_the_part(file_server, tmp_path, fast_retries):
    file_server.files["blob.bin"] = PAYLOAD
    file_server.mode["blob.bin"] = "truncate"
    with pytest.raises(D.DownloadError, match="after 3 attempts"):
        D.download_file(file_server.url + "blob.bin", tmp_path / "blob.bin", md5=MD5, progress=False)
    assert not (tmp_path / "blob.bin").exists(), "a partial download must never get the final name"
    part = tmp_path / "blob.bin.part"
    assert 0 < part.stat().st_size < len(PAYLOAD)
    assert PAYLOAD.startswith(part.read_bytes())


def test_checksum_mismatch(file_server, tmp_path, fast_retries):
    file_server.files["blob.bin"] = PAYLOAD[:-1] + b"X"
    with pytest.raises(D.ChecksumError, match=MD5):
        D.download_file(file_server.url + "blob.bin", tmp_path / "blob.bin", md5=MD5, progress=False)
    assert not (tmp_path / "blob.bin").exists()
    assert not (tmp_path / "blob.bin.part").exists(), "a corrupt download must be deleted"


def test_server_error_is_retried_then_reported(file_server, tmp_path, fast_retries):
    file_server.files["blob.bin"] = PAYLOAD
    file_server.mode["blob.bin"] = "error"
    with pytest.raises(D.DownloadError, match="HTTP 500"):
        D.download_file(file_server.url + "blob.bin", tmp_path / "blob.bin", md5=MD5, progress=False)
    assert len(file_server.requests) == 3
    assert not (tmp_path / "blob.bin").exists()


def test_not_found_is_not_retried(file_server, tmp_path, fast_retries):
    with pytest.raises(D.DownloadError, match="HTTP 404"):
        D.download_file(file_server.url + "missing.bin", tmp_path / "missing.bin", progress=False)
    assert len(file_server.requests) == 1


def test_no_server_at_all(tmp_path, fast_retries):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(D.DownloadError, match="Cannot reach"):
        D.download_file(f"http://127.0.0.1:{port}/blob.bin", tmp_path / "blob.bin", progress=False)


# -- MNIST and CIFAR-10 through download=True, with small stand-in files -------------------

def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


@pytest.fixture
def fake_mnist(monkeypatch):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (50, 28, 28)),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 50),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (20, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 20),
    }
    files, table = {}, {}
    for name, arr in arrays.items():
        raw = idx_bytes(arr)
        gz = gzip.compress(raw, mtime=0)
        files[name] = gz
        table[name] = (hashlib.md5(gz).hexdigest(), hashlib.sha256(raw).hexdigest(), arr.shape)
    monkeypatch.setattr(D, "MNIST_FILES", table)
    return arrays, files


def test_load_mnist_downloads_into_root_then_loads_offline(file_server, tmp_path, fast_retries, fake_mnist):
    arrays, files = fake_mnist
    file_server.files.update(files)
    file_server.mode["t10k-images-idx3-ubyte.gz"] = "truncate_once"
    (x_tr, y_tr), (x_te, y_te) = D.load_mnist(root=tmp_path, download=True, base_url=file_server.url,
                                              progress=False)
    np.testing.assert_array_equal(x_tr, arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(y_te, arrays["t10k-labels-idx1-ubyte.gz"])
    assert x_tr.dtype == np.uint8 and y_tr.dtype == np.int64 and x_te.shape == (20, 28, 28)
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(files)  # no .part left
    n = len(file_server.requests)
    D.load_mnist(root=tmp_path)  # second time: from disk, no request
    assert len(file_server.requests) == n


def test_load_mnist_download_into_the_cache(file_server, tmp_path, monkeypatch, fast_retries, fake_mnist):
    _, files = fake_mnist
    file_server.files.update(files)
    monkeypatch.delenv("TINYTORCH_DATA", raising=False)
    monkeypatch.setenv("TINYTORCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TINYTORCH_MNIST_URL", file_server.url)
    (x_tr, _), _ = D.load_mnist(download=True, progress=False)
    assert x_tr.shape == (50, 28, 28)
    assert (tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte.gz").is_file()


def test_load_mnist_offline_error_lists_the_files(tmp_path, fast_retries, fake_mnist):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(D.DownloadError) as e:
        D.load_mnist(root=tmp_path, download=True, base_url=f"http://127.0.0.1:{port}/", progress=False)
    msg = str(e.value)
    assert "mnist/train-images-idx3-ubyte.gz" in msg and str(tmp_path) in msg
    assert not (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").exists()


def test_load_mnist_rejects_a_mismatching_download(file_server, tmp_path, fast_retries, fake_mnist):
    _, files = fake_mnist
    file_server.files.update(files)
    file_server.files["train-labels-idx1-ubyte.gz"] = gzip.compress(b"\x00\x00\x08\x01" + bytes(4) , mtime=0)
    with pytest.raises(D.DownloadError, match="md5"):
        D.load_mnist(root=tmp_path, download=True, base_url=file_server.url, progress=False)
    assert not (tmp_path / "mnist" / "train-labels-idx1-ubyte.gz").exists()


def cifar_tar(n_train_per_batch=4, n_test=3) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    xs, ys = [], []
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        def add(name, obj):
            data = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        for i in range(1, 6):
            x = rng.integers(0, 256, (n_train_per_batch, 3072)).astype(np.uint8)
            y = [int(v) for v in rng.integers(0, 10, n_train_per_batch)]
            xs.append(x)
            ys.extend(y)
            add(f"data_batch_{i}", {b"data": x, b"labels": y, b"batch_label": b"training batch"})
        xt = rng.integers(0, 256, (n_test, 3072)).astype(np.uint8)
        add("test_batch", {b"data": xt, b"labels": [1] * n_test})
        add("batches.meta", {b"label_names": [c.encode() for c in D.CIFAR10_CLASSES]})
    return buf.getvalue(), np.concatenate(xs), np.array(ys)


def test_load_cifar10_download_extract_load(file_server, tmp_path, monkeypatch, fast_retries):
    blob, x_expected, y_expected = cifar_tar()
    file_server.files["cifar-10-python.tar.gz"] = blob
    file_server.mode["cifar-10-python.tar.gz"] = "truncate_once"
    monkeypatch.setattr(D, "CIFAR10_MD5", hashlib.md5(blob).hexdigest())
    monkeypatch.setattr(D, "CIFAR10_COUNTS", (20, 3))
    (x_tr, y_tr), (x_te, y_te) = D.load_cifar10(root=tmp_path, download=True,
                                                url=file_server.url + "cifar-10-python.tar.gz", progress=False)
    assert x_tr.shape == (20, 3, 32, 32) and x_tr.dtype == np.uint8 and y_tr.dtype == np.int64
    np.testing.assert_array_equal(x_tr.reshape(20, 3072), x_expected)
    np.testing.assert_array_equal(y_tr, y_expected)
    assert x_te.shape == (3, 3, 32, 32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-10-batches-py"]  # archive and temp dirs gone
    D.load_cifar10(root=tmp_path)  # and again offline


def test_load_cifar10_wrong_archive_checksum(file_server, tmp_path, fast_retries):
    blob, _, _ = cifar_tar()
    file_server.files["cifar-10-python.tar.gz"] = blob  # official md5 will not match
    with pytest.raises(D.DownloadError, match="md5"):
        D.load_cifar10(root=tmp_path, download=True, url=file_server.url + "cifar-10-python.tar.gz",
                       progress=False)
    assert not (tmp_path / "cifar-10-batches-py").exists()
