"""Helpers shared by the dataset build scripts (not part of the tinytorch package).

Everything here is about *reproducible bytes*: the same inputs must give the same file, so
that the checksum a build records is meaningful and a rebuild can be compared with the
shipped file.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "tinytorch" / "data" / "files"
SUMS = Path(__file__).resolve().parent / "SHA256SUMS"
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # zip entries carry no build time


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; data files must be readable by all
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed ``.npz`` (readable by ``np.load``) whose bytes depend only on the arrays.

    ``np.savez_compressed`` stamps every entry with the current time; here every entry gets
    the same fixed time, and entries are written in sorted order.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            arr = np.ascontiguousarray(arrays[name])
            member = io.BytesIO()
            np.lib.format.write_array(member, arr, allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue(), compresslevel=9)
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """gzip with mtime 0 and no file name in the header: same input, same bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def record_checksum(name: str, digest: str) -> None:
    """Update ``scripts/data/SHA256SUMS`` (``sha256sum`` format) for one shipped file."""
    lines = {}
    if SUMS.is_file():
        for line in SUMS.read_text().splitlines():
            if line.strip():
                d, n = line.split(maxsplit=1)
                lines[n.strip()] = d
    lines[name] = digest
    text = "".join(f"{d}  {n}\n" for n, d in sorted(lines.items()))
    atomic_write_bytes(SUMS, text.encode())


def data_root(arg: str | None) -> Path:
    """The shared data directory: the command-line argument, else ``$TINYTORCH_DATA``."""
    value = arg or os.environ.get("TINYTORCH_DATA")
    if not value:
        raise SystemExit("Give the data directory as an argument or set TINYTORCH_DATA "
                         "(a directory holding mnist/*.gz).")
    path = Path(value)
    if not path.is_dir():
        raise SystemExit(f"{path} is not a directory")
    return path
