#| export data.datasets
"""Real datasets: TinyDigits and TinyTalks (bundled), MNIST and CIFAR-10 (official files).

Provided with module 08 (read it; you do not write it): `tito export` turns this file into
``tinytorch.data.datasets``, and a learner's workspace has it from the start. Module 08's
lesson (section 5) says what each loader returns and why the code is built this way.
"""

import gzip
import hashlib
import http.client
import json
import os
import pickle
import re
import shutil
import socket
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

__all__ = ["load_tinydigits", "load_tinytalks", "tinytalks_records", "check_tinytalks_answer",
           "normalize_answer", "load_mnist", "load_cifar10", "cache_dir", "download_file", "DatasetError",
           "DatasetNotFoundError", "ChecksumError", "DownloadError", "CIFAR10_CLASSES"]


# --- Errors and the bundled datasets --------------------------------------------------
#
# Four exception types tell the caller what went wrong. `DatasetNotFoundError` is also a
# `FileNotFoundError`, so generic code that handles missing files keeps working.

class DatasetError(RuntimeError):
    """A dataset is missing, corrupt, or could not be downloaded."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The files are not on this machine (and downloading was not asked for or failed)."""


class ChecksumError(DatasetError):
    """A file's checksum differs from the published one."""


class DownloadError(DatasetError):
    """A download failed (server error, connection lost, too many truncated transfers)."""


# Checksums of the bundled files, as recorded by scripts/data/build_*.py (SHA256SUMS).
BUNDLED_SHA256 = {
    "tinydigits.npz": "e0ecf57e9909c8e8913e77b40d33cc957f7ef0b01c166229e7e57fd7b1c6b68f",
    "tinytalks.json.gz": "9ccf46fd2ab5d8426f5ebd023f3580378b8646fcb605f12b56cd9ffaa93cb6d1",
}


