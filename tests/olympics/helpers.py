"""Helpers for the Olympics tests: small real models, the CLI, a real server.

The server is the real thing: ``tito olympics serve`` in a child process on 127.0.0.1 (a free
port) with a SQLite file, its worker evaluating in the sandbox. Every process a test starts
is stopped by the fixture that started it.
"""
from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.spatial import Flatten

N_EVAL = 100          # images per split: small, so that an evaluation costs a fraction of a second


def cli_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "tito.olympics.cli", *map(str, args)]


def cli(*args, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run(cli_cmd(*args), capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise AssertionError(f"tito olympics {' '.join(map(str, args))} failed ({r.returncode}):\n"
                             f"{r.stdout}\n{r.stderr}")
    return r


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def linear_model(W, b) -> Sequential:
    m = Sequential(Flatten(), Linear(784, 10))
    m.layers[1].weight.data[...] = W
    m.layers[1].bias.data[...] = b
    return m


def noisy(ridge, level: float, seed: int):
    """The ridge classifier with Gaussian noise on its weights: a worse model, deterministically."""
    W, b = ridge
    rng = np.random.default_rng(seed)
    return (W + rng.normal(0, level * W.std(), W.shape).astype(np.float32)), b


def expected_accuracy(W, b, x, y) -> float:
    """Accuracy computed here with NumPy alone, independently of the evaluator."""
    logits = (x.reshape(len(x), -1).astype(np.float32) / 255.0) @ W + b
    return float((logits.argmax(axis=1) == y).mean())


class Server:
    """``tito olympics serve`` in a child process."""

    def __init__(self, workdir: Path, eval_dir: Path | None, *extra, db: Path | None = None):
        self.workdir = workdir
        self.db_path = db or workdir / "olympics.db"
        self.url = f"sqlite:///{self.db_path}"
        self.eval_dir, self.extra = eval_dir, extra
        self.proc = None
        self.log = workdir / "server.log"

    def start(self) -> Server:
        import httpx

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        args = ["serve", "--db", self.url, "--port", self.port, *self.extra]
        if self.eval_dir is not None:
            args += ["--eval-data", self.eval_dir]
        self._logf = open(self.log, "ab")
        self.proc = subprocess.Popen(cli_cmd(*args), stdout=self._logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited ({self.proc.returncode}):\n{self.log.read_text()}")
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"the server did not answer within 60 s:\n{self.log.read_text()}")

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:  # anything left in its session (the worker, a sandbox) goes too
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._logf.close()
        self.proc = None

    def get(self, path, token=None, **kw):
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(self.base + path, headers=headers, timeout=30, **kw)

    def submit(self, data: bytes, token=None, headers=None):
        import httpx

        h = {"Content-Type": "application/octet-stream", **(headers or {})}
        if token:
            h["Authorization"] = f"Bearer {token}"
        return httpx.post(self.base + "/api/submissions", content=data, headers=h, timeout=60)

    def wait_idle(self, timeout=90.0) -> dict:
        """Wait until nothing is queued or running; returns the status counts."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            counts = self.get("/healthz").json()["submissions"]
            if not counts.get("queued") and not counts.get("running"):
                return counts
            time.sleep(0.2)
        raise AssertionError(f"evaluations still pending after {timeout} s: {counts}\n{self.log.read_text()}")

    def engine(self):
        from tito.olympics import db
        return db.connect(self.url)


# ---- bundles, good and bad ------------------------------------------------------------------
def zip_bytes(members: dict, compress=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compress) as zf:
        for name, data in members.items():                  # fixed dates: the same bytes every time
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data, compress_type=compress)
    return out.getvalue()


def npz_bytes(arrays: dict, allow_pickle=False) -> bytes:
    members = {}
    for k, v in arrays.items():
        f = io.BytesIO()
        np.save(f, v, allow_pickle=allow_pickle)
        members[k + ".npy"] = f.getvalue()
    return zip_bytes(members)


def bundle_bytes(doc: dict, arrays: dict | None = None, weights: bytes | None = None, extra=None) -> bytes:
    members = {"bundle.json": json.dumps(doc).encode(), "weights.npz": weights or npz_bytes(arrays)}
    members.update(extra or {})
    return zip_bytes(members)


def parts(data: bytes) -> tuple[dict, dict]:
    """(bundle.json as a dict, arrays) of a valid bundle, to make bad ones from."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        doc = json.loads(zf.read("bundle.json"))
        with np.load(io.BytesIO(zf.read("weights.npz")), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    return doc, arrays


def _header_only(shape) -> bytes:
    """An .npy header declaring ``shape`` float32, with no data after it."""
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return f.getvalue()


def bad_bundles(good: bytes) -> dict:
    """name -> (bundle bytes, a fragment the refusal must contain). Built lazily: each value
    is a function, because the zip bomb costs memory to make."""
    doc, arrays = parts(good)
    w = "layers.1.weight"

    def with_doc(**changes):
        d = json.loads(json.dumps(doc))
        d.update(changes)
        return bundle_bytes(d, arrays)

    def with_arrays(**changes):
        a = dict(arrays)
        a.update({k.replace("__", "."): v for k, v in changes.items()})
        return bundle_bytes(doc, a)

    def layer(kind):
        d = json.loads(json.dumps(doc))
        d["model"]["layers"][0] = {"type": kind}
        return bundle_bytes(d, arrays)

    def pickled():
        a = {k: v for k, v in arrays.items()}
        a[w] = np.array([{"__reduce__": "os.system"}, 1], dtype=object)
        return bundle_bytes(doc, weights=npz_bytes(a, allow_pickle=True))

    def zip_bomb():
        zeros = np.zeros(26_000_000, np.float32)             # 104 MB that deflate to ~100 KB
        f = io.BytesIO()
        np.save(f, zeros)
        inner = zip_bytes({w + ".npy": f.getvalue()})
        return bundle_bytes(doc, weights=inner)

    def huge():
        members = {k + ".npy": npz_member(arrays[k]) for k in arrays if k != w}
        members[w + ".npy"] = _header_only((8192, 8192))
        return bundle_bytes(doc, weights=zip_bytes(members))

    def path_in_npz():
        members = {k + ".npy": npz_member(v) for k, v in arrays.items()}
        members["../../evil.npy"] = npz_member(np.zeros(3, np.float32))
        return bundle_bytes(doc, weights=zip_bytes(members))

    def path_in_bundle():
        return zip_bytes({"bundle.json": json.dumps(doc).encode(), "../weights.npz": npz_bytes(arrays)})

    def duplicate_key():
        text = json.dumps(doc)[:-1] + ', "track": "speed"}'
        return zip_bytes({"bundle.json": text.encode(), "weights.npz": npz_bytes(arrays)})

    nan = dict(arrays)
    nan[w] = arrays[w].copy()
    nan[w][0, 0] = np.nan
    big = json.loads(json.dumps(doc))
    big["model"]["layers"][1].update(in_features=65536, out_features=65536)
    big["input"]["shape"] = [1, 256, 256]
    return {
        "pickle inside the npz": (pickled, "pickle"),
        "zip bomb": (zip_bomb, "more than the limit"),
        "huge array": (huge, "more than the limit"),
        "NaN array": (lambda: bundle_bytes(doc, nan), "NaN"),
        "unknown layer type": (lambda: layer("Lambda"), "unknown layer type 'Lambda'"),
        "path separator in an array name": (path_in_npz, "path separator"),
        "path separator in a file name": (path_in_bundle, "path separator"),
        "SQL in the pseudonym": (lambda: with_doc(pseudonym="x'); DROP TABLE submissions;--"), "pseudonym"),
        "float64 weights": (lambda: with_arrays(**{w: arrays[w].astype(np.float64)}), "dtype"),
        "not a zip": (lambda: b"GIF89a" + bytes(100), "not a bundle"),
        "unknown track": (lambda: with_doc(track="chess"), "track must be one of"),
        "wrong shape": (lambda: with_arrays(**{w: arrays[w][:5]}), "float32/float16 of shape"),
        "too many parameters": (lambda: bundle_bytes(big, arrays), "parameters, more than the limit"),
        "duplicate JSON key": (duplicate_key, "appears twice"),
        "unused array": (lambda: with_arrays(extra=np.zeros(2, np.float32)), "not used"),
        "local number not finite": (lambda: with_doc(local={"accuracy": "high"}), "local"),
    }


def npz_member(a) -> bytes:
    f = io.BytesIO()
    np.save(f, a, allow_pickle=False)
    return f.getvalue()


def olympics_processes() -> list[str]:
    """Every live process of the Olympics service (server, worker, sandbox) on this machine."""
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"tito.olympics" in cmd:
            text = cmd.replace(bytes(1), b" ").decode(errors="replace")
            out.append(f"{proc.name}: {text[:160]}")
    return out
