#!/usr/bin/env python3
"""Build TinyDigits: 5,000 real MNIST digits, balanced, with a fixed train/test split.

    python scripts/data/build_tinydigits.py [MNIST_PARENT_DIR] [--out DIR]

reads ``MNIST_PARENT_DIR/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` (default:
``$TINYTORCH_DATA``) and writes

    tinytorch/data/files/tinydigits.npz   x_train (4000, 28, 28) uint8, y_train (4000,) int64,
                                          x_test (1000, 28, 28) uint8,  y_test (1000,) int64
    tinytorch/data/files/tinydigits.md    the datasheet (counts, checksums, provenance)

and records the ``.npz`` sha256 in ``scripts/data/SHA256SUMS``. With ``--out DIR`` it writes
the ``.npz`` into DIR only (no datasheet, no checksum record): the tests rebuild that way and
compare bytes with the shipped file.

Selection: 400 digits of each class from MNIST's *training* set go to TinyDigits' train
split, 100 of each class from MNIST's *test* set go to its test split, so no writer
overlap can leak from MNIST's own split into ours. Indices are drawn without replacement
with a fixed seed; images are kept at 28x28 (no resampling: they are MNIST's pixels).
The result is byte-for-byte reproducible.
"""
from __future__ import annotations

import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FILES, atomic_write_bytes, data_root, npz_bytes, record_checksum, sha256_file  # noqa: E402

SEED = 20240808
TRAIN_PER_CLASS = 400
TEST_PER_CLASS = 100


def read_idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes())
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise SystemExit(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise SystemExit(f"{path}: header says {dims} but holds {data.size} bytes")
    return data.reshape(dims)


def pick(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    chosen = [rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in range(10)]
    idx = np.concatenate(chosen)
    return idx[rng.permutation(idx.size)]  # classes interleaved: any prefix is near-balanced


def main(argv: list[str]) -> None:
    out_dir = None
    if "--out" in argv:
        i = argv.index("--out")
        out_dir = Path(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    mnist = data_root(argv[1] if len(argv) > 1 else None) / "mnist"
    xtr = read_idx(mnist / "train-images-idx3-ubyte.gz")
    ytr = read_idx(mnist / "train-labels-idx1-ubyte.gz")
    xte = read_idx(mnist / "t10k-images-idx3-ubyte.gz")
    yte = read_idx(mnist / "t10k-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(SEED)
    itr, ite = pick(ytr, TRAIN_PER_CLASS, rng), pick(yte, TEST_PER_CLASS, rng)
    arrays = {
        "x_train": xtr[itr], "y_train": ytr[itr].astype(np.int64),
        "x_test": xte[ite], "y_test": yte[ite].astype(np.int64),
        "mnist_index_train": itr.astype(np.int64), "mnist_index_test": ite.astype(np.int64),
    }
    out = (out_dir or FILES) / "tinydigits.npz"
    atomic_write_bytes(out, npz_bytes(arrays))
    digest = sha256_file(out)
    if out_dir is not None:
        print(f"wrote {out}: sha256 {digest}")
        return
    record_checksum(out.name, digest)
    content = hashlib.sha256(b"".join(arrays[k].tobytes() for k in sorted(arrays))).hexdigest()
    write_datasheet(arrays, out, digest, content)
    print(f"wrote {out.relative_to(FILES.parents[2])}: {out.stat().st_size:,} bytes, sha256 {digest}")


def write_datasheet(a: dict, out: Path, digest: str, content: str) -> None:
    def counts(y):
        return ", ".join(f"{c}: {n}" for c, n in zip(*np.unique(y, return_counts=True)))

    text = f"""# TinyDigits: datasheet

TinyDigits is a small, balanced subset of MNIST shipped inside the `tinytorch` package so that
the foundation lessons and milestones run offline in seconds. Load it with
`from tinytorch.data.datasets import load_tinydigits`.

| split | images | shape | dtype | per class |
| --- | --- | --- | --- | --- |
| train | {len(a["y_train"]):,} | {a["x_train"].shape} | uint8 (0 = background, 255 = ink) | {counts(a["y_train"])} |
| test | {len(a["y_test"]):,} | {a["x_test"].shape} | uint8 | {counts(a["y_test"])} |

Labels are int64 digits 0-9.

## How it was made
`scripts/data/build_tinydigits.py` (seed {SEED}) draws, without replacement, {TRAIN_PER_CLASS} images of every
class from MNIST's 60,000-image training set (train split) and {TEST_PER_CLASS} of every class from
MNIST's 10,000-image test set (test split), then shuffles each split once. Pixels are MNIST's,
unchanged, at 28x28 (no downsampling: the milestones compare MLPs and CNNs on exactly the
images they later meet in full MNIST). `mnist_index_train` / `mnist_index_test` in the file
give the source index of every image in the official IDX files.

Rebuild: `python scripts/data/build_tinydigits.py` with `TINYTORCH_DATA` pointing at a
directory that holds `mnist/*.gz`. The build is byte-reproducible.

- file: `{out.name}`, {out.stat().st_size:,} bytes (compressed `.npz`)
- sha256 of the file: `{digest}` (also in `scripts/data/SHA256SUMS`; the loader verifies it)
- sha256 of the arrays' raw bytes in sorted key order: `{content}`

## Intended use and limits
Teaching and quick experiments: small models train on it in seconds on a laptop CPU.
4,000 training images are too few to compare architectures finely; report full-MNIST
numbers for that (`load_mnist`). MNIST's digits were written by US Census Bureau employees and
high-school students in the 1990s: the handwriting styles are not representative of everyone.

## Licence
MNIST by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, used under Creative Commons
Attribution-Share Alike 3.0 (CC BY-SA 3.0). TinyDigits is a derived subset and is shared under
the same licence; see `LICENSE` in this directory.
"""
    atomic_write_bytes(FILES / "tinydigits.md", text.encode())


if __name__ == "__main__":
    main(sys.argv)