def _digest(path, algo="sha256", chunk=1 << 20):
    """Hex digest of a file (``algo``: "sha256", or "md5" where a mirror publishes only that)."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def bundled_path(name):
    """Path of a data file shipped inside the package (``tinytorch/data/files/NAME``),
    verified against the checksum recorded when it was built."""
    import tinytorch

    # __path__ rather than __file__: it also works when tinytorch is a namespace package
    candidates = [Path(p) / "data" / "files" / name for p in tinytorch.__path__ if Path(p).is_dir()]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise DatasetNotFoundError(
            f"The bundled file {name} is missing (looked in {', '.join(str(c.parent) for c in candidates)}). "
            "It ships with tinytorch: reinstall the package or restore tinytorch/data/files/.")
    expected = BUNDLED_SHA256.get(name)
    if expected is not None:
        got = _digest(path)
        if got != expected:
            raise ChecksumError(
                f"The bundled file {path} is corrupt: sha256 {got}, expected {expected}. "
                "Reinstall tinytorch or restore the file.")
    return path


def load_tinydigits():
    """TinyDigits: 5,000 real MNIST digits, balanced, shipped with the package (offline).

    Returns ``((x_train, y_train), (x_test, y_test))``:
    ``x_train`` (4000, 28, 28) uint8, ``y_train`` (4000,) int64,
    ``x_test`` (1000, 28, 28) uint8, ``y_test`` (1000,) int64. Datasheet: data/files/tinydigits.md.
    """
    with np.load(bundled_path("tinydigits.npz"), allow_pickle=False) as z:
        return (z["x_train"], z["y_train"]), (z["x_test"], z["y_test"])


def _tinytalks_doc():
    with gzip.open(bundled_path("tinytalks.json.gz"), "rt", encoding="utf-8") as f:
        return json.load(f)


def load_tinytalks(with_levels=False):
    """TinyTalks: about 3,000 question-answer pairs in 5 difficulty levels (offline).

    Returns ``((q_train, a_train), (q_val, a_val), (q_test, a_test))``: NumPy arrays of
    ``str``; no question is shared between splits. With ``with_levels=True`` every split is
    ``(questions, answers, levels)``, levels an int64 array of 1..5. Datasheet:
    data/files/tinytalks.md; check a generated answer with ``check_tinytalks_answer``.
    """
    doc = _tinytalks_doc()
    out = []
    for split in ("train", "val", "test"):
        recs = doc[split]
        q = np.array([r["q"] for r in recs], dtype=str)
        a = np.array([r["a"] for r in recs], dtype=str)
        if with_levels:
            out.append((q, a, np.array([r["level"] for r in recs], dtype=np.int64)))
        else:
            out.append((q, a))
    return tuple(out)


def tinytalks_records(split="train"):
    """The records of one split as dicts ``{"q", "a", "level", "family"}``."""
    doc = _tinytalks_doc()
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    return list(doc[split])


def normalize_answer(text):
    """Lower case, letters/digits/spaces only, single spaces: ``'Hello, Ada!' -> 'hello ada'``."""
    text = re.sub(r"[^a-z0-9 ]+", " ", str(text).lower())
    return " ".join(text.split())


def check_tinytalks_answer(generated, expected):
    """True when a generated answer matches the expected one after ``normalize_answer``."""
    return normalize_answer(generated) == normalize_answer(expected)


# --- Where the big datasets live ------------------------------------------------------
#
#   load_mnist(root=D)      ->  look in D only (download into D if asked)
#   load_mnist()            ->  look in $TINYTORCH_DATA, then the per-user cache;
#                               downloads go to the cache (~/.cache/tinytorch on Linux)

def cache_dir():
    """The per-user cache: ``$TINYTORCH_CACHE``, else ``%LOCALAPPDATA%\\tinytorch`` on Windows,
    else ``$XDG_CACHE_HOME/tinytorch``, else ``~/.cache/tinytorch``."""
    if os.environ.get("TINYTORCH_CACHE"):
        return Path(os.environ["TINYTORCH_CACHE"]).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "tinytorch"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tinytorch"


def _search_roots(root):
    """Directories to look in, in order, and the one a download goes to."""
    if root is not None:
        root = Path(root).expanduser()
        return [root], root
    roots = []
    if os.environ.get("TINYTORCH_DATA"):
        roots.append(Path(os.environ["TINYTORCH_DATA"]).expanduser())
    roots.append(cache_dir())
    return roots, cache_dir()


# --- Downloading safely ---------------------------------------------------------------
#
#   attempt 1:  GET file                      200, 9.9 MB promised, 7.9 MB arrive, connection drops
#               FILE.part holds 7.9 MB        (kept)
#   attempt 2:  GET file, Range: bytes=7.9M-  206 Partial Content, the last 2.0 MB
#               FILE.part holds 9.9 MB  ->  md5 ok?  yes -> os.replace(FILE.part, FILE)
#                                                    no  -> delete FILE.part, ChecksumError
#
# Tests serve files from a local HTTP server on 127.0.0.1 to exercise every branch: a good
# file, a truncated transfer that resumes, a checksum mismatch and a server error.

DOWNLOAD_RETRIES = 3          # attempts per URL (each one resumes where the last stopped)
RETRY_WAIT = 0.5              # seconds before a retry, times the attempt number
CHUNK = 1 << 16


class _Progress:
    def __init__(self, name, total, done=0, stream=None, enabled=True):
        self.name, self.total, self.done = name, total, done
        self.stream = stream if stream is not None else sys.stderr
        self.enabled, self.start, self.last = enabled, time.perf_counter(), 0.0

    def update(self, n):
        self.done += n
        now = time.perf_counter()
        if self.enabled and (now - self.last > 0.2 or (self.total and self.done >= self.total)):
            self.last = now
            self.stream.write("\r" + self.line(now))
            self.stream.flush()

    def line(self, now):
        mb = self.done / 1e6
        rate = mb / max(now - self.start, 1e-9)
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
            return f"  {self.name} [{bar}] {100 * frac:5.1f}% {mb:7.1f}/{self.total / 1e6:.1f} MB {rate:5.1f} MB/s"
        return f"  {self.name} {mb:7.1f} MB {rate:5.1f} MB/s"

    def close(self):
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def download_file(url, dest, md5=None, sha256=None, progress=True, retries=None, timeout=30):
    """Download ``url`` to ``dest`` safely; return ``dest``.

    - bytes go to ``dest.part`` first; an interrupted transfer is resumed with an HTTP
      ``Range`` request (the next attempt, or the next call, continues where it stopped);
    - the complete file is checked against ``md5`` / ``sha256`` when given; a mismatch
      deletes the partial file and raises ``ChecksumError``;
    - only a verified file is renamed to ``dest`` (atomic): ``dest`` is never partial.
    Raises ``DownloadError`` when the server answers with an error or the transfer keeps
    failing after ``retries`` attempts.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    retries = DOWNLOAD_RETRIES if retries is None else retries
    last_error = None
    for attempt in range(1, retries + 1):
        have = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url, headers={"User-Agent": "tinytorch-datasets"})
        if have:
            request.add_header("Range", f"bytes={have}-")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status = response.status
                length = response.headers.get("Content-Length")
                length = int(length) if length is not None else None
                if have and status == 206:
                    mode, total = "ab", (have + length if length is not None else None)
                else:  # 200: the server sent the whole file (it ignored or we sent no Range)
                    mode, total, have = "wb", length, 0
                bar = _Progress(dest.name, total, have, enabled=progress)
                received = 0
                with open(part, mode) as f:
                    while True:
                        block = response.read(CHUNK)
                        if not block:
                            break
                        f.write(block)
                        received += len(block)
                        bar.update(len(block))
                bar.close()
                if length is not None and received < length:
                    raise http.client.IncompleteRead(b"", length - received)
            break  # complete
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:  # nothing left to send: the partial file is complete
                break
            last_error = f"HTTP {e.code} {e.reason}"
            if e.code < 500:  # 404, 403: retrying will not help
                raise DownloadError(f"Downloading {url} failed: the server answered {last_error}.") from None
        except (http.client.HTTPException, ConnectionError, TimeoutError, OSError) as e:
            if isinstance(e, urllib.error.URLError) and not isinstance(e.reason, (socket.timeout, TimeoutError)):
                raise DownloadError(f"Cannot reach {url}: {e.reason}.") from None
            kept = part.stat().st_size if part.exists() else 0
            last_error = f"{type(e).__name__}: {e} (kept {kept:,} bytes to resume from)"
        if attempt < retries:
            time.sleep(RETRY_WAIT * attempt)
    else:
        raise DownloadError(f"Downloading {url} failed after {retries} attempts: {last_error}. "
                            f"Run again to resume from {part}.")
    for algo, want in (("md5", md5), ("sha256", sha256)):
        if want:
            got = _digest(part, algo)
            if got != want:
                size = part.stat().st_size
                part.unlink()
                raise ChecksumError(f"Downloaded {url} ({size:,} bytes) has {algo} {got}, expected {want}: "
                                    "the file is corrupt or not the official one. It was deleted; try again.")
    os.replace(part, dest)
    return dest


