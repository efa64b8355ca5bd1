"""Fixtures for the Olympics tests: server-held evaluation data, a fitted model, real servers.

Every process a test starts is stopped by the fixture that started it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from olympics.helpers import N_EVAL, Server, olympics_processes
from tinytorch.data.datasets import load_tinydigits, load_tinytalks


@pytest.fixture(scope="session")
def digits():
    return load_tinydigits()


@pytest.fixture(scope="session")
def eval_dir(tmp_path_factory, digits) -> Path:
    """Server-held evaluation data: TinyDigits test images, a public and a private half;
    TinyTalks test questions for the language track."""
    d = tmp_path_factory.mktemp("evaldata")
    _, (x, y) = digits
    np.savez(d / "vision.npz", x_public=x[:N_EVAL, None], y_public=y[:N_EVAL],
             x_private=x[N_EVAL:2 * N_EVAL, None], y_private=y[N_EVAL:2 * N_EVAL])
    _, _, (q, a) = load_tinytalks()
    np.savez(d / "language.npz", q_public=q[:8], a_public=a[:8], q_private=q[8:16], a_private=a[8:16])
    (d / "config.json").write_text(json.dumps({"accuracy_floor": 0.5, "latency_images": 20}))
    return d


@pytest.fixture(scope="session")
def ridge(digits):
    """A linear classifier of TinyDigits fitted in closed form (ridge regression): W (784, 10), b (10,)."""
    (x, y), _ = digits
    X = np.concatenate([x.reshape(len(x), -1) / 255.0, np.ones((len(x), 1))], axis=1)
    Y = np.eye(10)[y]
    sol = np.linalg.solve(X.T @ X + 1.0 * np.eye(X.shape[1]), X.T @ Y)
    return sol[:-1].astype(np.float32), sol[-1].astype(np.float32)


@pytest.fixture(scope="session")
def service():
    """Skip (saying why) when the service's packages are missing."""
    pytest.importorskip("fastapi", reason="the Olympics service tests need the olympics extra")
    pytest.importorskip("httpx", reason="the Olympics service tests need httpx (test extra)")


@pytest.fixture
def make_server(tmp_path, service):
    started = []

    def make(*extra, eval_dir=None, db=None, workdir=None):
        s = Server(workdir or tmp_path, eval_dir, *extra, db=db)
        started.append(s)
        return s
    yield make
    for s in started:
        s.stop()
    # nothing may be left behind: what a killed worker left is cleaned as a restarted worker would
    from tito.olympics.worker import remove_stale_dirs

    remove_stale_dirs()
    end = time.monotonic() + 10
    while olympics_processes() and time.monotonic() < end:
        time.sleep(0.1)
    assert not olympics_processes(), "processes left behind:\n" + "\n".join(olympics_processes())