# --- MNIST: IDX files -----------------------------------------------------------------
#
# IDX is a tiny binary format: a magic number whose third byte is the element type (0x08 =
# unsigned byte) and whose fourth is the number of dimensions, then each dimension as a
# big-endian uint32, then the raw values:
#
#   00 00 08 03 | 00 00 ea 60 | 00 00 00 1c | 00 00 00 1c | 784 bytes of image 0 | ...
#   magic: ubyte, 3 dims   60000          28            28
#   file size = 16 + 60000 * 28 * 28 = 47,040,016 bytes   (a shorter file is truncated)

MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",   # PyTorch's copy of the official files
    "http://yann.lecun.com/exdb/mnist/",                 # the original home
]
# name -> (md5 of the official .gz, sha256 of the uncompressed IDX content, shape).
# Downloads are checked against the official .gz md5. A file already on disk is checked on
# its *uncompressed* content: re-compressing the same IDX bytes (as some copies do) changes
# the .gz checksum but not the data.
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": ("f68b3c2dcbeaaa9fbdd348bbdeb94873",
                                   "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                                   (60000, 28, 28)),
    "train-labels-idx1-ubyte.gz": ("d53e105ee54ea40749a09fcbcd1e9432",
                                   "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                                   (60000,)),
    "t10k-images-idx3-ubyte.gz": ("9fb629c4189551a2d022fa330f9573f3",
                                  "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                                  (10000, 28, 28)),
    "t10k-labels-idx1-ubyte.gz": ("ec29112dd5afa0611ce80d1b7f02629c",
                                  "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                                  (10000,)),
}


def parse_idx(raw, name="IDX data"):
    """Decode IDX bytes (the MNIST format) into a uint8 array.

    Layout: 2 zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions,
    then one big-endian uint32 per dimension, then the values row-major.
    """
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DatasetError(f"{name} is not an IDX file of unsigned bytes (magic {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{name} is truncated inside its header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims)) + header
    if len(raw) != expected:
        raise DatasetError(f"{name} is truncated or corrupt: its header promises {dims} "
                           f"({expected:,} bytes), the file holds {len(raw):,} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_mnist_file(roots, name):
    for r in roots:
        for d in (r / "mnist", r / "MNIST" / "raw", r):
            for candidate in (d / name, d / name[:-3]):  # .gz, or already uncompressed
                if candidate.is_file():
                    return candidate
    return None


def _read_mnist_file(path, name):
    md5_gz, sha_raw, shape = MNIST_FILES[name]
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise DatasetError(f"{path} is truncated or not a gzip file ({e}). Delete it and "
                               "download again (load_mnist(download=True)) or copy the official file.") from None
    got = hashlib.sha256(data).hexdigest()
    if got != sha_raw:
        raise ChecksumError(f"{path} does not hold the official MNIST data (sha256 of the uncompressed "
                            f"content {got}, expected {sha_raw}). Delete it and download again.")
    arr = parse_idx(data, str(path))
    if arr.shape != shape:
        raise DatasetError(f"{path}: expected shape {shape}, got {arr.shape}")
    return arr


def _missing_message(what, files, folder, roots):
    looked = ", ".join(str(r) for r in roots)
    names = "\n".join(f"    {folder}/{n}" for n in files)
    return (f"{what} is not on this machine (looked in: {looked}).\n"
            f"Either download it: call with download=True (needs internet), or place these files\n"
            f"{names}\n"
            f"under one directory D and pass root=D, or set the environment variable TINYTORCH_DATA=D.")


def load_mnist(root=None, download=False, base_url=None, progress=True):
    """MNIST: 60,000 training and 10,000 test handwritten digits.

    Returns ``((x_train, y_train), (x_test, y_test))``: ``x_train`` (60000, 28, 28) uint8,
    ``y_train`` (60000,) int64, ``x_test`` (10000, 28, 28) uint8, ``y_test`` (10000,) int64.

    Looks for ``mnist/<file>.gz`` (the four official IDX files) under ``root`` if given,
    else under ``$TINYTORCH_DATA`` and then the per-user cache (``cache_dir()``). With
    ``download=True`` missing files are fetched from the official mirrors (or ``base_url``,
    or ``$TINYTORCH_MNIST_URL``) into ``root`` or the cache, verified by md5, resumed if
    interrupted. Every file is verified (sha256 of its uncompressed content) before use:
    a corrupt or truncated file raises, never a partial dataset.
    """
    roots, dest_root = _search_roots(root)
    found = {name: _find_mnist_file(roots, name) for name in MNIST_FILES}
    missing = [n for n, p in found.items() if p is None]
    if missing and not download:
        raise DatasetNotFoundError(_missing_message("MNIST", list(MNIST_FILES), "mnist", roots))
    if missing:
        base = base_url or os.environ.get("TINYTORCH_MNIST_URL")
        mirrors = [base] if base else MNIST_MIRRORS
        for name in missing:
            errors = []
            for mirror in mirrors:
                try:
                    found[name] = download_file(mirror.rstrip("/") + "/" + name, dest_root / "mnist" / name,
                                           md5=MNIST_FILES[name][0], progress=progress)
                    break
                except DatasetError as e:
                    errors.append(str(e))
            else:
                raise DownloadError("Could not download MNIST:\n  " + "\n  ".join(errors) + "\n"
                                    + _missing_message("MNIST", missing, "mnist", [dest_root]))
    arrays = {name: _read_mnist_file(path, name) for name, path in found.items()}
    x_train = arrays["train-images-idx3-ubyte.gz"]
    y_train = arrays["train-labels-idx1-ubyte.gz"].astype(np.int64)
    x_test = arrays["t10k-images-idx3-ubyte.gz"]
    y_test = arrays["t10k-labels-idx1-ubyte.gz"].astype(np.int64)
    return (x_train, y_train), (x_test, y_test)


# --- CIFAR-10: pickled batches --------------------------------------------------------
#
# The "python version" of CIFAR-10 is five training batches and one test batch, each a
# pickled dict: `b"data"` a (10000, 3072) uint8 array (1,024 red, then 1,024 green, then
# 1,024 blue values per row, each a 32x32 plane) and `b"labels"` a list of 10,000 ints.
# `reshape(-1, 3, 32, 32)` turns a row into channels-first image layout, no copy needed.

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"  # of the official cifar-10-python.tar.gz
CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR10_TEST = ["test_batch"]
CIFAR10_COUNTS = (50000, 10000)  # training, test images
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, bytes and NumPy arrays, and nothing else: a downloaded pickle
    cannot run code."""

    def find_class(self, module, name):
        allowed = {("numpy", "ndarray"), ("numpy", "dtype"),
                   ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                   ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                   ("_codecs", "encode")}  # protocol-2 pickles store bytes via _codecs.encode
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a CIFAR-10 batch")
        if module == "_codecs":
            import codecs

            return codecs.encode
        if module.startswith("numpy") and module != "numpy":
            try:
                from numpy._core import multiarray
            except ImportError:  # NumPy 1.x
                from numpy.core import multiarray
            return getattr(multiarray, name)
        return getattr(np, name)


def _read_cifar_batch(path):
    try:
        with open(path, "rb") as f:
            d = _ArraysOnlyUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise DatasetError(f"{path} is truncated or corrupt ({type(e).__name__}: {e}). Delete the "
                           f"{CIFAR10_DIR} directory and download or rebuild it.") from None
    try:
        data = np.asarray(d[b"data"], dtype=np.uint8)
        labels = np.asarray(d[b"labels"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as e:
        raise DatasetError(f"{path} is not a CIFAR-10 batch (missing or bad {e})") from None
    if data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (data.shape[0],):
        raise DatasetError(f"{path}: expected data (N, 3072) and N labels, got data {data.shape}, "
                           f"labels {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(f"{path}: labels outside 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def _find_cifar_dir(roots):
    for r in roots:
        for d in (r / CIFAR10_DIR, r / "cifar10" / CIFAR10_DIR, r):
            if (d / "data_batch_1").is_file():
                return d
    return None


def _safe_extract(tar_path, dest_root):
    """Extract the official archive into ``dest_root/cifar-10-batches-py`` atomically."""
    tmp = Path(tempfile.mkdtemp(dir=dest_root, prefix=".cifar-extract-"))
    try:
        with tarfile.open(tar_path, "r:gz") as tar:
            for m in tar.getmembers():
                p = Path(m.name)
                if p.is_absolute() or ".." in p.parts or not (m.isfile() or m.isdir()):
                    raise DatasetError(f"{tar_path}: refusing unsafe archive member {m.name!r}")
            if hasattr(tarfile, "data_filter"):  # Python 3.12+ (and security backports)
                tar.extractall(tmp, filter="data")
            else:
                tar.extractall(tmp)
        src = tmp / CIFAR10_DIR
        if not (src / "data_batch_1").is_file():
            raise DatasetError(f"{tar_path} does not contain {CIFAR10_DIR}/")
        final = dest_root / CIFAR10_DIR
        os.replace(src, final)
        return final
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DatasetError(f"{tar_path} is truncated or corrupt ({e}); delete it and download again.") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_cifar10(root=None, download=False, url=None, progress=True):
    """CIFAR-10: 50,000 training and 10,000 test colour images of 10 classes (``CIFAR10_CLASSES``).

    Returns ``((x_train, y_train), (x_test, y_test))``: ``x_train`` (50000, 3, 32, 32) uint8
    (channels first, R, G, B), ``y_train`` (50000,) int64, ``x_test`` (10000, 3, 32, 32),
    ``y_test`` (10000,) int64.

    Looks for the extracted ``cifar-10-batches-py/`` directory under ``root``, else under
    ``$TINYTORCH_DATA`` and the per-user cache. With ``download=True`` it fetches the
    official ``cifar-10-python.tar.gz`` (about 163 MB; ``url`` or ``$TINYTORCH_CIFAR10_URL``
    override the source), verifies its md5, resumes if interrupted, and extracts it
    atomically. Batches are read with an unpickler that only accepts arrays; a truncated
    or corrupt batch raises, never a partial dataset. (An extracted directory has no
    official per-file checksum, so its files are checked for structure and size instead.)
    """
    roots, dest_root = _search_roots(root)
    folder = _find_cifar_dir(roots)
    if folder is None and not download:
        raise DatasetNotFoundError(_missing_message(
            "CIFAR-10", CIFAR10_TRAIN + CIFAR10_TEST + ["batches.meta"], CIFAR10_DIR, roots)
            + f"\n(The official archive {CIFAR10_URL} unpacks to exactly that directory.)")
    if folder is None:
        source = url or os.environ.get("TINYTORCH_CIFAR10_URL") or CIFAR10_URL
        dest_root.mkdir(parents=True, exist_ok=True)
        tar_path = dest_root / "cifar-10-python.tar.gz"
        try:
            download_file(source, tar_path, md5=CIFAR10_MD5, progress=progress)
        except DatasetError as e:
            raise DownloadError(f"Could not download CIFAR-10: {e}\n" + _missing_message(
                "CIFAR-10", CIFAR10_TRAIN + CIFAR10_TEST + ["batches.meta"], CIFAR10_DIR, [dest_root])) from None
        folder = _safe_extract(tar_path, dest_root)
        tar_path.unlink()
    missing = [n for n in CIFAR10_TRAIN + CIFAR10_TEST if not (folder / n).is_file()]
    if missing:
        raise DatasetError(f"{folder} is incomplete: {', '.join(missing)} is missing. Delete the directory "
                           "and download or rebuild it.")
    parts = {name: _read_cifar_batch(folder / name) for name in CIFAR10_TRAIN + CIFAR10_TEST}
    x_train = np.concatenate([parts[n][0] for n in CIFAR10_TRAIN])
    y_train = np.concatenate([parts[n][1] for n in CIFAR10_TRAIN])
    x_test, y_test = parts["test_batch"]
    if (len(x_train), len(x_test)) != CIFAR10_COUNTS:
        raise DatasetError(f"{folder}: expected 50,000 training and 10,000 test images, got "
                           f"{len(x_train):,} and {len(x_test):,}")
    return (x_train, y_train), (x_test, y_test)
